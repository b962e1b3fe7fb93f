#!/usr/bin/env python
"""Per-disease shrinkage of the weather's contribution, judged on validation (printed, not asserted).

Reads the evaluations a ``bench/bench_generalisation.py`` lever with ``model.missing`` wrote (each
split scored with the weather and, ``<split>_without_weather``, as if it were missing for
everyone) and mixes them per disease in logits:

    logit = logit_without + lambda_d * (logit_with - logit_without),  lambda_d in 0, 0.1, ..., 1

with lambda_d the value maximising the validation ROC-AUC of disease d (ties: the largest, the
model as trained). Prints lambda per seed and the macro ROC-AUC of the model with and without the
weather, shrunk, and of the lever's patient-only baseline, on every held-out split; then mean ±
sd over seeds. Seconds, no training.

    python bench/bench_shrinkage.py --out output/bench_gen2 --lever later_weather_dropout
"""
import argparse
import os

import numpy as np
from sklearn.metrics import roc_auc_score

GRID = np.round(np.linspace(0, 1, 11), 2)
SPLITS = ("test", "period", "external")


def load(eval_dir, name):
    with np.load(os.path.join(eval_dir, f"{name}_predictions.npz")) as z:
        return z["labels"], z["probs"].astype(np.float64)


def logit(p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def macro(y, p):
    return float(np.mean([roc_auc_score(y[:, d], p[:, d]) for d in range(y.shape[1])]))


def choose(y, with_w, without):
    """lambda per disease maximising the ROC-AUC of the mixed logit (ties: the largest)."""
    out = []
    for d in range(y.shape[1]):
        scores = [roc_auc_score(y[:, d], logit(without[:, d]) + g * (logit(with_w[:, d]) - logit(without[:, d])))
                  for g in GRID]
        best = max(scores)
        out.append(max(g for g, s in zip(GRID, scores) if s == best))
    return np.array(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="the bench_generalisation --out directory")
    p.add_argument("--lever", required=True, help="a lever with model.missing (its evaluations have _without_weather)")
    args = p.parse_args()
    lever = os.path.join(args.out, args.lever)
    seeds = sorted(int(d[5:]) for d in os.listdir(lever) if d.startswith("seed_") and d[5:].isdigit())
    baseline = next(d for d in os.listdir(lever) if d.startswith("vs_"))[3:]
    rows = {}
    for seed in seeds:
        ev = os.path.join(lever, f"seed_{seed}", "model", "eval")
        if not os.path.isfile(os.path.join(ev, "val_without_weather_predictions.npz")):
            raise SystemExit(f"{ev} has no val_without_weather predictions: the lever needs model.missing")
        y, w = load(ev, "val")
        lam = choose(y, w, load(ev, "val_without_weather")[1])
        print(f"seed {seed}: lambda per disease {dict(zip(('glaucoma', 'cataract', 'amd', 'dr'), lam.tolist()))}")
        for split in SPLITS:
            if not os.path.isfile(os.path.join(ev, f"{split}_predictions.npz")):
                continue
            y, w = load(ev, split)
            n = load(ev, f"{split}_without_weather")[1]
            yb, b = load(os.path.join(args.out, baseline, f"seed_{seed}", "model", "eval"), split)
            if not np.array_equal(y, yb):
                raise SystemExit(f"{baseline} seed {seed} scored other people on {split}")
            shrunk = 1 / (1 + np.exp(-(logit(n) + lam * (logit(w) - logit(n)))))
            r = {"with weather": macro(y, w), "without": macro(y, n), "shrunk": macro(y, shrunk),
                 "patient-only": macro(y, b)}
            rows.setdefault(split, []).append(r)
            print(f"  {split:<9}" + "  ".join(f"{k} {v:.3f}" for k, v in r.items()))
    print(f"\nmacro ROC-AUC, mean ± sd over seeds {seeds} (baseline: {baseline})")
    for split, rs in rows.items():
        print(f"{split:<9}" + "  ".join(f"{k} {np.mean([r[k] for r in rs]):.3f} ± {np.std([r[k] for r in rs], ddof=1):.3f}"
                                       for k in rs[0]))


if __name__ == "__main__":
    main()
