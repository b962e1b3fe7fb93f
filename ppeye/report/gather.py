"""What a TRIPOD+AI report can say about a run, read from the files the run's tools wrote.

Everything read here is an aggregate (counts, means, metrics, figures) or a setting; no
participant's row or id is read except the cohort's split, site, index date, year of birth,
sex and labels, which are reduced at once to per-split counts and means.
"""
import csv
import json
import os
import re

import numpy as np
import yaml

from ..core.errors import InputError

SPLITS = ("train", "val", "test", "external", "period", "period_2")
SMALL_CELL = 5          # counts from 1 to SMALL_CELL - 1 are printed as "<5"


def small(n):
    """A count as a report prints it: 1-4 hidden as "<5" (UK Biobank's small-cell practice)."""
    n = int(n)
    return f"<{SMALL_CELL}" if 0 < n < SMALL_CELL else str(n)


def _need(path, what):
    if not os.path.isfile(path):
        raise InputError(f"{path} does not exist: {what}")
    return path


def _json(path, what):
    with open(_need(path, what)) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not JSON ({e})") from e


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _text(path, what):
    with open(_need(path, what)) as f:
        return f.read()


def _config(path):
    with open(_need(path, "the run's saved config (written by tools/train.py)")) as f:
        cfg = yaml.safe_load(f)
    if not isinstance(cfg, dict) or not isinstance(cfg.get("data"), dict):
        raise InputError(f"{path}: not a ppeye config (no 'data' section)")
    return cfg


def characteristics(cfg):
    """Per split: people, age at the index date (mean, sd), women (%), index dates (first and last
    month), cases per disease; None when the cohort is not where the config says."""
    import pandas as pd
    import pyarrow.parquet as pq

    path = os.path.join(cfg["data"]["work_dir"], "cohort.parquet")
    if not os.path.isfile(path):
        return None, path
    labels = [f"label_{d}" for d in cfg["data"].get("labels", [])]
    present = set(pq.read_schema(path).names)
    cols = [c for c in ["split", "index_date", "f34", "f31", *labels] if c in present]
    table = pd.read_parquet(path, columns=cols)
    rows = []
    for split in [s for s in SPLITS if s in set(table["split"])]:
        part = table[table["split"] == split]
        dates = pd.to_datetime(part["index_date"])
        row = {"split": split, "people": len(part), "index dates": f"{dates.min():%Y-%m} to {dates.max():%Y-%m}"}
        if "f34" in part:
            age = dates.dt.year.to_numpy() - part["f34"].to_numpy(dtype=np.float64)
            row["age, mean (sd)"] = f"{np.nanmean(age):.1f} ({np.nanstd(age):.1f})"
            row["age unknown"] = small(np.isnan(age).sum())
        if "f31" in part:
            sex = part["f31"].to_numpy(dtype=np.float64)
            row["women"] = f"{100 * np.mean(sex == 0):.1f}%"
            row["sex unknown"] = small(np.isnan(sex).sum())
        for c in labels:
            if c in part:
                row[c[len("label_"):] + " cases"] = small(part[c].sum())
        rows.append(row)
    return rows, path


def _parameters(run_dir):
    path = os.path.join(run_dir, "log.txt")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        for line in f:
            m = re.search(r"training (\w+) \(([\d.]+ [kMG]?) ?parameters\)", line)
            if m:
                return f"{m[1]}, {m[2]} parameters"
    return None


def _eval(run_dir):
    eval_dir = os.path.join(run_dir, "eval")
    summary = _json(os.path.join(eval_dir, "summary.json"), f"evaluate the run first: python tools/eval.py -c "
                    f"{os.path.join(run_dir, 'config.yaml')} -o weights={run_dir}")
    splits = {}
    for split in SPLITS:
        path = os.path.join(eval_dir, f"{split}_metrics.json")
        if not os.path.isfile(path):
            continue
        written = _json(path, "")
        got = {"metrics": written["metrics"], "excluded": written.get("excluded") or {}}
        for kind in ("subgroups", "calibration", "missingness", "leakage", "clinical"):
            table = os.path.join(eval_dir, f"{split}_{kind}.csv")
            got[kind] = _csv(table) if os.path.isfile(table) else None
        got["figures"] = {kind: os.path.join(eval_dir, f"{split}_{kind}.png")
                          for kind in ("roc", "calibration", "decision_curve", "subgroups")
                          if os.path.isfile(os.path.join(eval_dir, f"{split}_{kind}.png"))}
        splits[split] = got
    return summary, splits


def _shift_of(directory):
    """``data.window_shift_days`` of the model a comparison trained (its model.yaml, or a seed's)."""
    found = [os.path.join(directory, "model.yaml")]
    found += sorted(os.path.join(directory, d, "model.yaml") for d in os.listdir(directory) if d.startswith("seed_"))
    for path in found:
        if os.path.isfile(path):
            with open(path) as f:
                return int(((yaml.safe_load(f) or {}).get("data") or {}).get("window_shift_days") or 0), path
    raise InputError(f"{directory}: no model.yaml (nor seed_*/model.yaml): not a directory of tools/compare.py")


def negative_control(directory):
    """A comparison run on moved windows (``data.window_shift_days``): its shift and its tables."""
    shift, source = _shift_of(directory)
    if shift == 0:
        raise InputError(f"{directory}: not a negative control: data.window_shift_days is 0 in {source}")
    for name in ("results.md", "compare.md"):
        if os.path.isfile(os.path.join(directory, name)):
            return {"dir": directory, "shift": shift, "markdown": _text(os.path.join(directory, name), "")}
    raise InputError(f"{directory}: neither results.md nor compare.md (has tools/compare.py finished?)")


def gather(run_dir, compare=None, seeds=None, cv=None, negative_controls=(), lag_response=None, scenarios=None):
    """The facts of one run and of the optional analyses beside it (directories of tools/compare.py,
    its --seeds and --cv, of tools/visualize.py --what lag_response and tools/simulate.py)."""
    if not os.path.isdir(run_dir):
        raise InputError(f"{run_dir}: no such run directory")
    cfg = _config(os.path.join(run_dir, "config.yaml"))
    meta = {r["key"]: r["value"] for r in _csv(_need(os.path.join(run_dir, "meta.csv"), "written by tools/train.py"))}
    summary, splits = _eval(run_dir)
    work = cfg["data"]["work_dir"]
    report_path = os.path.join(work, "cohort_report.json")
    facts = {"run": run_dir, "cfg": cfg, "meta": meta, "summary": summary, "splits": splits,
             "counts": _csv(_need(os.path.join(run_dir, "split.csv"), "written by tools/train.py")),
             "cohort_report": _json(report_path, "") if os.path.isfile(report_path) else None,
             "cohort_report_path": report_path, "parameters": _parameters(run_dir),
             "missingness_png": next((p for p in [os.path.join(work, "missingness.png")] if os.path.isfile(p)), None)}
    facts["characteristics"], facts["cohort_path"] = characteristics(cfg)
    if compare is None and os.path.isfile(os.path.join(run_dir, "compare", "compare.md")):
        compare = os.path.join(run_dir, "compare")
    facts["compare"] = None
    if compare is not None:
        md = _text(os.path.join(compare, "compare.md"), "the comparison of tools/compare.py")
        dlnm = {stem: os.path.join(compare, "dlnm", f"{stem}.png") for stem in
                ("lag_response", "lag_response_negative_control")}
        facts["compare"] = {"dir": compare, "markdown": md,
                            "dlnm": {k: v for k, v in dlnm.items() if os.path.isfile(v)}}
    facts["seeds"] = seeds and {"dir": seeds, "markdown": _text(os.path.join(seeds, "results.md"),
                                                                "the results of tools/compare.py --seeds")}
    facts["cv"] = cv and {"dir": cv, "markdown": _text(os.path.join(cv, "cv.md"),
                                                       "the results of tools/compare.py --cv centres")}
    facts["negative_controls"] = [negative_control(d) for d in negative_controls]
    facts["lag_response"] = lag_response and {
        "dir": lag_response, "png": _need(os.path.join(lag_response, "lag_response.png"),
                                          "written by tools/visualize.py --what lag_response"),
        "json": _json(os.path.join(lag_response, "lag_response.json"), "written by tools/visualize.py")}
    facts["scenarios"] = scenarios and {
        "dir": scenarios, "png": _need(os.path.join(scenarios, "scenarios.png"), "written by tools/simulate.py"),
        "rows": _csv(_need(os.path.join(scenarios, "scenarios.csv"), "written by tools/simulate.py"))}
    return facts
