"""Export trained weights for Paddle Inference: everything inference needs, nothing from training.

``export_model(cfg, weights, out_dir)`` writes, atomically (a failed export leaves no
directory behind and an old one untouched)::

    <out_dir>/model.json, model.pdiparams   the traced network (PIR), see ppeye.deploy.nets
              infer_cfg.yml                 inputs, outputs, labels, thresholds, weather and
                                            feature contracts, versions, file hashes
              config.yaml                   the full config of the run
              features/                     the fitted feature pipeline (ppeye.deploy.pipeline)
              retrieval/                    the retrieval index, when the run has one

Thresholds are chosen on the validation split with the rule of ``tools/eval.py`` (so they
equal the evaluation's), from the evaluation's saved validation predictions when they were
made with the same weights and settings (``<run>/eval/val_predictions.npz``: at full size
predicting the split again takes hours), else predicted here. Before the directory is put in place, the exported network is
loaded with Paddle Inference and compared with the dygraph model on a validation batch;
the largest difference is recorded in ``infer_cfg.yml``.
"""
import os
import shutil
import time
import warnings

import numpy as np
import yaml

from .. import __version__, build_model, input_shapes
from ..core.config import save_config
from ..core.device import select_device
from ..core.errors import DataError, InputError
from ..core.fingerprint import config_fingerprint
from ..core.io import atomic_directory, sha256
from ..core.logger import get_logger
from ..core.paddle_env import import_paddle
from ..data.dataset import OnsetDataset, WeatherCollator
from ..data.ukb.centres import resolve_sites
from ..engine.checkpoint import load_weights, run_dir_of
from ..engine.predict import predict, prediction_identity, saved_predictions
from ..metrics import THRESHOLD_RULE
from ..metrics.clinical import PostHocCalibrator
from ..metrics.multilabel import DISEASES, choose_thresholds
from ..retrieval import RetrievalIndex
from .nets import export_layer, output_names
from .pipeline import FeaturePipeline
from .predictor import CFG_FILE, FORMAT_VERSION, MODEL_FILES, bundle_files, create_predictor, run_predictor
from .quantize import quantize_weights

paddle = import_paddle()

CHECK_TOLERANCE = 1e-4
CLIMATOLOGY_FILE = "climatology.npz"    # with data.anomalies (weather only: no participant content)


def input_specs(cfg, names):
    """Named InputSpecs with a dynamic batch and a dynamic number of distinct days."""
    s = input_shapes(cfg)
    shapes = {"weather_unique": ([None, s["C"], s["D"], s["H"], s["W"]], "float32"),
              "day_index": ([None, s["T"]], "int64"),
              "tab": ([None, s["F"]], "float32"), "tab_mask": ([None, s["F"]], "float32"),
              "weather_present": ([None], "float32")}
    return [paddle.static.InputSpec(shapes[n][0], shapes[n][1], n) for n in names]


def _validation_predictions(cfg, model, checkpoint, with_embeddings, log):
    """The validation split and its predictions: the evaluation's when they are these weights'
    under these settings (retrieval needs the embeddings, which are not saved), else predicted."""
    ds = OnsetDataset(cfg, "val")
    eval_dir = os.path.join(run_dir_of(checkpoint), "eval")
    if with_embeddings:
        why = "the retrieval blend needs the validation embeddings, which the evaluation does not save"
    else:
        saved, why = saved_predictions(eval_dir, "val", ds, prediction_identity(cfg, checkpoint))
        if saved is not None:
            log.info(f"validation predictions from {os.path.join(eval_dir, 'val_predictions.npz')} "
                     f"(the same weights and settings)")
            return ds, saved
    log.info(f"predicting the {len(ds)} validation people ({why})")
    return ds, predict(model, ds, cfg, with_embeddings=with_embeddings)


def _check_batch(ds, names, size=3):
    """One real validation batch (size people of one site, shared days) as numpy inputs."""
    batch = WeatherCollator(ds.store)([ds[i] for i in range(min(size, len(ds)))])
    return [batch[n] for n in names]


def refuse_to_replace(out_dir, inputs=()):
    """An export replaces ``out_dir`` whole: refuse unless it is absent, empty or an earlier
    export (it holds ``infer_cfg.yml``), and unless it is apart from every input path (the run,
    its checkpoint, the data's work directory: inside one of them or holding one)."""
    out = os.path.realpath(out_dir)
    for path in inputs:
        src = os.path.realpath(str(path))
        if out == src or out.startswith(src + os.sep) or src.startswith(out + os.sep):
            raise InputError(f"--output_dir {out_dir} overlaps {path}, an input of the export: choose a "
                             f"directory apart from the run and the data (e.g. inference/<name>)")
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not os.path.isfile(os.path.join(out_dir, CFG_FILE)):
        raise InputError(f"--output_dir {out_dir} exists and is not a ppeye export (no {CFG_FILE}); an export "
                         f"replaces its directory whole, so choose a new or empty directory")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError(f"--output_dir {out_dir} is a file, not a directory")


def export_model(cfg, weights=None, out_dir=None, overwrite=True, quantize=False, log=None):
    """Export ``weights`` (run dir or checkpoint) under ``cfg`` to ``out_dir``; returns infer_cfg."""
    log = log or get_logger("ppeye.export")
    weights = weights or cfg.get("weights")
    if not weights:
        raise InputError("nothing to export: pass -o weights=<run directory or checkpoint>")
    if cfg["data"].get("window_shift_days", 0):
        raise InputError(f"data.window_shift_days is {cfg['data']['window_shift_days']}: a negative control reads "
                         f"weather away from the days before the index date, which inference never does; it is not "
                         f"exported")
    # the validation predictions, tracing and the self-check run on the config's device (a GPU
    # when there is one: at full size the validation split takes hours on a CPU); the exported
    # program runs on either
    device = select_device(cfg.get("device", "auto"))
    model = build_model(cfg)
    checkpoint = load_weights(model, weights)
    model.eval()
    run_dir = run_dir_of(checkpoint)
    out_dir = out_dir or os.path.join("inference", str(cfg.get("run_name") or os.path.basename(run_dir)))
    refuse_to_replace(out_dir, (run_dir, checkpoint, cfg["data"]["work_dir"]))
    data = cfg["data"]
    ukb = cfg["ukb"]
    sites = [{"code": c.code, "name": c.name, "lat": c.lat, "lon": c.lon} for c in resolve_sites(data["sites"])]
    pipeline = FeaturePipeline.from_work_dir(data["work_dir"], sites, ukb["site_from"], ukb["max_home_distance_km"])

    retrieval = _retrieval_for(cfg, run_dir, checkpoint, log)
    carried = participant_level_content(retrieval, pipeline)
    ec = cfg.get("export") or {}
    policy = ec.get("participant_level", "allow")
    check_people = ec.get("self_check_people", 3)
    if isinstance(check_people, bool) or not isinstance(check_people, int) or check_people < 1:
        raise InputError(f"export.self_check_people must be a whole number >= 1, got {check_people!r}")
    if policy not in ("allow", "refuse"):
        raise InputError(f"export.participant_level must be allow or refuse, got {policy!r}")
    if carried and policy == "refuse":
        raise InputError("export.participant_level is refuse, but this export would carry participant-level "
                         "content: " + "; ".join(carried) + ". Drop it (-o retrieval.enabled=false; an imputer that "
                         "keeps no rows, e.g. ukb.imputer=median, then --stage impute) or set allow")
    t0 = time.time()
    val_ds, val = _validation_predictions(cfg, model, checkpoint, retrieval is not None, log)
    thresholds = {"rule": THRESHOLD_RULE, "model": dict(zip(DISEASES, choose_thresholds(val.labels, val.probs)))}
    if retrieval is not None:
        blended = retrieval.blend(val.probs, val.embeddings)
        thresholds["retrieval"] = dict(zip(DISEASES, choose_thresholds(val.labels, blended)))
    recalibration = {"method": "logistic", "fitted_on": f"{len(val_ds)} validation people",
                     "model": _logistic_params(val.labels, val.probs)}
    if retrieval is not None:
        recalibration["retrieval"] = _logistic_params(val.labels, blended)
    log.info(f"thresholds and the risks' recalibration chosen on {len(val_ds)} validation people "
             f"({time.time() - t0:.1f} s)")

    layer, names = export_layer(model)
    layer.eval()
    outputs = output_names(model)
    net_for_export = layer
    quant_info = None
    if quantize:
        net_for_export, quant_info = quantize_weights(layer, val_ds, names, cfg, log)
    specs = input_specs(cfg, names)
    shapes = input_shapes(cfg)
    store = val_ds.store
    # the self-check's reference: the dygraph layer, before to_static turns its forward static
    arrays = _check_batch(val_ds, names, check_people)
    with paddle.no_grad():
        expected = [t.numpy() for t in net_for_export(*[paddle.to_tensor(a) for a in arrays])]
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        with warnings.catch_warnings():   # Paddle warns about .place on graph values while tracing
            warnings.filterwarnings("ignore", message=".*'place' interface for pir graph mode.*")
            static = paddle.jit.to_static(net_for_export, input_spec=specs, full_graph=True)
            paddle.jit.save(static, os.path.join(tmp, "model"))
        missing = [f for f in MODEL_FILES if not os.path.isfile(os.path.join(tmp, f))]
        if missing:
            raise DataError(f"paddle.jit.save did not write {missing} (expected the PIR format)")
        pipeline.save(os.path.join(tmp, "features"), os.path.join(data["work_dir"], "features"))
        if retrieval is not None:
            shutil.copytree(retrieval.path, os.path.join(tmp, "retrieval"))
        save_config(cfg, os.path.join(tmp, "config.yaml"))
        if model.weather_branch and store.climatology is not None:   # data.anomalies: the sites' climatology
            store.climatology.save(os.path.join(tmp, CLIMATOLOGY_FILE))
        # self-check: Paddle Inference (as tools/infer.py runs it) against the dygraph model
        got = run_predictor(create_predictor(tmp, device, onednn=True), arrays)
        diff = float(max(np.abs(g - e).max() for g, e in zip(got[:2], expected[:2])))
        if diff > CHECK_TOLERANCE:
            raise DataError(f"the exported model disagrees with the dygraph model by {diff:.2e} "
                            f"(> {CHECK_TOLERANCE}) on a validation batch: not exported")
        info = {
            "format_version": FORMAT_VERSION,
            "ppeye_version": __version__,
            "paddle_version": paddle.__version__,
            "config": str(cfg.get("run_name") or os.path.basename(run_dir)),
            "config_fingerprint": config_fingerprint(cfg),
            "checkpoint": os.path.relpath(checkpoint),
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "labels": list(DISEASES),
            "inputs": [{"name": s.name, "shape": [-1 if v is None else int(v) for v in s.shape],
                        "dtype": str(s.dtype).replace("paddle.", "")} for s in specs],
            "outputs": outputs,
            "thresholds": thresholds,
            "recalibration": recalibration,
            "window_days": int(shapes["T"]),
            "weather": None if not model.weather_branch else {
                "variables": list(store.variables), "shape": list(store.shape),
                "sites": [int(s) for s in store.sites], "store_identity": store.identity,
                "mean": store.mean.reshape(-1).tolist(), "std": store.std.reshape(-1).tolist(),
                "climatology": CLIMATOLOGY_FILE if store.climatology is not None else None},
            "features": {"dir": "features", "count": len(pipeline.columns), "site_from": ukb["site_from"]},
            "retrieval": None if retrieval is None else {"dir": "retrieval", **retrieval.params},
            "quantization": quant_info,
            "self_check": {"max_abs_diff": diff, "batch": len(arrays[-1]), "device": device,
                           "onednn": not device.startswith("gpu")},
            "participant_level_content": carried,
            "files": {rel: sha256(os.path.join(tmp, rel)) for rel in bundle_files(tmp)},
        }
        with open(os.path.join(tmp, CFG_FILE), "w") as f:
            yaml.safe_dump(info, f, sort_keys=False)
    log.info(f"exported {info['config']} ({os.path.basename(checkpoint)}) to {out_dir}: inputs "
             f"{', '.join(names)}; Paddle Inference vs dygraph max |diff| {diff:.1e} on {device}")
    return info


def _logistic_params(labels, probs):
    """Per disease ``[a, b]`` of the logistic recalibration ``sigmoid(a + b logit(p))`` fitted on
    validation (None for a disease with one class there: its risks stay as the model gives them)."""
    cal = PostHocCalibrator("logistic").fit(labels, probs)
    return {d: None if p is None else [float(p[0]), float(p[1])] for d, p in zip(DISEASES, cal.params)}


def _retrieval_for(cfg, run_dir, checkpoint, log):
    rc = cfg.get("retrieval") or {}
    if not rc.get("enabled"):
        return None

    path = os.path.join(run_dir, "retrieval")
    if not os.path.isdir(path):
        log.warning(f"retrieval.enabled but {path} does not exist: exporting the model alone")
        return None
    index = RetrievalIndex.load(path)
    built_from = index.extra.get("checkpoint")
    if built_from and os.path.abspath(built_from) != os.path.abspath(checkpoint):
        log.warning(f"the retrieval index was built with {os.path.basename(built_from)}, not the exported "
                    f"{os.path.basename(checkpoint)}: exporting the model alone")
        return None
    index.path = path
    return index


def participant_level_content(retrieval, pipeline):
    """What an export carries about individual training participants, one sentence per file."""
    carried = []
    if retrieval is not None:
        labels = getattr(retrieval, "labels", None)
        n = 0 if labels is None else len(labels)
        carried.append(f"retrieval/labels.npy: the outcome labels of {n} training participants" if n else
                       "retrieval/labels.npy: the outcome labels of the training participants")
        carried.append("retrieval/index.*: their embeddings (one vector per training participant)")
    rows = getattr(pipeline.imputer, "_fit_X", None)        # scikit-learn's KNNImputer keeps its training rows
    if rows is not None:
        carried.append(f"features/imputer.joblib: {len(rows)} training participants' patient-feature rows "
                       f"(the {type(pipeline.imputer).__name__} keeps them)")
    return carried
