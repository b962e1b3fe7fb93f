#!/usr/bin/env python
"""What the diagnosis history can give, without a neural network (printed, not asserted; issue #29).

On the demo cohort (``make demo``; the synthetic data plant myopia ``H521`` for glaucoma and 24
rare chorioretinal codes for AMD, docs/data.md), L2 logistic regression per disease on the
imputed patient features alone, then with indicators of the history (``history.parquet``, codes
dated before the index date), C chosen on validation, ROC-AUC on every held-out split:

* ``patient``: the patient features;
* ``+ codes``: one indicator per full code seen in >= 5 training people (the per-code vocabulary
  a learned embedding has: the rare codes fall to "other");
* ``+ categories``: also one indicator per 3-character category (H31, H33, ... each rare too);
* ``+ oracle group``: one indicator of "any of the 24 rare codes", what a description-based
  embedding could learn by putting them together (an upper bound for the rare family).

Deterministic (one run suffices); seconds.

    python bench/bench_history_signal.py
    python bench/bench_history_signal.py -c configs/demo.yaml --min_people 5
"""
import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SPLITS = ("test", "period", "external")
C_GRID = (0.001, 0.01, 0.1, 1.0)


def indicators(history, rows, columns):
    """[N, len(columns)] 0/1: whether each person (cohort ``row``) has a record in each column's set."""
    position = {r: i for i, r in enumerate(rows)}
    out = np.zeros((len(rows), len(columns)), np.float32)
    for j, (_, members) in enumerate(columns):
        hit = history[history.code.isin(members) & history.row.isin(position)].row.map(position).unique()
        out[hit, j] = 1.0
    return out


def main():
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    import ppeye
    from ppeye.data.synthetic.history import COMMON, RARE
    from ppeye.data.ukb.fields import DISEASES
    from ppeye.data.ukb.history import read_history

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", default=os.path.join(ROOT, "configs", "demo.yaml"))
    parser.add_argument("-o", "--opt", nargs="*", default=[], help="config overrides, e.g. data.work_dir=...")
    parser.add_argument("--min_people", type=int, default=5)
    args = parser.parse_args()
    t0 = time.time()
    cfg = ppeye.load_config(args.config, args.opt)
    work = cfg["data"]["work_dir"]
    cohort = pd.read_parquet(os.path.join(work, "cohort_imputed.parquet"))
    history = read_history(work)
    features = [c for c in cohort.columns if c.startswith("f")]
    x = cohort[features].to_numpy(np.float64)
    train = cohort.split.to_numpy() == "train"
    x = (x - x[train].mean(0)) / (x[train].std(0) + 1e-9)
    rows = cohort.row.to_numpy()
    seen = history[history.row.isin(rows[train])]
    per_code = seen.drop_duplicates(["row", "code"]).code.value_counts()
    codes = [(c, {c}) for c in sorted(per_code[per_code >= args.min_people].index)]
    all_codes = sorted(set(history.code))
    cats = sorted({c[:3] for c in all_codes})
    categories = [(k, {c for c in all_codes if c[:3] == k}) for k in cats]
    rare = [("rare family", set(RARE["codes"]))]
    designs = {"patient": x,
               "+ codes": np.hstack([x, indicators(history, rows, codes)]),
               "+ categories": np.hstack([x, indicators(history, rows, codes + categories)]),
               "+ oracle group": np.hstack([x, indicators(history, rows, codes + categories + rare)])}
    rare_people = {c: int(n) for c, n in per_code.items() if c in RARE["codes"]}
    print(f"{len(cohort)} people, {len(history)} history records; {len(codes)} codes in >= {args.min_people} training "
          f"people; the rare family's codes in training people: {rare_people}")
    split = cohort.split.to_numpy()
    for disease in (COMMON["disease"], RARE["disease"]):
        y = cohort[f"label_{disease}"].to_numpy()
        print(f"\n{disease}: ROC-AUC by design and split (C chosen on validation)")
        print(f"  {'design':16s} " + " ".join(f"{s:>9s}" for s in SPLITS))
        for name, design in designs.items():
            best = None
            for c in C_GRID:
                fit = LogisticRegression(C=c, max_iter=2000).fit(design[train], y[train])
                val = roc_auc_score(y[split == "val"], fit.decision_function(design[split == "val"]))
                if best is None or val > best[0]:
                    best = (val, fit)
            scores = [roc_auc_score(y[split == s], best[1].decision_function(design[split == s]))
                      if (split == s).any() else float("nan") for s in SPLITS]
            print(f"  {name:16s} " + " ".join(f"{v:9.3f}" for v in scores))
    print(f"\n{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
