#!/usr/bin/env python
"""How much of an exposure survives the index date, without a network (printed, not asserted; issue #28).

The negative control of docs/epidemiology.md feeds a model the 56 days *after* the index date and
expects "near chance". That holds only if the exposure does not persist across the index date. This
probe scores, per held-out split and disease, one plain number per person: the standard deviation
of each variable's anomaly (``data.anomalies``: minus the site's climatology of the calendar day)
over the hours and cells of the window's days, averaged over the window, for the window before the
index date and the window after it. A variable whose "before" number tracks a planted exposure
(2 m temperature: the planted 14-day oscillation's amplitude, which drifts slowly) and keeps part of
that ROC-AUC "after" shows how much an honest model fed the days after can score: the control's
reference is this, not 0.5. Also printed: the ROC-AUC of a winter index date alone (the season).

Deterministic; seconds (the climatology is fitted on first use, written beside the store).

    python bench/bench_control_persistence.py
    python bench/bench_control_persistence.py -o data.work_dir=data/demo/work
"""
import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    import ppeye
    from ppeye.data.climatology import open_store
    from ppeye.data.ukb.fields import DISEASES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", default=os.path.join(ROOT, "configs", "demo.yaml"))
    parser.add_argument("-o", "--opt", nargs="*", default=[], help="config overrides, e.g. data.work_dir=...")
    args = parser.parse_args()
    t0 = time.time()
    cfg = ppeye.load_config(args.config, list(args.opt) + ["data.anomalies.enabled=true"])
    store = open_store(cfg)
    window = int(cfg["data"]["window_days"])
    names = [v.split("_", 1)[-1] if v[0].isdigit() else v for v in cfg["data"]["variables"]]
    spread = np.full((len(store.sites), len(store.dates), len(names)), np.nan, np.float32)
    for s in range(len(store.sites)):
        days = np.nonzero(store.valid[s])[0]
        for i in range(0, len(days), 64):
            chunk = days[i:i + 64]
            spread[s, chunk] = store.read(s, chunk).reshape(len(chunk), len(names), -1).std(-1)
    cohort = pd.read_parquet(os.path.join(cfg["data"]["work_dir"], "cohort.parquet"))
    print(f"ROC-AUC of each variable's mean anomaly spread over the {window} days before / after the index date")
    for split in [s for s in ("test", "period", "external") if (cohort.split == s).any()]:
        part = cohort[cohort.split == split]
        site = part.site.map(store.site_position).to_numpy()
        end = store.day_index(part.index_date.to_numpy())
        winter = part.index_date.dt.month.isin([10, 11, 12, 1, 2, 3]).to_numpy()
        sides = {}
        for side, (lo, hi) in (("before", (-window, 0)), ("after", (0, window))):
            rows = []
            for s, e in zip(site, end):
                block = spread[s, max(e + lo, 0):max(min(e + hi, len(store.dates)), 0)]
                rows.append(np.nanmean(block, axis=0) if np.isfinite(block).any() else np.full(len(names), np.nan))
            sides[side] = np.array(rows)
        print(f"\n{split} (n {len(part)}): " + "  ".join(f"{n:>18s}" for n in names) + "   winter index date")
        for d in DISEASES:
            y = part[f"label_{d}"].to_numpy()
            cells = []
            for j in range(len(names)):
                pair = []
                for side in ("before", "after"):
                    ok = np.isfinite(sides[side][:, j])
                    pair.append(roc_auc_score(y[ok], sides[side][ok, j]) if 0 < y[ok].sum() < ok.sum() else np.nan)
                cells.append(f"{pair[0]:.2f} / {pair[1]:.2f}")
            print(f"  {d:9s}" + "  ".join(f"{c:>18s}" for c in cells) + f"   {roc_auc_score(y, winter):.2f}")
    print(f"\n{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
