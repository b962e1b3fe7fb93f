"""Calibration: reliability-curve bins per disease (scikit-learn's ``calibration_curve``).

``strategy="quantile"`` puts the same number of people in each bin (the sensible choice for
rare outcomes, where uniform bins above the prevalence are nearly empty); bin counts are
reported so a reader can judge each point.
"""
import numpy as np
from sklearn.calibration import calibration_curve

from .multilabel import DISEASES, _check


def calibration_table(y_true, y_prob, n_bins=10, strategy="quantile", names=DISEASES):
    """Rows {disease, bin, mean_predicted, observed_rate, count} per disease and non-empty bin."""
    y_true, y_prob = _check(y_true, y_prob)
    if strategy not in ("quantile", "uniform"):
        raise ValueError(f"calibration strategy must be 'quantile' or 'uniform', got {strategy!r}")
    rows = []
    for j, name in enumerate(names):
        t, p = y_true[:, j], y_prob[:, j]
        if len(np.unique(t)) < 2:
            continue
        observed, predicted = calibration_curve(t, p, n_bins=n_bins, strategy=strategy)
        # calibration_curve drops empty bins; recover the counts by assigning people to the same bins
        if strategy == "quantile":
            edges = np.percentile(p, np.linspace(0, 100, n_bins + 1))
        else:
            edges = np.linspace(0.0, 1.0, n_bins + 1)
        which = np.searchsorted(edges[1:-1], p)          # the rule calibration_curve uses
        counts = np.bincount(which, minlength=n_bins)
        counts = counts[counts > 0]
        for b, (o, m, c) in enumerate(zip(observed, predicted, counts)):
            rows.append({"disease": name, "bin": b, "mean_predicted": float(m), "observed_rate": float(o),
                         "count": int(c)})
    return rows
