"""The statistics a clinical prediction paper reports, per disease (binary labels, probabilities).

- :func:`delong` - DeLong's test for two correlated ROC-AUCs (the same people scored by two
  models): the AUCs, their difference with a 95% CI and the two-sided p-value. Computed with
  mid-ranks (Sun & Xu's fast form of DeLong, DeLong & Clarke-Pearson 1988): the structural
  components V10 (per case: the share of controls it outranks) and V01 (per control: the
  share of cases that outrank it) give the covariance of the AUCs.
- :func:`operating_points` - sensitivity at fixed specificities and specificity at fixed
  sensitivities (the best the score achieves at or above the target), with the threshold.
- :func:`net_benefit` - decision curve analysis: ``TP/N - FP/N * t / (1 - t)`` when treating
  everyone whose probability is >= t, against treat-all (and treat-none = 0).
- :func:`calibration_fit` - Brier score, calibration intercept (calibration-in-the-large: the
  intercept of a logistic regression of the label with logit(p) as an offset) and slope (the
  coefficient of logit(p)); 0 and 1 are perfect.
- :class:`PostHocCalibrator` - temperature scaling or isotonic regression per disease, fitted on
  validation predictions and applied to any split.
"""
import numpy as np
from scipy import optimize, stats

from ..core.errors import InputError

EPS = 1e-7


def _binary(y, name="labels"):
    y = np.asarray(y, dtype=np.float64).ravel()
    if not np.isin(y, (0.0, 1.0)).all():
        raise InputError(f"{name} must be 0/1")
    return y


def _scores(p, n, name="scores"):
    p = np.asarray(p, dtype=np.float64).ravel()
    if len(p) != n:
        raise InputError(f"{name}: {len(p)} values for {n} labels")
    if not np.isfinite(p).all():
        raise InputError(f"{name}: {int((~np.isfinite(p)).sum())} values are not finite")
    return p


def _both_classes(y, what):
    if not 0 < y.sum() < len(y):
        raise InputError(f"{what} needs cases and controls; got {int(y.sum())} cases of {len(y)}")


def _midranks(x):
    """1-based ranks of x with ties given their mean rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def _components(y, p):
    """(AUC, V10 per case, V01 per control) of one score."""
    pos, neg = p[y == 1], p[y == 0]
    m, n = len(pos), len(neg)
    tz = _midranks(np.concatenate([pos, neg]))
    v10 = (tz[:m] - _midranks(pos)) / n
    v01 = 1.0 - (tz[m:] - _midranks(neg)) / m
    return float(v10.mean()), v10, v01


def auc_with_se(y, p):
    """(ROC-AUC, DeLong's standard error) of one score; the error is NaN with a single case or
    a single control (their variance is undefined)."""
    y = _binary(y)
    p = _scores(p, len(y))
    _both_classes(y, "an AUC variance")
    auc, v10, v01 = _components(y, p)
    if min(len(v10), len(v01)) < 2:
        return auc, float("nan")
    return auc, float(np.sqrt(np.var(v10, ddof=1) / len(v10) + np.var(v01, ddof=1) / len(v01)))


def auc_interval(y, p, q):
    """(ROC-AUC, low, high): DeLong's interval of ``q`` standard errors either side, clipped to
    [0, 1]; NaN bounds when the error is undefined (a single case or control), never [0, 1]."""
    auc, se = auc_with_se(y, p)
    return auc, float(np.clip(auc - q * se, 0.0, 1.0)), float(np.clip(auc + q * se, 0.0, 1.0))


def auc_variance(y, p):
    """DeLong's variance of one ROC-AUC."""
    return auc_with_se(y, p)[1] ** 2


def delong(y, p_a, p_b, level=0.95):
    """DeLong's test of AUC(p_a) - AUC(p_b) on the same people.

    Returns {"auc_a", "auc_b", "diff", "se", "ci_low", "ci_high", "z", "p_value", "cases", "controls"}.
    """
    y = _binary(y)
    p_a, p_b = _scores(p_a, len(y), "scores a"), _scores(p_b, len(y), "scores b")
    _both_classes(y, "DeLong's test")
    auc_a, v10_a, v01_a = _components(y, p_a)
    auc_b, v10_b, v01_b = _components(y, p_b)
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    m, n = len(v10_a), len(v01_a)
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    se = float(np.sqrt(max(var, 0.0)))
    diff = auc_a - auc_b
    q = stats.norm.ppf(0.5 + level / 2)
    if se > 0:
        z = diff / se
        p_value = float(2 * stats.norm.sf(abs(z)))
    else:                      # identical rankings: no difference and no uncertainty
        z, p_value = 0.0, 1.0
    return {"auc_a": auc_a, "auc_b": auc_b, "diff": diff, "se": se, "ci_low": diff - q * se,
            "ci_high": diff + q * se, "z": float(z), "p_value": p_value, "cases": m, "controls": n}


def operating_points(y, p, specificities=(0.90, 0.95), sensitivities=(0.90, 0.95)):
    """{"sens_at_spec_0.90": .., "threshold_sens_at_spec_0.90": .., "spec_at_sens_0.90": .., ...}.

    Sensitivity at specificity s: the highest sensitivity of any threshold whose specificity is
    >= s (people with a probability >= the threshold are called positive); likewise for
    specificity at a sensitivity.
    """
    y = _binary(y)
    p = _scores(p, len(y))
    _both_classes(y, "operating points")
    thresholds = np.unique(p)[::-1]                     # descending: each a possible cut
    order = np.argsort(-p, kind="mergesort")
    ys = y[order]
    # cumulative counts at each distinct threshold (ties called together)
    cut = np.searchsorted(-p[order], -thresholds, side="right")
    tp = np.cumsum(ys)[cut - 1]
    fp = cut - tp
    sens = tp / y.sum()
    spec = 1 - fp / (len(y) - y.sum())
    # the cut above the highest score: nobody positive
    sens = np.concatenate([[0.0], sens])
    spec = np.concatenate([[1.0], spec])
    thresholds = np.concatenate([[np.inf], thresholds])
    out = {}
    for s in specificities:
        ok = np.nonzero(spec >= s - 1e-12)[0]
        i = ok[np.argmax(sens[ok])]
        out[f"sens_at_spec_{s:.2f}"] = float(sens[i])
        out[f"threshold_sens_at_spec_{s:.2f}"] = float(thresholds[i])
    for s in sensitivities:
        ok = np.nonzero(sens >= s - 1e-12)[0]
        i = ok[np.argmax(spec[ok])]
        out[f"spec_at_sens_{s:.2f}"] = float(spec[i])
        out[f"threshold_spec_at_sens_{s:.2f}"] = float(thresholds[i])
    return out


def net_benefit(y, p, thresholds):
    """Decision curve: {"threshold", "model", "treat_all", "treat_none"} arrays over thresholds in (0, 1)."""
    y = _binary(y)
    p = _scores(p, len(y))
    t = np.asarray(thresholds, dtype=np.float64)
    if ((t <= 0) | (t >= 1)).any():
        raise InputError("decision-curve thresholds must lie strictly between 0 and 1")
    n = len(y)
    odds = t / (1 - t)
    treat = p[None, :] >= t[:, None]
    tp = (treat & (y[None, :] == 1)).sum(1) / n
    fp = (treat & (y[None, :] == 0)).sum(1) / n
    prevalence = y.mean()
    return {"threshold": t, "model": tp - fp * odds, "treat_all": prevalence - (1 - prevalence) * odds,
            "treat_none": np.zeros_like(t)}


def _logit(p):
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def _logistic_fit(x, y, offset, fit_slope):
    """Newton-Raphson for y ~ Bernoulli(sigmoid(a + b x + offset)); b fixed at 0 unless fit_slope."""
    a, b = 0.0, 0.0
    for _ in range(100):                      # the 1 x 1 or 2 x 2 Newton system solved by hand
        mu = 1 / (1 + np.exp(-np.clip(a + b * x + offset, -30, 30)))
        r, w = y - mu, mu * (1 - mu)
        ga, haa = r.sum(), w.sum() + 1e-10
        if fit_slope:
            gb, hab, hbb = (x * r).sum(), (x * w).sum(), (x * x * w).sum() + 1e-10
            det = haa * hbb - hab * hab
            da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        else:
            da, db = ga / haa, 0.0
        a, b = a + da, b + db
        if max(abs(da), abs(db)) < 1e-10:
            break
    return np.array([a, b]) if fit_slope else np.array([a])


def calibration_fit(y, p):
    """{"brier", "calibration_intercept", "calibration_slope", "mean_predicted", "observed_rate"}."""
    y = _binary(y)
    p = _scores(p, len(y))
    _both_classes(y, "calibration slope and intercept")
    lp = _logit(p)
    intercept = _logistic_fit(lp, y, lp, fit_slope=False)[0]
    slope = _logistic_fit(lp, y, np.zeros_like(lp), fit_slope=True)[1]
    return {"brier": float(np.mean((p - y) ** 2)), "calibration_intercept": float(intercept),
            "calibration_slope": float(slope), "mean_predicted": float(p.mean()), "observed_rate": float(y.mean())}


class PostHocCalibrator:
    """Per disease: temperature scaling (``sigmoid(logit(p) / T)``, T > 0 by maximum likelihood),
    logistic recalibration (``sigmoid(a + b logit(p))``, Platt's two parameters by maximum
    likelihood: it also moves the intercept, which a model trained with class weights needs, since
    its risks sit far above the prevalence) or isotonic regression (monotone, clipped outside the
    fitted range); fit on validation only."""

    METHODS = ("temperature", "logistic", "isotonic")

    def __init__(self, method="temperature"):
        if method not in self.METHODS:
            raise InputError(f"calibration method (evaluation.post_hoc_calibration, evaluation.decision_curve_risks) "
                             f"must be one of {', '.join(self.METHODS)}, got {method!r}")
        self.method = method
        self.params = None

    def fit(self, y, p):
        y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
        if y.ndim != 2 or y.shape != p.shape:
            raise InputError(f"calibration needs labels and probabilities [N, L], got {y.shape} and {p.shape}")
        self.params = []
        for j in range(y.shape[1]):
            t, q = _binary(y[:, j]), _scores(p[:, j], len(y))
            if not 0 < t.sum() < len(t):
                self.params.append(None)          # nothing to fit: left as it is
                continue
            if self.method == "temperature":
                lp = _logit(q)

                def nll(log_temp):
                    z = np.clip(lp / np.exp(log_temp), -30, 30)
                    return float(np.sum(np.logaddexp(0, z) - t * z))

                res = optimize.minimize_scalar(nll, bounds=(-5, 5), method="bounded")
                self.params.append(float(np.exp(res.x)))
            elif self.method == "logistic":
                lp = _logit(q)
                a, b = _logistic_fit(lp, t, np.zeros_like(lp), fit_slope=True)
                self.params.append((float(a), float(b)))
            else:
                from sklearn.isotonic import IsotonicRegression

                self.params.append(IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(q, t))
        return self

    def transform(self, p):
        if self.params is None:
            raise InputError("PostHocCalibrator: fit it on validation predictions first")
        p = np.asarray(p, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != len(self.params):
            raise InputError(f"calibration was fitted for {len(self.params)} labels, got probabilities {p.shape}")
        out = p.copy()
        for j, param in enumerate(self.params):
            if param is None:
                continue
            if self.method == "temperature":
                out[:, j] = 1 / (1 + np.exp(-np.clip(_logit(p[:, j]) / param, -30, 30)))
            elif self.method == "logistic":
                out[:, j] = 1 / (1 + np.exp(-np.clip(param[0] + param[1] * _logit(p[:, j]), -30, 30)))
            else:
                out[:, j] = param.predict(p[:, j])
        return out


def confusion_rows(y_true, y_prob, thresholds, names):
    """Per disease at its threshold: tp, fp, tn, fn, sensitivity, specificity, ppv, npv."""
    rows = []
    for j, name in enumerate(names):
        y, called = np.asarray(y_true)[:, j] == 1, np.asarray(y_prob)[:, j] >= thresholds[j]
        tp, fp = int((called & y).sum()), int((called & ~y).sum())
        fn, tn = int((~called & y).sum()), int((~called & ~y).sum())

        def ratio(a, b):
            return a / (a + b) if a + b else float("nan")

        rows.append({"disease": name, "threshold": float(thresholds[j]), "tp": tp, "fp": fp, "tn": tn, "fn": fn,
                     "sensitivity": ratio(tp, fn), "specificity": ratio(tn, fp), "ppv": ratio(tp, fp),
                     "npv": ratio(tn, fn)})
    return rows


def clinical_report(y_true, y_prob, names, specificities=(0.90, 0.95), sensitivities=(0.90, 0.95), n_boot=1000,
                    level=0.95, seed=0):
    """Rows {disease, metric, value, ci_low, ci_high} per disease: ROC-AUC with DeLong's interval;
    operating points, Brier score, calibration intercept and slope with percentile bootstrap
    intervals (people resampled; replicates with one class left out)."""
    y_true, y_prob = np.asarray(y_true, dtype=np.float64), np.asarray(y_prob, dtype=np.float64)
    q = stats.norm.ppf(0.5 + level / 2)
    tail = (1 - level) / 2 * 100
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(y_true), len(y_true)) for _ in range(int(n_boot))]
    rows = []
    for j, name in enumerate(names):
        y, p = y_true[:, j], y_prob[:, j]
        if not 0 < y.sum() < len(y):
            rows.append({"disease": name, "metric": "roc_auc", "value": float("nan"), "ci_low": float("nan"),
                         "ci_high": float("nan")})
            continue

        def point(yy, pp):
            return operating_points(yy, pp, specificities, sensitivities) | calibration_fit(yy, pp)

        value = point(y, p)
        keys = [k for k in value if not k.startswith("threshold_") and k not in ("mean_predicted", "observed_rate")]
        reps = np.array([[r[k] for k in keys] for r in (point(y[i], p[i]) for i in draws if 0 < y[i].sum() < len(i))])
        auc, lo, hi = auc_interval(y, p, q)
        rows.append({"disease": name, "metric": "roc_auc", "value": auc, "ci_low": lo, "ci_high": hi})
        for c, k in enumerate(keys):
            lo, hi = np.percentile(reps[:, c], [tail, 100 - tail]) if len(reps) else (np.nan, np.nan)
            rows.append({"disease": name, "metric": k, "value": float(value[k]), "ci_low": float(lo),
                         "ci_high": float(hi)})
        for k in value:
            if k.startswith("threshold_"):
                rows.append({"disease": name, "metric": k, "value": float(value[k]), "ci_low": float("nan"),
                             "ci_high": float("nan")})
    return rows
