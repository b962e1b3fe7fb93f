"""Risks for new people from an exported model: ``ExportedModel`` and ``infer_table``.

``ExportedModel(model_dir)`` loads and checks an export (``ppeye.deploy.export``), creates
a Paddle Inference predictor (GPU when there is one, else CPU with oneDNN) and checks
every input against ``infer_cfg.yml`` before running it.

``infer_table(model_dir, table, era5, output)`` scores a UK Biobank-style table: features
through the exported pipeline, each row placed at a site with its index date, the window's
days read from an era5.zarr (normalised with the training statistics), people grouped by
site and date so shared days are read and encoded once, risks (and the retrieval blend when
exported) written atomically to a CSV. A row with a problem gets a ``status`` saying which
and no risks; the other rows go on, and the summary counts problems by kind. Logs name
rows by number, never by participant id.
"""
import json
import os
import time

import numpy as np
import pandas as pd

from ..core.config import load_config
from ..core.device import resolve_device
from ..core.errors import DataError, InputError
from ..core.io import atomic_write, save_npz
from ..core.logger import get_logger
from ..data.climatology import Climatology
from ..data.dataset import WeatherCollator
from ..data.era5.convert import convert_era5
from ..data.store import Era5Store
from ..retrieval import RetrievalIndex
from .pipeline import FEATURE_FLAGS, PROBLEMS, FeaturePipeline, index_dates
from .predictor import create_predictor, load_infer_cfg, run_predictor, trt_shapes


def _device(name):
    if name not in (None, "auto", "cpu") and not name.startswith("gpu"):
        raise InputError(f"--device must be auto, cpu, gpu or gpu:N, got {name!r}")
    return resolve_device(name)


class ExportedModel:
    """An export directory ready to run: ``info`` (infer_cfg.yml), ``pipeline``, ``retrieval``."""

    def __init__(self, model_dir, device="auto", onednn=True, threads=None, expect_fingerprint=None,
                 precision="fp32", tensorrt=False, batch_size=32):
        self.dir = model_dir
        self.info = load_infer_cfg(model_dir)
        if expect_fingerprint and expect_fingerprint != self.info["config_fingerprint"]:
            raise InputError(f"{model_dir} was exported from config '{self.info['config']}' (fingerprint "
                             f"{self.info['config_fingerprint']}), not from the config given "
                             f"({expect_fingerprint}): use the matching export or drop -c")
        self.device = _device(device)
        self.inputs = self.info["inputs"]
        self.labels = list(self.info["labels"])
        self.precision, self.tensorrt = precision, bool(tensorrt)
        shapes = trt_shapes(self.inputs, batch_size, int(self.info["window_days"])) if tensorrt else None
        self.predictor = create_predictor(model_dir, self.device, onednn=onednn, threads=threads,
                                          precision=precision, tensorrt=shapes)
        names = list(self.predictor.get_input_names())
        if names != [i["name"] for i in self.inputs]:
            raise InputError(f"{model_dir}: the model's inputs {names} differ from infer_cfg.yml's "
                             f"{[i['name'] for i in self.inputs]}")
        self.pipeline = FeaturePipeline.load(os.path.join(model_dir, self.info["features"]["dir"]))
        self.retrieval = None
        if self.info.get("retrieval"):
            self.retrieval = RetrievalIndex.load(os.path.join(model_dir, self.info["retrieval"]["dir"]))

    @property
    def uses_weather(self):
        return self.info["weather"] is not None

    def check(self, arrays):
        """Inputs as a dict by name: names, dtypes and shapes as ``infer_cfg.yml`` lists them."""
        given = set(arrays)
        wanted = [i["name"] for i in self.inputs]
        if given != set(wanted):
            raise InputError(f"inputs {sorted(given)} given, the model takes {wanted}")
        batch = None
        for spec in self.inputs:
            a = arrays[spec["name"]]
            if not isinstance(a, np.ndarray) or a.dtype != np.dtype(spec["dtype"]):
                got = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
                raise InputError(f"input {spec['name']}: expected dtype {spec['dtype']}, got {got}")
            shape = spec["shape"]
            if a.ndim != len(shape) or any(s != -1 and s != d for s, d in zip(shape, a.shape)):
                raise InputError(f"input {spec['name']}: expected shape {['N' if s == -1 else s for s in shape]}, "
                                 f"got {list(a.shape)}")
            if spec["name"] != "weather_unique":
                if batch is not None and a.shape[0] != batch:
                    raise InputError(f"input {spec['name']}: batch {a.shape[0]} differs from the other inputs' {batch}")
                batch = a.shape[0]
        if "day_index" in arrays and arrays["day_index"].size:
            u = arrays["weather_unique"].shape[0]
            if arrays["day_index"].min() < 0 or arrays["day_index"].max() >= u:
                raise InputError(f"input day_index: values must index weather_unique's {u} volumes")

    def run(self, arrays):
        """``{output name: array}`` for a dict of input arrays."""

        self.check(arrays)
        outs = run_predictor(self.predictor, [arrays[i["name"]] for i in self.inputs])
        return dict(zip(self.info["outputs"], outs))


def _open_store(model, era5, log):
    w = model.info["weather"]
    store = Era5Store(era5, norm=(w["mean"], w["std"]))
    if w.get("climatology"):     # trained on anomalies (data.anomalies): the training sites' climatology
        store.use_climatology(Climatology.load(os.path.join(model.dir, w["climatology"])))
    if list(store.variables) != list(w["variables"]) or list(store.shape) != list(w["shape"]):
        raise DataError(f"{era5} holds variables {store.variables} with volumes {list(store.shape)}, but the "
                        f"model was trained on {w['variables']} with {w['shape']}")
    ident, trained = store.identity, w["store_identity"]
    for key in ("box", "resolution", "product", "hours"):
        if ident.get(key) != trained.get(key):
            raise DataError(f"{era5}: {key} is {ident.get(key)!r} but the model's store had {trained.get(key)!r}")
    return store


def convert_raw(model, raw_dir, dates, T, work_dir, log):
    """Convert raw ERA5 files covering ``dates``' windows into ``work_dir/era5.zarr``."""
    cfg = load_config(os.path.join(model.dir, "config.yaml"))
    valid = dates[~np.isnat(dates)]
    if not len(valid):
        raise DataError("no row has an index date: nothing to convert")
    first = str((valid.min() - np.timedelta64(T, "D")).astype("datetime64[M]").astype("datetime64[D]"))
    last = str(valid.max() - np.timedelta64(1, "D"))
    cfg["data"]["era5_raw_dir"] = raw_dir
    cfg["data"]["work_dir"] = work_dir
    cfg["data"]["start_date"], cfg["data"]["end_date"] = first, last
    cfg["data"]["norm_period"] = [first, last]    # unused: the model's own statistics normalise
    log.info(f"converting raw ERA5 in {raw_dir} for {first} .. {last} into {work_dir}/era5.zarr")
    return convert_era5(cfg, log=log)["path"]


def output_files(output):
    """Every file ``infer_table`` writes for ``output``."""
    return [output, output + ".summary.json", os.path.splitext(output)[0] + "_explain.npz"]


def refuse_to_overwrite_inputs(output, table, input_dirs):
    """Refuse an ``output`` whose files would replace the input table or land inside an input
    directory (``input_dirs``: {flag: path or None})."""
    for out in output_files(output):
        real = os.path.realpath(out)
        if table and real == os.path.realpath(str(table)):
            raise InputError(f"--output {output} would overwrite the input table {table}: choose another file")
        for flag, path in input_dirs.items():
            if path and (real == os.path.realpath(str(path)) or real.startswith(os.path.realpath(str(path)) + os.sep)):
                raise InputError(f"--output {output} would write {out} inside {flag} {path}: choose a file elsewhere")


def infer_table(model_dir, table, era5=None, output=None, era5_raw=None, batch_size=32, device="auto",
                onednn=True, index_date=None, explain=False, allow_unknown_columns=False,
                expect_fingerprint=None, precision="fp32", tensorrt=False, log=None):
    """Score ``table``; write ``output`` (CSV) and ``<output>.summary.json``; return the summary."""
    log = log or get_logger("ppeye.infer")
    if not output:
        raise InputError("--output is required (the CSV of risks)")
    t0 = time.time()
    model = ExportedModel(model_dir, device, onednn=onednn, expect_fingerprint=expect_fingerprint,
                          precision=precision, tensorrt=tensorrt, batch_size=batch_size)
    refuse_to_overwrite_inputs(output, table, {"--model_dir": model_dir, "--era5": era5, "--era5_raw": era5_raw})
    pipe = model.pipeline
    frame, report = pipe.read_table(table, allow_unknown_columns=allow_unknown_columns)
    n = len(frame)
    if n == 0:
        raise DataError(f"{table}: no rows to score")
    dates = index_dates(frame, index_date)
    sites, problem = pipe.place(frame)
    problem[np.isnat(dates) & (problem == None)] = "index_date_missing"  # noqa: E711 (object array)
    tab, tab_mask, flags = pipe.features(frame, report)
    T = int(model.info["window_days"])

    start = np.zeros(n, np.int64)
    store = None
    if model.uses_weather:
        if era5_raw:
            era5 = convert_raw(model, era5_raw, dates, T, os.path.join(os.path.dirname(os.path.abspath(output)),
                                                                        "infer_work"), log)
        if not era5:
            raise InputError("this model reads weather: pass --era5 <era5.zarr> (or --era5_raw <raw ERA5 dir>)")
        store = _open_store(model, era5, log)
        ok = np.array([p is None for p in problem])
        pos = np.array([store.site_position.get(int(s), -1) for s in sites])
        not_in_store = ok & (pos < 0)
        problem[not_in_store] = "window_not_covered"
        ok &= ~not_in_store
        end = np.where(ok, store.day_index(np.where(np.isnat(dates), np.datetime64("1970-01-01"), dates)), 0)
        start = end - T
        inside = (start >= 0) & (end <= store.n_days)
        covered = np.zeros(n, bool)
        csum = np.concatenate([np.zeros((store.valid.shape[0], 1), int), np.cumsum(store.valid, 1)], 1)
        idx = np.nonzero(ok & inside)[0]
        covered[idx] = (csum[pos[idx], end[idx]] - csum[pos[idx], start[idx]]) == T
        problem[ok & ~covered] = "window_not_covered"
        sites_pos = pos
    else:
        sites_pos = np.zeros(n, np.int64)

    names = [i["name"] for i in model.inputs]
    present = np.ones(n, np.float32)
    without = np.full(n, None, dtype=object)
    if "weather_present" in names:       # a model with model.missing scores people without weather
        lacking = np.array([p is not None for p in problem])
        present[lacking], without[lacking], problem[lacking] = 0.0, problem[lacking], None
    good = np.array([p is None for p in problem])
    order = np.nonzero(good)[0]
    order = order[np.lexsort((start[order], sites_pos[order]))]     # by site, then window start
    L = len(model.labels)
    probs = np.full((n, L), np.nan)
    blended = np.full((n, L), np.nan) if model.retrieval is not None else None
    importance = np.full((n, T), np.nan, np.float32) if (explain and model.uses_weather) else None
    for b in range(0, len(order), int(batch_size)):
        rows = order[b : b + int(batch_size)]
        arrays = {"tab": tab[rows], "tab_mask": tab_mask[rows], "weather_present": present[rows]}
        if model.uses_weather:
            arrays.update(_weather(store, sites_pos[rows], start[rows], T, present[rows]))
        out = model.run({k: arrays[k] for k in names})
        probs[rows] = out["probs"]
        if blended is not None:
            blended[rows] = model.retrieval.blend(out["probs"].astype(np.float64), out["embedding"])
        if importance is not None:
            importance[rows] = np.where(present[rows][:, None] > 0, out["day_importance"], np.nan)
    summary = _write(output, frame, model, sites, dates, problem, probs, blended, importance, report, explain,
                     without, flags)
    summary["seconds"] = round(time.time() - t0, 2)
    summary["device"] = model.device
    summary["precision"], summary["tensorrt"] = model.precision, model.tensorrt
    with atomic_write(output + ".summary.json") as f:
        json.dump(summary, f, indent=1)
    log.info(f"scored {summary['scored']} of {n} rows in {summary['seconds']} s; problems "
             f"{summary['problems'] or 'none'} -> {output}")
    for kind, rows in summary["problem_rows"].items():
        log.warning(f"{len(rows)} row(s) {PROBLEMS[kind]}: data rows {rows[:10]}{' ...' if len(rows) > 10 else ''}")
    for kind, rows in summary["feature_flag_rows"].items():
        log.warning(f"{len(rows)} row(s) scored with {FEATURE_FLAGS[kind]}: data rows {rows[:10]}"
                    f"{' ...' if len(rows) > 10 else ''} (their status ends in +features_flagged; the column "
                    f"feature_flags names the fields)")
    return summary


def recalibrate(p, params):
    """``sigmoid(a + b logit(p))`` for ``params`` [a, b] (None: ``p`` unchanged); NaN stays NaN.

    >>> [round(float(v), 4) for v in recalibrate(np.array([0.5, 0.9, np.nan]), [-2.0, 1.0])]
    [0.1192, 0.5491, nan]
    """
    p = np.asarray(p, dtype=np.float64)
    if params is None:
        return p
    q = np.clip(p, 1e-7, 1 - 1e-7)
    z = np.clip(params[0] + params[1] * (np.log(q) - np.log1p(-q)), -30, 30)
    return np.where(np.isnan(p), np.nan, 1 / (1 + np.exp(-z)))


def _weather(store, sites, starts, T, present):
    keys = sites[:, None] * store.n_days + starts[:, None] + np.arange(T)[None, :]
    keys[present == 0] = -1            # no weather: a zero volume the model does not use
    weather, day_index = WeatherCollator(store).weather(keys)
    return {"weather_unique": weather, "day_index": day_index}


def _write(output, frame, model, sites, dates, problem, probs, blended, importance, report, explain, without,
           flags):
    labels = model.labels
    thr = model.info["thresholds"]
    final = blended if blended is not None else probs
    final_thr = thr["retrieval"] if blended is not None else thr["model"]
    out = pd.DataFrame({"row": np.arange(1, len(frame) + 1)})
    if "eid" in frame:
        out["eid"] = frame["eid"].to_numpy()
    out["status"] = [(p if p is not None else "ok" if w is None else f"ok_without_weather:{w}")
                     + ("+features_flagged" if p is None and f else "") for p, w, f in zip(problem, without, flags)]
    out["feature_flags"] = flags
    out["site"] = np.where(sites >= 0, sites, -1)
    out["index_date"] = pd.Series(dates).dt.strftime("%Y-%m-%d").to_numpy() if len(dates) else []
    recal = (model.info.get("recalibration") or {}).get("retrieval" if blended is not None else "model")
    if recal is not None:                 # risks that mean what they say: recalibrated on validation at export
        for j, d in enumerate(labels):
            out[f"risk_{d}"] = np.round(recalibrate(final[:, j], recal.get(d)), 6)
    for j, d in enumerate(labels):
        out[f"uncalibrated_risk_{d}"] = np.round(final[:, j], 6)
    for j, d in enumerate(labels):
        col = np.where(np.isnan(final[:, j]), np.nan, (final[:, j] >= final_thr[d]).astype(float))
        out[f"above_threshold_{d}"] = pd.array(np.where(np.isnan(col), pd.NA, col), dtype="Int64")
    if blended is not None:
        for j, d in enumerate(labels):
            out[f"uncalibrated_model_risk_{d}"] = np.round(probs[:, j], 6)
    if importance is not None:
        T = importance.shape[1]
        top = np.argsort(-np.nan_to_num(importance, nan=-1), axis=1)[:, :3]
        out["top_days_before_index"] = [" ".join(str(T - int(t)) for t in r) if p is None and w is None else ""
                                        for r, p, w in zip(top, problem, without)]
    with atomic_write(output) as f:
        out.to_csv(f, index=False)
    if importance is not None:
        save_npz(os.path.splitext(output)[0] + "_explain.npz", compressed=True,
                 row=out["row"].to_numpy(), day_importance=importance,
                 days_before_index=np.arange(importance.shape[1], 0, -1))
    problems = {}
    problem_rows = {}
    for i, p in enumerate(problem):
        if p is not None:
            problems[p] = problems.get(p, 0) + 1
            problem_rows.setdefault(p, []).append(i + 1)
    flag_rows = {kind: [i + 1 for i, f in enumerate(flags) if f.startswith(f"{kind}:") or f"; {kind}:" in f]
                 for kind in FEATURE_FLAGS}
    lacking = {}
    for w in without:
        if w is not None:
            lacking[w] = lacking.get(w, 0) + 1
    return {"rows": len(frame), "scored": int(len(frame) - sum(problems.values())), "problems": problems,
            "scored_without_weather": lacking,
            "problem_rows": problem_rows, "feature_flags": {k: len(v) for k, v in flag_rows.items() if v},
            "feature_flag_rows": {k: v for k, v in flag_rows.items() if v},
            "risk_source": "retrieval blend" if blended is not None else "model",
            "risk_calibration": (f"risk_<disease>: logistic recalibration fitted on "
                                 f"{model.info['recalibration']['fitted_on']} at export; uncalibrated_risk_<disease>: "
                                 f"as the model gives them" if recal is not None else
                                 "this export has no recalibration (made by an earlier ppeye): only "
                                 "uncalibrated_risk_<disease>, as the model gives them"),
            "thresholds": final_thr, "table_report": {k: v for k, v in report.items() if k != "unreadable_values"},
            "unreadable_values": {k: v for k, v in report.get("unreadable_values", {}).items() if v},
            "model": {"config": model.info["config"], "checkpoint": model.info["checkpoint"]},
            "explanations": bool(explain and importance is not None)}
