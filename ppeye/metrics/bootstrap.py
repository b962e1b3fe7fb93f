"""Bootstrap confidence intervals for every metric of :func:`multilabel_metrics`.

Resampling is at the participant level: each replicate draws N rows (people, with all four
labels together) with replacement and recomputes every metric; the interval is the
percentile interval of the replicates. A replicate in which a disease has a single class
gives NaN for that disease's rank metrics and is left out of that metric's interval only
(the number of usable replicates is reported per metric).
"""
import numpy as np

from .multilabel import DISEASES, _check, multilabel_metrics

# Keys that describe the evaluation rather than measure the model: no interval.
FIXED = ("n", "macro_diseases")


def bootstrap_metrics(y_true, y_prob, thresholds=None, n_boot=1000, level=0.95, seed=0, names=DISEASES):
    """{metric: {"value", "ci_low", "ci_high", "replicates"}} for every metric."""
    y_true, y_prob = _check(y_true, y_prob)
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    point = multilabel_metrics(y_true, y_prob, thresholds, names)
    keys = [k for k in point if k not in FIXED and not k.endswith(("_threshold", "_positives"))]
    rng = np.random.default_rng(seed)
    n = len(y_true)
    draws = np.full((int(n_boot), len(keys)), np.nan)
    for b in range(int(n_boot)):
        idx = rng.integers(0, n, n)
        m = multilabel_metrics(y_true[idx], y_prob[idx], thresholds, names)
        draws[b] = [m[k] for k in keys]
    tail = (1 - level) / 2 * 100
    out = {}
    for j, k in enumerate(keys):
        col = draws[:, j][np.isfinite(draws[:, j])]
        lo, hi = (np.percentile(col, [tail, 100 - tail]) if len(col) else (np.nan, np.nan))
        out[k] = {"value": point[k], "ci_low": float(lo), "ci_high": float(hi), "replicates": int(len(col))}
    for k in point:
        if k not in out:
            out[k] = {"value": point[k], "ci_low": None, "ci_high": None, "replicates": 0}
    return out
