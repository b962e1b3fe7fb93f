"""Tables for the imputation comparison: the cohort's training rows and any other tables given."""
import json
import os

import numpy as np
import pandas as pd

from ...core.errors import DataError
from ...core.io import atomic_write
from .encoding import infer_kind


def parse_table(spec):
    """``PATH`` or ``PATH:col,col`` (identifier columns to leave out) -> (path, [columns])."""
    path, _, drop = str(spec).partition(":")
    return path, [c for c in drop.split(",") if c]


def _kinds(X):
    return [infer_kind(X[:, j]) for j in range(X.shape[1])]


def load_tables(cfg, tables_given=(), max_rows=5000, seed=0):
    """``{name: (X, kinds)}``: the cohort's training rows (if built) and each table of
    ``tables_given`` (``(csv path, identifier columns to leave out)``; categories become codes)."""
    rng = np.random.default_rng(seed)
    tables = {}
    work = cfg["data"]["work_dir"]
    cohort_path = os.path.join(work, "cohort.parquet")
    if os.path.isfile(cohort_path):
        meta = json.load(open(os.path.join(work, "features", "ukb_fields.json")))
        cohort = pd.read_parquet(cohort_path)
        cohort = cohort[cohort.split == "train"]
        cols = [m["column"] for m in meta["fields"]]
        X = cohort[cols].to_numpy(dtype=np.float64)
        keep = ~np.isnan(X).all(0)
        tables["cohort"] = (X[:, keep], [m["kind"] for m, k in zip(meta["fields"], keep) if k])
    for path, drop in tables_given:
        if not os.path.isfile(path):
            raise DataError(f"table {path} not found")
        t = pd.read_csv(path)
        absent = [c for c in drop if c not in t.columns]
        if absent:
            raise DataError(f"{path}: no column(s) {absent} to leave out (it has {list(t.columns)[:12]}...)")
        t = t.drop(columns=drop)
        name = os.path.splitext(os.path.basename(path))[0]
        for c in t.columns:
            if not pd.api.types.is_numeric_dtype(t[c]):
                t[c] = t[c].astype("category").cat.codes.replace(-1, np.nan)
        X = t.to_numpy(dtype=np.float64)
        tables[name] = (X, _kinds(X))
    if not tables:
        raise DataError("no tables to compare: build the cohort (tools/preprocess.py --stage ukb) or give --table")
    for name, (X, kinds) in list(tables.items()):
        if len(X) > max_rows:
            tables[name] = (X[rng.choice(len(X), max_rows, replace=False)], kinds)
    return tables


def write_comparison(rows, ranks, out_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    frame = pd.DataFrame(rows)
    with atomic_write(os.path.join(out_dir, "imputation_comparison.csv")) as f:
        frame.to_csv(f, index=False, float_format="%.6g")
    scenarios = frame.groupby(["table", "mask"]).size().index.tolist()
    methods = list(ranks.index)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), dpi=100)
    for ax, metric, label in ((axes[0], "rmse_std", "RMSE (standardised), lower is better"),
                              (axes[1], "accuracy", "categorical accuracy, higher is better")):
        width = 0.8 / len(methods)
        for i, m in enumerate(methods):
            values = [frame[(frame.table == t) & (frame["mask"] == k) & (frame.method == m)][metric].mean()
                      for t, k in scenarios]
            ax.bar(np.arange(len(scenarios)) + i * width, values, width, label=m)
        ax.set_xticks(np.arange(len(scenarios)) + 0.4 - width / 2)
        ax.set_xticklabels([f"{t}\n{k}" for t, k in scenarios], fontsize=8)
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_write(os.path.join(out_dir, "imputation_comparison.png"), mode="wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
