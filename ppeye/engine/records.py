"""Run records: the CSVs a results section is written from, beside the run's JSON.

At the start of training (rank 0) ``<run>/`` gets:

- ``split.csv``: per split (and overall), the number of people and of cases of each disease,
  as the cohort assigns them (before the dataset's window exclusions, reported by the
  evaluator's ``excluded``);
- ``meta.csv``: ``key,value`` rows: every config setting (dotted keys), the versions of Python,
  Paddle, NumPy and ppeye, the seed, the config fingerprint, and fingerprints of the data
  (SHA-256 of cohort.parquet and cohort_imputed.parquet, the weather store's identity).

The per-epoch ``metrics.csv`` comes from the trainer, the final metrics with intervals
(``<split>_metrics.csv``), ``<split>_clinical.csv`` and ``<split>_confusion_matrix.csv`` from
the evaluator. Nothing here holds participant ids.
"""
import json
import os
import platform

import numpy as np

from .. import __version__
from ..core.io import atomic_write, digest, sha256, write_csv
from ..data.store import Era5Store
from ..data.ukb.fields import DISEASES


def split_rows(cohort):
    """[{split, n, <disease>...}] from a cohort table with ``split`` and ``label_<disease>`` columns."""
    rows = []
    for name, part in [(s, cohort[cohort["split"] == s]) for s in sorted(cohort["split"].unique())] + [("all", cohort)]:
        row = {"split": name, "n": int(len(part))}
        for d in DISEASES:
            col = f"label_{d}"
            row[d] = int(np.nansum(part[col].to_numpy(dtype=np.float64))) if col in part else None
        rows.append(row)
    return rows


def _flatten(prefix, value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = json.dumps(value, default=str) if isinstance(value, (list, tuple)) else value


def meta_rows(cfg, fingerprint=None, extra=None):
    """``[{key, value}]``: versions, seed, data fingerprints, then every config setting."""
    import paddle


    meta = {"version.python": platform.python_version(), "version.paddle": paddle.__version__,
            "version.numpy": np.__version__, "version.ppeye": __version__, "seed": cfg.get("seed"),
            "config_fingerprint": fingerprint}
    work = cfg["data"]["work_dir"]
    for name in ("cohort.parquet", "cohort_imputed.parquet"):
        path = os.path.join(work, name)
        meta[f"data.sha256.{name}"] = sha256(path) if os.path.isfile(path) else "absent"
    store = os.path.join(work, "era5.zarr")
    if os.path.isdir(store):
        identity = Era5Store(store).identity
        meta["data.era5_store_identity"] = digest(identity)
    meta.update(extra or {})
    settings = {}
    _flatten("", cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg), settings)
    meta.update({f"config.{k}": v for k, v in settings.items()})
    return [{"key": k, "value": v} for k, v in meta.items()]


def write_run_records(cfg, run_dir, fingerprint=None, extra=None):
    """Write ``split.csv`` and ``meta.csv`` into ``run_dir`` (atomically)."""
    import pandas as pd

    path = os.path.join(cfg["data"]["work_dir"], "cohort.parquet")
    cols = ["split"] + [f"label_{d}" for d in DISEASES]
    if os.path.isfile(path):
        write_csv(os.path.join(run_dir, "split.csv"), split_rows(pd.read_parquet(path, columns=cols)),
                  ["split", "n", *DISEASES])
    write_csv(os.path.join(run_dir, "meta.csv"), meta_rows(cfg, fingerprint, extra), ["key", "value"])


def write_history(run_dir, history):
    """``metrics.json`` and ``metrics.csv``: one row per epoch (atomically)."""
    with atomic_write(os.path.join(run_dir, "metrics.json")) as f:
        json.dump(history, f, indent=1)
    keys = list(dict.fromkeys(k for row in history for k in row))
    with atomic_write(os.path.join(run_dir, "metrics.csv")) as f:
        f.write(",".join(keys) + "\n")
        for row in history:
            f.write(",".join("" if row.get(k) is None else str(row.get(k)) for k in keys) + "\n")
