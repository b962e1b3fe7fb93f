#!/usr/bin/env python
"""The evaluation's bootstraps against scikit-learn's metric functions (printed, not asserted).

Every split the evaluation scores gets ``bootstrap_metrics`` (ROC-AUC, PR-AUC, F1, precision,
recall and Brier of the 4 diseases, micro ROC-/PR-AUC, Hamming loss; ``evaluation.bootstrap``
replicates) and ``clinical_report`` (operating points and calibration per disease, the same
number of replicates); a model with ``model.missing`` has five such reports per split (the model,
retrieval, calibrated, without weather, without patient). This times both as ppeye computes them
(numpy) against the same loops calling scikit-learn's functions per replicate (what ppeye did
before), on made-up labels and risks of 13, 500 and 6,000 people, and checks they agree.

    python bench/bench_metrics.py [--replicates 1000] [--sizes 13,500,6000]
"""
import argparse
import os
import sys
import time

import numpy as np
from sklearn import metrics as skm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ppeye.metrics import DISEASES, bootstrap_metrics, multilabel_metrics  # noqa: E402
from ppeye.metrics.clinical import clinical_report  # noqa: E402


def sklearn_metrics(y, p, thresholds):
    """The per-replicate computation as scikit-learn gives it (the reference)."""
    pred = p >= np.asarray(thresholds)[None, :]
    out = {}
    for j, d in enumerate(DISEASES):
        t, both = y[:, j], 0 < y[:, j].sum() < len(y)
        out[f"{d}_roc_auc"] = skm.roc_auc_score(t, p[:, j]) if both else np.nan
        out[f"{d}_pr_auc"] = skm.average_precision_score(t, p[:, j]) if both else np.nan
        out[f"{d}_f1"] = skm.f1_score(t, pred[:, j], zero_division=0)
        out[f"{d}_precision"] = skm.precision_score(t, pred[:, j], zero_division=0)
        out[f"{d}_recall"] = skm.recall_score(t, pred[:, j], zero_division=0)
        out[f"{d}_brier"] = skm.brier_score_loss(t, p[:, j])
    out["micro_roc_auc"] = skm.roc_auc_score(y.ravel(), p.ravel())
    out["micro_pr_auc"] = skm.average_precision_score(y.ravel(), p.ravel())
    out["hamming_loss"] = skm.hamming_loss(y, pred.astype(float))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--sizes", default="13,500,6000")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'people':>7} {'bootstrap_metrics s':>20} {'sklearn loop s':>15} {'ratio':>7} {'max |diff|':>11} "
          f"{'clinical_report s':>18}")
    for n in map(int, args.sizes.split(",")):
        y = (rng.random((n, 4)) < [0.3, 0.15, 0.1, 0.08]).astype(float)
        y[:2] = [[1, 1, 1, 1], [0, 0, 0, 0]]
        p = np.round(np.clip(0.2 * y + 0.8 * rng.random((n, 4)), 0, 1), 3)
        thresholds = [0.5] * 4
        t0 = time.perf_counter()
        bootstrap_metrics(y, p, thresholds, n_boot=args.replicates, seed=0)
        ours = time.perf_counter() - t0
        draws = np.random.default_rng(0)
        t0 = time.perf_counter()
        for _ in range(args.replicates):
            i = draws.integers(0, n, n)
            sklearn_metrics(y[i], p[i], thresholds)
        theirs = time.perf_counter() - t0
        worst, draws = 0.0, np.random.default_rng(1)
        for _ in range(50):                                   # agreement, outside the timings
            i = draws.integers(0, n, n)
            ref, mine = sklearn_metrics(y[i], p[i], thresholds), multilabel_metrics(y[i], p[i], thresholds)
            worst = max([worst] + [abs(mine[k] - v) for k, v in ref.items() if np.isfinite(v)])
        t0 = time.perf_counter()
        clinical_report(y, p, DISEASES, n_boot=args.replicates, seed=0)
        clinical = time.perf_counter() - t0
        print(f"{n:>7} {ours:>20.2f} {theirs:>15.2f} {theirs / ours:>6.1f}x {worst:>11.1e} {clinical:>18.2f}",
              flush=True)
    print(f"({args.replicates} replicates; max |diff|: ppeye's values against scikit-learn's over 50 replicates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
