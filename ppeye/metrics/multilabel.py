"""Metrics over the 4 diseases, from labels and predicted probabilities [N, 4].

Per disease: ROC-AUC, PR-AUC (average precision), Brier score, and at a threshold F1,
precision and recall; macro (mean over diseases) and micro (all labels pooled) ROC-/PR-AUC;
Hamming loss over the 4 labels at the thresholds. Computed in numpy (ROC-AUC from mid-ranks,
average precision as scikit-learn defines it; equal to scikit-learn's to 1e-12, tested): a
bootstrap recomputes them a thousand times per split, and scikit-learn's input checks made that
50 ms a replicate.

Threshold rule (``choose_thresholds``): per disease, the probability that maximises F1 on the
validation split (ties: the lowest such threshold); 0.5 when validation has no case.
A disease with only one class in the evaluated split gets NaN for the rank metrics and is
left out of the macro means (the count of diseases used is reported).
"""
import numpy as np
from scipy.stats import rankdata
from sklearn import metrics as skm

from ..core.errors import InputError
from ..data.ukb.fields import DISEASES  # noqa: F401  (ppeye.metrics.DISEASES)


def _check(y_true, y_prob):
    y_true, y_prob = np.asarray(y_true, dtype=np.float64), np.asarray(y_prob, dtype=np.float64)
    if y_true.shape != y_prob.shape or y_true.ndim != 2:
        raise InputError(f"metrics need labels and probabilities of the same [N, L] shape, "
                         f"got {y_true.shape} and {y_prob.shape}")
    if not np.isfinite(y_prob).all():
        raise InputError(f"metrics: {int((~np.isfinite(y_prob)).sum())} predicted probabilities are not finite")
    return y_true, y_prob


THRESHOLD_RULE = "per disease, the probability maximising F1 on the validation split (ties: the lowest)"


def choose_thresholds(y_true, y_prob):
    """Per disease, the F1-maximising threshold on these (validation) predictions."""
    y_true, y_prob = _check(y_true, y_prob)
    out = []
    for j in range(y_true.shape[1]):
        if y_true[:, j].sum() == 0:
            out.append(0.5)
            continue
        precision, recall, thresholds = skm.precision_recall_curve(y_true[:, j], y_prob[:, j])
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        out.append(float(thresholds[int(np.argmax(f1[:-1]))]))
    return out


def roc_auc(t, p):
    """ROC-AUC of scores ``p`` for binary labels ``t`` (both classes present): the Mann-Whitney
    statistic from mid-ranks, ties counting one half."""
    ranks = rankdata(p)
    pos = t == 1
    n1 = int(pos.sum())
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(t) - n1)))


def average_precision(t, p):
    """Average precision (PR-AUC): over the distinct scores from the highest down, the precision
    at each cut times the recall it adds (people with tied scores called together)."""
    order = np.argsort(-p, kind="mergesort")
    ps = p[order]
    last = np.r_[np.nonzero(np.diff(ps))[0], len(ps) - 1]      # the end of each group of tied scores
    tps = np.cumsum(t[order])[last]
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _ratio(a, b):
    return float(a / b) if b else 0.0


def multilabel_metrics(y_true, y_prob, thresholds=None, names=DISEASES):
    """A flat dict: ``<disease>_<metric>``, ``macro_<metric>``, ``micro_roc_auc``, ``hamming_loss``..."""
    y_true, y_prob = _check(y_true, y_prob)
    thresholds = [0.5] * y_true.shape[1] if thresholds is None else list(thresholds)
    pred = y_prob >= np.asarray(thresholds)[None, :]
    out = {"n": int(len(y_true))}
    per = {k: [] for k in ("roc_auc", "pr_auc", "f1", "precision", "recall", "brier")}
    for j, name in enumerate(names):
        t, p, yhat = y_true[:, j], y_prob[:, j], pred[:, j]
        both = 0 < t.sum() < len(t)
        tp = float(np.sum(yhat & (t == 1)))
        fp, fn = float(yhat.sum()) - tp, float(t.sum()) - tp
        values = {
            "roc_auc": roc_auc(t, p) if both else np.nan,
            "pr_auc": average_precision(t, p) if both else np.nan,
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "brier": float(np.mean((p - t) ** 2)),
        }
        for k, v in values.items():
            out[f"{name}_{k}"] = float(v)
            per[k].append(v)
        out[f"{name}_threshold"] = float(thresholds[j])
        out[f"{name}_positives"] = int(t.sum())
    for k, values in per.items():
        finite = [v for v in values if np.isfinite(v)]
        out[f"macro_{k}"] = float(np.mean(finite)) if finite else float("nan")
    out["macro_diseases"] = int(sum(np.isfinite(per["roc_auc"])))
    flat_t, flat_p = y_true.ravel(), y_prob.ravel()
    both = 0 < flat_t.sum() < len(flat_t)
    out["micro_roc_auc"] = roc_auc(flat_t, flat_p) if both else float("nan")
    out["micro_pr_auc"] = average_precision(flat_t, flat_p) if both else float("nan")
    out["hamming_loss"] = float(np.mean(y_true != pred))
    return out
