#!/usr/bin/env python
"""What the weather can give on each design, without a neural network (printed, not asserted).

Three questions about the demo data, answered on the cohort's own splits (train, val, test, the
held-out period, the unseen centre) from the converted store and the synthetic ground truth:

1. **The ideal event detector**: per person, the planted per-day contrast
   (``ppeye.data.synthetic.signals.day_contrast``: the event variable inside the planted region
   minus outside it) summed over the planted lags before the index date. Its ROC-AUC for the two
   diseases the event acts on is the ceiling of what the weather says about them; its mean per
   centre shows how far each centre's weather lies from the others'.
2. **Linear read-outs of coarse inputs**: L2 logistic regression per disease (C chosen on
   validation) on window summaries of each day's 4 x 4 cell means per variable (the numbers
   ``model.backbone.summary`` adds) with the patient features: the window mean, the mean over
   the planted lags, and the means of 4 parts of the window.
3. **Linear read-outs of a day encoder**: the same on a day-feature cache (``--cache``: e.g. the
   pretrained day encoder's, from ``tools/extract.py -o pretrained=output/demo_days``).

Everything here is deterministic (one run suffices). Needs the demo data (``make demo``); about
two minutes on 2 cores.

    python bench/bench_transfer_ceiling.py
    python bench/bench_transfer_ceiling.py --cache output/demo_days_features.zarr
"""
import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SPLITS = ("train", "val", "test", "period", "external")
SUMMARIES = ("window", "planted_lags", "4_parts")


def window_summaries(per_day, ds, lags):
    """[people, P] features for each summary of per_day [S, days, P] over each person's window."""
    T = ds.T
    x = per_day[ds.site[:, None], ds.start[:, None] + np.arange(T)[None]]      # [n, T, P]
    lo, hi = lags
    return {"window": x.mean(1),
            "planted_lags": x[:, T - hi : T - lo + 1].mean(1),
            "4_parts": np.concatenate([p.mean(1) for p in np.array_split(x, 4, axis=1)], axis=1)}


def read_outs(name, per_day, data, lags):
    """Print macro (and per-disease) ROC-AUC of the linear read-outs on every held-out split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    feats = {s: window_summaries(per_day, ds, lags) for s, ds in data.items()}
    for summary in SUMMARIES:
        X = {s: np.concatenate([feats[s][summary], ds.tab, ds.tab_mask], axis=1) for s, ds in data.items()}
        scaler = StandardScaler().fit(X["train"])
        X = {s: scaler.transform(v) for s, v in X.items()}
        scores = {s: [] for s in data if s not in ("train", "val")}
        for k in range(data["train"].labels.shape[1]):
            best = None
            for C in (0.001, 0.01, 0.1, 1.0):
                m = LogisticRegression(C=C, max_iter=2000).fit(X["train"], data["train"].labels[:, k])
                v = roc_auc_score(data["val"].labels[:, k], m.predict_proba(X["val"])[:, 1])
                if best is None or v > best[0]:
                    best = (v, m)
            for s in scores:
                scores[s].append(roc_auc_score(data[s].labels[:, k], best[1].predict_proba(X[s])[:, 1]))
        print(f"  {name:<12} {summary:<13}" + "".join(
            f"  {s} {np.mean(v):.3f} ({' '.join(f'{a:.2f}' for a in v)})" for s, v in scores.items()))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", default=os.path.join(ROOT, "configs", "demo.yaml"))
    p.add_argument("--truth", default=None, help="ground_truth.json (default: beside data.ukb_table)")
    p.add_argument("--cache", default=None, help="a day-feature cache (tools/extract.py) to read out linearly")
    args = p.parse_args()
    import zarr

    import ppeye
    from ppeye.core.errors import DataError
    from ppeye.data.dataset import OnsetDataset
    from ppeye.data.synthetic.signals import day_contrast
    from ppeye.metrics import DISEASES
    from sklearn.metrics import roc_auc_score

    t0 = time.perf_counter()
    cfg = ppeye.load_config(args.config)
    truth = args.truth or os.path.join(os.path.dirname(cfg["data"]["ukb_table"]), "ground_truth.json")
    gt = json.load(open(truth))
    ev = gt["event"]
    lags = [int(v) for v in ev["lags"]]
    acted = [d for d in DISEASES if d in ev["effects"]]
    data = {}
    for s in SPLITS:
        try:
            data[s] = OnsetDataset(cfg, s)
        except DataError as e:  # a cohort without that split
            print(f"({s}: {e})")
    store = data["train"].store
    weather = store.group["weather"]
    vi = store.variables.index(ev["variable"])
    contrast = np.stack([day_contrast(weather[s, :, vi], ev["region_cells"]) for s in range(len(store.sites))])

    print(f"1. the ideal event detector (the planted contrast of {ev['variable']} summed over lags {lags}): "
          f"ROC-AUC for {', '.join(acted)}; its mean per centre")
    for s, ds in data.items():
        lo, hi = lags
        end = ds.start + ds.T
        feat = np.array([contrast[site, e - hi : e - lo + 1].sum() for site, e in zip(ds.site, end)])
        aucs = [roc_auc_score(ds.labels[:, DISEASES.index(d)], feat) for d in acted]
        means = {store.sites[int(c)]: float(feat[ds.site == c].mean()) for c in np.unique(ds.site)}
        print(f"  {s:<9} n {len(ds):>4}: " + ", ".join(f"{d} {a:.3f}" for d, a in zip(acted, aucs))
              + "; centre means " + ", ".join(f"{c} {m:.0f}" for c, m in means.items()))

    print("2. linear read-outs (L2 logistic regression, patient features + window summaries), macro ROC-AUC "
          f"(per disease: {', '.join(DISEASES)})")
    C, D, H, W = store.shape
    cells = np.zeros((len(store.sites), store.n_days, C * 16), np.float32)
    for s in range(len(store.sites)):
        days = np.nonzero(store.valid[s])[0]
        for i in range(0, len(days), 256):
            chunk = days[i : i + 256]
            v = store.read(s, chunk).mean(axis=2)                              # [n, C, H, W]
            hs, ws = np.array_split(np.arange(H), 4), np.array_split(np.arange(W), 4)
            pooled = np.stack([np.stack([v[:, :, r][:, :, :, c].mean(axis=(2, 3)) for c in ws], -1) for r in hs], -2)
            cells[s, chunk] = pooled.reshape(len(chunk), -1)
    read_outs("4x4 cells", cells, data, lags)
    if args.cache:
        read_outs("day cache", np.asarray(zarr.open_group(args.cache, mode="r")["features"][:]), data, lags)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
