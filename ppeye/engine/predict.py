"""Batched prediction over a dataset, in dataset order, on one process or sharded over ranks.

``predict(model, dataset, cfg)`` returns a :class:`Predictions` (labels, probabilities and,
when asked, the fused embeddings the retrieval index is built from). Under fleet each rank
predicts every ``world``-th batch and the pieces are gathered, so every rank ends with the
whole split's predictions before any metric is computed.
"""
import os
from dataclasses import dataclass

import numpy as np

from ..core.errors import ConfigError
from ..core.fingerprint import config_fingerprint
from ..core.io import sha256
from ..core.logger import get_logger
from ..core.paddle_env import import_paddle
from ..core.progress import Heartbeat
from ..data.dataset import SiteDateBatchSampler, WeatherCollator
from ..metrics import DISEASES
from .checkpoint import MODEL_FILE

paddle = import_paddle()


@dataclass
class Predictions:
    labels: np.ndarray                 # [N, 4] float
    probs: np.ndarray                  # [N, 4] float64
    embeddings: np.ndarray = None      # [N, width] float32, fused (with_embeddings=True)
    branch_embeddings: dict = None     # {"weather_embedding", "patient_embedding"}: [N, width] (with_embeddings),
                                       # with model.missing also "modality_weights" [N, 2] and "presence" [N, flags]
    without: dict = None               # {"weather" | "patient": probs [N, 4] float64} (also_without)


BRANCHES = ("weather_embedding", "patient_embedding")


def to_tensors(batch):
    return {k: v if isinstance(v, paddle.Tensor) else paddle.to_tensor(v) for k, v in batch.items()}


def make_loader(dataset, cfg, shuffle=False, seed=0, num_replicas=1, rank=0, drop_uneven=True, store=None):
    """A DataLoader over site/date-grouped batches (``loader.group_by_site``), its sampler on
    ``loader.ppeye_sampler``. ``drop_uneven=False`` keeps every batch when sharding (evaluation).
    ``store``: where the batches' weather comes from (default the dataset's era5 store; a
    :class:`~ppeye.engine.features.FeatureCache` gives cached day features instead)."""
    lc = cfg["loader"]
    sampler = SiteDateBatchSampler(dataset, int(lc["batch_size"]), shuffle=shuffle, seed=seed,
                                   group=bool(lc.get("group_by_site", True)), num_replicas=num_replicas,
                                   rank=rank, drop_uneven=drop_uneven)
    loader = paddle.io.DataLoader(dataset, batch_sampler=sampler, collate_fn=WeatherCollator(store or dataset.store),
                                  num_workers=int(lc.get("num_workers", 0)), return_list=True)
    loader.ppeye_sampler = sampler
    return loader


def check_weather_presence(model, dataset):
    """People kept without weather need a model that handles a missing modality."""
    absent = int((getattr(dataset, "weather_present", np.ones(1)) == 0).sum())
    if absent and getattr(model, "missing", None) is None:
        raise ConfigError(f"{absent} people have no usable weather window (data.incomplete_weather: include) but "
                          f"the model has no missing-modality handling: set model.missing.enabled=true or "
                          f"data.incomplete_weather=exclude")


DROPPABLE = ("weather", "patient")


def predict(model, dataset, cfg, with_embeddings=False, num_replicas=1, rank=0, store=None, also_without=()):
    """Probabilities (and embeddings) for every person of ``dataset``, in dataset order.

    ``also_without``: "weather" and/or "patient", each predicted besides the full prediction as if
    that modality were missing for everyone (weather_present 0, or no feature observed; a model
    with ``model.missing``), in the same pass (``Predictions.without``): each batch's volumes go
    through the ResNet once and every variant reads its pooled output, the same numbers as
    separate passes at a third of the ResNet's cost."""
    check_weather_presence(model, dataset)
    also_without = tuple(also_without or ())
    for m in also_without:
        if m not in DROPPABLE:
            raise ValueError(f"a dropped modality must be one of {', '.join(DROPPABLE)}, got {m!r}")
        if getattr(model, "missing", None) is None:
            raise ConfigError(f"predicting without the {m} modality needs a model with model.missing.enabled")
    core = getattr(model, "_layers", model)      # a DataParallel wrapper's model
    pool = also_without and getattr(core, "weather_branch", False)
    model.eval()
    loader = make_loader(dataset, cfg, shuffle=False, num_replicas=num_replicas, rank=rank, drop_uneven=False,
                         store=store)
    order = [i for batch in loader.ppeye_sampler for i in batch]
    keys = ("embedding",) + BRANCHES if with_embeddings else ()
    if with_embeddings and getattr(model, "missing", None) is not None:
        keys += ("presence",) + (("modality_weights",) if model.missing.gate is not None else ())
    probs, embs, dropped = [], {k: [] for k in keys}, {m: [] for m in also_without}
    beat = Heartbeat(get_logger("ppeye.predict"), f"predicting {len(dataset)} people, batches", total=len(loader))
    with beat, paddle.no_grad():
        for batch in loader:
            b = to_tensors(batch)
            if pool:
                b["weather_unique"] = core.pool_days(b["weather_unique"])
            out = model(b, return_explain=with_embeddings)
            logits, ex = out if with_embeddings else (out, None)
            probs.append(paddle.nn.functional.sigmoid(logits).numpy().astype(np.float64))
            for k in keys:
                embs[k].append(ex[k].numpy().astype(np.float32))
            for m in also_without:
                dropped[m].append(paddle.nn.functional.sigmoid(model(_without(b, m))).numpy().astype(np.float64))
            beat.step()
    width = getattr(model, "width", 0)
    arrays = [np.asarray(order, dtype=np.int64), np.concatenate(probs) if probs else np.zeros((0, len(DISEASES)))]
    arrays += [np.concatenate(embs[k]) if embs[k] else np.zeros((0, width), np.float32) for k in keys]
    arrays += [np.concatenate(dropped[m]) if dropped[m] else np.zeros((0, len(DISEASES))) for m in also_without]
    if num_replicas > 1:
        arrays = gather_ranks(arrays)
    order = arrays[0]
    if len(np.unique(order)) != len(dataset):
        raise RuntimeError(f"prediction covered {len(np.unique(order))} of {len(dataset)} people")

    def in_dataset_order(a, fill):
        full = np.full((len(dataset),) + a.shape[1:], fill, dtype=a.dtype)
        full[order] = a
        return full

    probs = in_dataset_order(arrays[1], np.nan)
    embs = {k: in_dataset_order(a, 0) for k, a in zip(keys, arrays[2:2 + len(keys)])}
    without = {m: in_dataset_order(a, np.nan) for m, a in zip(also_without, arrays[2 + len(keys):])}
    return Predictions(dataset.labels.astype(np.float64), probs, embs.pop("embedding", None),
                       embs if with_embeddings else None, without if also_without else None)


def _without(batch, modality):
    """The batch with ``modality`` missing for everyone (weather_present 0, or no feature observed)."""
    key = "weather_present" if modality == "weather" else "tab_mask"
    return {**batch, key: paddle.zeros_like(batch[key])}


def gather_ranks(arrays):
    """All-gather variable-length per-rank pieces (padded to the longest, then trimmed)."""
    import paddle.distributed as dist

    n = paddle.to_tensor([len(arrays[0])], dtype="int64")
    sizes = []
    dist.all_gather(sizes, n)
    sizes = [int(s.item()) for s in sizes]
    longest = max(sizes)

    def gather(a):
        pad = np.zeros((longest - len(a),) + a.shape[1:], dtype=a.dtype)
        parts = []
        dist.all_gather(parts, paddle.to_tensor(np.concatenate([a, pad])))
        return np.concatenate([p.numpy()[:s] for p, s in zip(parts, sizes)])

    return [gather(a) for a in arrays]


def prediction_identity(cfg, checkpoint):
    """What a split's predictions depend on: the weights' bytes and the settings that change the
    computation (``core.fingerprint``); stored in ``<split>_predictions.npz``."""
    settings = {k: v for k, v in (cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)).items() if k != "export"}
    return {"weights_sha256": sha256(os.path.join(checkpoint, MODEL_FILE)),
            "config_fingerprint": config_fingerprint(settings)}


def saved_predictions(eval_dir, split, ds, identity):
    """``(Predictions, None)`` from ``<eval_dir>/<split>_predictions.npz`` when it was written
    for ``identity`` and holds ``ds``'s people and labels in ``ds``'s order, else ``(None, why
    not)``: a mismatch is never an error, the caller predicts instead."""
    path = os.path.join(eval_dir, f"{split}_predictions.npz")
    if not os.path.isfile(path):
        return None, f"{path} does not exist"
    with np.load(path, allow_pickle=False) as z:
        stamped = {k: str(z[k]) for k in identity if k in z.files}
        if stamped != identity:
            differ = [k for k in identity if stamped.get(k) != identity[k]]
            return None, f"{path} was written for other {' and '.join(k.split('_')[0] for k in differ)}"
        rows, labels, probs = z["rows"], z["labels"].astype(np.float64), z["probs"].astype(np.float64)
    if not (np.array_equal(rows, ds.rows) and np.array_equal(labels, ds.labels.astype(np.float64))):
        return None, f"{path} holds other people or labels than the {split} split of this config"
    return Predictions(labels=labels, probs=probs), None
