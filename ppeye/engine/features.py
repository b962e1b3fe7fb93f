"""Frozen-encoder feature caching: every (site, day) volume encoded once by the ResNet3D.

On a CPU, Paddle's Conv3D training is slow while Paddle Inference with oneDNN runs the same
network many times faster than dygraph. With the ResNet frozen, the day features of a store
never change, so ``tools/extract.py`` computes them once::

    era5.zarr volumes [S, days, C, D, H, W] --ResNet3D (Paddle Inference)--> day_features.zarr [S, days, P]

(``P`` = the ResNet's pooled width, ``8 * base_width``), and the frozen epochs of two-stage
training (``train.two_stage``) read [U, P] rows of it instead of [U, C, D, H, W] volumes;
``day_proj`` and everything after it train as usual.

A cache records its encoder's identity: a hash of the backbone's config and input sizes, a
hash of the backbone's weights (BatchNorm statistics included), and the weather store's
identity and normalisation. :meth:`FeatureCache.check` compares it with the model and store a
run uses and refuses a stale cache, naming what differs.

``extract_people`` writes per-person embeddings (fused, weather, patient) and probabilities of
a trained OnsetNet per split, for analysis and late-fusion baselines.
"""
import hashlib
import os
import tempfile
import time
import warnings

import numpy as np

from .. import build_model, input_shapes
from ..core.device import resolve_device, select_device
from ..core.errors import DataError, InputError
from ..core.io import atomic_directory, digest, save_npz
from ..core.logger import get_logger
from ..core.progress import Heartbeat
from ..core.paddle_env import import_paddle
from ..core.seed import seed_everything
from ..data.climatology import open_store
from ..data.dataset import OnsetDataset
from ..data.store import read_days
from ..deploy.predictor import MODEL_FILES, create_predictor, run_predictor
from .checkpoint import load_pretrained, load_weights
from .predict import predict

paddle = import_paddle()

FORMAT_VERSION = 1
CHECK_TOLERANCE = 1e-3   # Paddle Inference + oneDNN vs dygraph on the first batch (features are O(1))


class DayEncoder(paddle.nn.Layer):
    """The traced part: one day's volume [U, C, D, H, W] -> pooled ResNet features [U, P]."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, weather_unique):
        return self.backbone(weather_unique)


def weights_hash(layer):
    """SHA-256 (16 hex digits) of a layer's parameters and buffers, by name."""
    h = hashlib.sha256()
    for name, value in sorted(layer.state_dict().items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(value.numpy()).tobytes())
    return h.hexdigest()[:16]


def encoder_identity(cfg, model, store):
    """What the cached features depend on, with hashes a stale cache would differ in."""
    s = input_shapes(cfg)
    # the layout (channels_last) changes no number beyond float rounding, and a frozen ResNet
    # normalises with its running statistics whether they were synchronised or not: a cache
    # serves either (and caches made before these keys existed still match)
    backbone = {k: v for k, v in dict(cfg["model"].get("backbone") or {}).items()
                if k != "channels_last" and not (k == "norm" and v in ("batch", "sync_batch"))}
    return {
        "backbone_config": digest({"backbone": backbone, "C": s["C"], "D": s["D"], "H": s["H"], "W": s["W"]}),
        "backbone_weights": weights_hash(model.backbone),
        "store_identity": digest(store.identity),
        "store_normalisation": digest([np.round(store.mean.reshape(-1), 6).tolist(),
                                        np.round(store.std.reshape(-1), 6).tolist()]
                                       + ([store.climatology.digest] if store.climatology is not None else [])),
    }


IDENTITY_HELP = {
    "backbone_config": "model.backbone settings or input sizes",
    "backbone_weights": "backbone weights",
    "store_identity": "weather store (era5.zarr)",
    "store_normalisation": "weather normalisation (or data.anomalies and its climatology)",
}


class FeatureCache:
    """Pooled ResNet features ``[P]`` by (site, day), read like an :class:`Era5Store`.

    It has the store's ``sites``, ``n_days``, ``valid`` and ``read(site, days)`` (returning
    ``[len(days), P]``), so :class:`WeatherCollator` batches it unchanged.
    """

    def __init__(self, path):
        import zarr

        self.path = str(path)
        try:
            group = zarr.open_group(self.path, mode="r")
        except Exception as e:
            raise DataError(f"cannot open the day-feature cache {self.path}: {type(e).__name__}: {e} "
                            f"(make it with tools/extract.py)") from None
        attrs = dict(group.attrs)
        missing = [k for k in ("format_version", "identity", "sites", "start_date") if k not in attrs]
        if missing or "features" not in group:
            raise DataError(f"{self.path} is not a day-feature cache written by tools/extract.py "
                            f"(missing {missing or ['features']})")
        if attrs["format_version"] != FORMAT_VERSION:
            raise DataError(f"{self.path}: cache format {attrs['format_version']}, this ppeye reads "
                            f"{FORMAT_VERSION}: rerun tools/extract.py")
        self.attrs = attrs
        self.identity = attrs["identity"]
        self.features = group["features"]
        self.sites = [int(v) for v in attrs["sites"]]
        self.n_days = int(self.features.shape[1])
        self.dates = np.datetime64(attrs["start_date"], "D") + np.arange(self.n_days)
        self.valid = np.asarray(group["valid"][:], dtype=bool)
        self.shape = (int(self.features.shape[2]),)
        # each day's volume average-pooled to the day decoder's grid (caches of models with a day
        # decoder): appended to the rows by with_day_targets, so the reconstruction loss needs no volume
        self.day_pooled = group["day_pooled"] if "day_pooled" in group else None
        self.day_pooled_grid = attrs.get("day_pooled_grid")
        self.with_pooled = False

    def with_day_targets(self, decoder):
        """Rows [P + decoder.pooled_size]: the features, then each day's volume pooled to the
        decoder's grid (``OnsetNet`` takes its reconstruction targets from them). False (rows
        unchanged) when the cache holds no pooled volumes at that grid."""
        if (self.day_pooled is None or list(self.day_pooled_grid or []) != list(decoder.grid)
                or int(self.day_pooled.shape[2]) != decoder.pooled_size):
            return False
        self.with_pooled = True
        self.shape = (int(self.features.shape[2]) + decoder.pooled_size,)
        return True

    def check(self, identity, store):
        """Refuse the cache unless it was made with this encoder, store and normalisation."""
        differ = [k for k in IDENTITY_HELP if self.identity.get(k) != identity.get(k)]
        if differ:
            what = "; ".join(f"{IDENTITY_HELP[k]} ({k}: cache {self.identity.get(k)} vs run {identity.get(k)})"
                             for k in differ)
            raise DataError(f"the day-feature cache {self.path} is stale: it was built with different {what}. "
                            f"Rebuild it with tools/extract.py using this run's config and weights")
        if self.sites != list(store.sites) or self.n_days != store.n_days or str(self.dates[0]) != str(store.dates[0]):
            raise DataError(f"{self.path} covers sites {self.sites}, {self.n_days} days from {self.dates[0]}, but "
                            f"{store.path} has sites {list(store.sites)}, {store.n_days} days from {store.dates[0]}")
        return self

    def read_features(self, site, days):
        """The pooled ResNet features [len(days), P] of sorted days of a site."""
        return read_days(self.features, site, days, self.features.shape[2:])

    def read(self, site, days):
        """The rows [len(days), *shape] of sorted days of a site (:meth:`with_day_targets`)."""
        features = self.read_features(site, days)
        if not self.with_pooled:
            return features
        return np.concatenate([features, read_days(self.day_pooled, site, days, self.day_pooled.shape[2:])], axis=1)


def _export_encoder(model, cfg, tmp):
    s = input_shapes(cfg)
    spec = paddle.static.InputSpec([None, s["C"], s["D"], s["H"], s["W"]], "float32", "weather_unique")
    layer = DayEncoder(model.backbone)
    layer.eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*'place' interface for pir graph mode.*")
        paddle.jit.save(paddle.jit.to_static(layer, input_spec=[spec], full_graph=True), os.path.join(tmp, "model"))
    if not all(os.path.isfile(os.path.join(tmp, f)) for f in MODEL_FILES):
        raise DataError("paddle.jit.save did not write the day encoder in the PIR format")


def extract_day_features(cfg, out, weights=None, batch_size=64, device="auto", overwrite=False, log=None):
    """Encode every valid (site, day) of the config's store; write ``out`` (a zarr group) atomically.

    Returns a summary dict (volumes, seconds, volumes/s, self-check difference)."""
    import zarr


    log = log or get_logger("ppeye.extract")
    if int(batch_size) < 1:
        raise InputError(f"extract batch size must be >= 1, got {batch_size}")
    if not cfg["model"].get("weather_branch", True):
        raise InputError("model.weather_branch is false: there is no ResNet3D to extract day features with")
    if os.path.isdir(out) and os.listdir(out) and not overwrite:
        raise InputError(f"{out} already exists: pass --overwrite (overwrite=True) to replace it")
    weights = weights or cfg.get("weights")
    store = open_store(cfg, log=log)
    paddle.set_device("cpu")     # the network is built and traced on the CPU; the predictor runs anywhere
    seed_everything(cfg["seed"])
    model = build_model(cfg)     # without weights: the seeded initialisation a run with this config starts from
    if weights:
        source = load_weights(model, weights)
    elif cfg.get("pretrained"):  # as a run with this config would start: from the pretraining run's encoders
        source = load_pretrained(model, cfg["pretrained"])[0]
    else:
        source = "the config's seeded initialisation"
    model.eval()
    identity = encoder_identity(cfg, model, store)
    device = resolve_device(cfg.get("device", "auto"))
    t0 = time.perf_counter()
    count, diff = 0, None
    with tempfile.TemporaryDirectory(prefix="ppeye-encoder-") as enc_dir, atomic_directory(out, overwrite) as tmp:
        _export_encoder(model, cfg, enc_dir)
        predictor = create_predictor(enc_dir, device, onednn=True)
        dim = int(model.backbone.out_channels)
        group = zarr.open_group(tmp, mode="w")
        features = group.create_array("features", shape=(len(store.sites), store.n_days, dim), dtype="float32",
                                      chunks=(1, min(store.n_days, 128), dim), fill_value=0.0)
        group.create_array("valid", data=store.valid)
        decoder = getattr(model, "day_decoder", None)
        pooled = None if decoder is None else group.create_array(
            "day_pooled", shape=(len(store.sites), store.n_days, decoder.pooled_size), dtype="float32",
            chunks=(1, min(store.n_days, 128), decoder.pooled_size), fill_value=0.0)
        beat = Heartbeat(log, "day features, volumes", total=int(store.valid.sum()))
        for s in range(len(store.sites)):
            days = np.nonzero(store.valid[s])[0]
            block = np.zeros((store.n_days, dim), np.float32)
            coarse = None if pooled is None else np.zeros((store.n_days, decoder.pooled_size), np.float32)
            for i in range(0, len(days), int(batch_size)):
                chunk = days[i : i + int(batch_size)]
                volumes = store.read(s, chunk)
                block[chunk] = run_predictor(predictor, [volumes])[0]
                if coarse is not None:
                    with paddle.no_grad():
                        coarse[chunk] = decoder.pool(paddle.to_tensor(volumes)).numpy()
                if diff is None:   # self-check on the first batch: Paddle Inference vs the dygraph network
                    with paddle.no_grad():
                        ref = model.backbone(paddle.to_tensor(volumes)).numpy()
                    diff = float(np.abs(block[chunk] - ref).max())
                    if diff > CHECK_TOLERANCE:
                        raise DataError(f"the day encoder run by Paddle Inference disagrees with the dygraph "
                                        f"network by {diff:.2e} (> {CHECK_TOLERANCE}): no cache written")
                count += len(chunk)
                beat.step(len(chunk))
            features[s] = block
            if coarse is not None:
                pooled[s] = coarse
        seconds = time.perf_counter() - t0
        group.attrs.update({
            "format_version": FORMAT_VERSION, "identity": identity, "sites": [int(v) for v in store.sites],
            "start_date": str(store.dates[0]), "store": os.path.abspath(store.path), "weights": str(source),
            "device": device, "volumes": count, "seconds": round(seconds, 2), "self_check_max_abs_diff": diff,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **({} if decoder is None else {"day_pooled_grid": list(decoder.grid)})})
    summary = {"volumes": count, "seconds": seconds, "volumes_per_s": count / max(seconds, 1e-9),
               "dim": dim, "device": device, "self_check_max_abs_diff": diff, "path": str(out)}
    log.info(f"day features of {count} (site, day) volumes from {source} -> {out} [{dim} per day] in "
             f"{seconds:.1f} s ({summary['volumes_per_s']:.0f} volumes/s on {device}, Paddle Inference; "
             f"vs dygraph max |diff| {diff if diff is not None else float('nan'):.1e})")
    return summary


def open_cache(cfg, model, store):
    """The run's ``train.two_stage.cache``, checked against ``model``'s backbone and ``store``; its
    rows carry each day's pooled volume when ``model`` trains a day decoder and the cache has them."""
    path = (cfg["train"].get("two_stage") or {}).get("cache")
    if not path:
        return None
    cache = FeatureCache(path).check(encoder_identity(cfg, model, store), store)
    if getattr(model, "day_decoder", None) is not None and model.day_weight > 0:
        cache.with_day_targets(model.day_decoder)
    return cache


def extract_people(cfg, out_dir, weights=None, splits=None, log=None):
    """Per split, ``<out_dir>/<split>.npz`` with ``row`` (export row), ``labels``, ``probs`` and the
    ``embedding`` (fused), ``weather_embedding`` and ``patient_embedding`` [N, E] of a trained model;
    with ``model.missing`` also ``presence`` (flags) and ``modality_weights`` (patient, weather)."""
    import pandas as pd


    log = log or get_logger("ppeye.extract")
    weights = weights or cfg.get("weights")
    if not weights:
        raise InputError("per-person features need a trained model: pass -o weights=<run directory or checkpoint>")
    select_device(cfg.get("device", "auto"))
    model = build_model(cfg)
    ckpt = load_weights(model, weights)
    cohort = pd.read_parquet(os.path.join(cfg["data"]["work_dir"], "cohort.parquet"), columns=["split"])
    present = sorted(set(cohort["split"]))
    splits = splits or present
    unknown = sorted(set(splits) - set(present))
    if unknown:
        raise InputError(f"splits {unknown} are not in the cohort (it has {present})")
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    for split in splits:
        ds = OnsetDataset(cfg, split, log=log)
        pred = predict(model, ds, cfg, with_embeddings=True)
        path = os.path.join(out_dir, f"{split}.npz")
        save_npz(path, row=ds.rows, labels=pred.labels.astype(np.float32), probs=pred.probs.astype(np.float32),
                 embedding=pred.embeddings, **pred.branch_embeddings)
        written[split] = len(ds)
    log.info(f"per-person features of {ckpt} for {written} people -> {out_dir}")
    return written
