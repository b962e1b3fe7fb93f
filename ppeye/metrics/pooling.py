"""Pooling one figure measured several times: over seeds (Rubin's rules) and over centres
(random-effects meta-analysis).

- :func:`over_seeds`: the same people scored by models trained with different seeds. Each run
  gives an estimate and its standard error from resampling people; the seeds add the training's
  own variability. Rubin's rules (as for multiply imputed data) combine both: total variance
  ``W + (1 + 1/m) B`` (W the mean within-run variance, B the variance between runs), with a t
  interval on Rubin's degrees of freedom ``(m - 1) / r^2``, r the share of the total variance due
  to the seeds.
- :func:`random_effects`: one estimate per held-out centre (internal-external cross-validation),
  pooled by DerSimonian and Laird's random-effects model, with its interval, tau^2 (between-centre
  variance), Cochran's Q with its p-value and I^2 (the share of the spread beyond chance).
"""
import numpy as np
from scipy import stats


def se_from_interval(low, high, level=0.95):
    """The standard error a symmetric normal interval [low, high] at ``level`` implies."""
    return (np.asarray(high, float) - np.asarray(low, float)) / (2 * stats.norm.ppf(0.5 + level / 2))


def over_seeds(estimates, ses, level=0.95):
    """Rubin's rules for ``estimates`` [m] with standard errors ``ses`` [m] (one per seed): a dict
    of ``mean``, ``sd`` (between seeds), ``min``, ``max``, ``seeds``, ``ci_low``/``ci_high`` (the
    pooled interval) and ``df``. NaN estimates are left out; one seed gives its own interval
    (normal) and no sd."""
    est, se = np.asarray(estimates, float), np.asarray(ses, float)
    keep = np.isfinite(est)
    est, se = est[keep], se[keep]
    m = len(est)
    out = {"seeds": m, "mean": np.nan, "sd": np.nan, "min": np.nan, "max": np.nan, "ci_low": np.nan,
           "ci_high": np.nan, "df": np.nan}
    if m == 0:
        return out
    mean = float(est.mean())
    out |= {"mean": mean, "min": float(est.min()), "max": float(est.max())}
    within = float(np.nanmean(se**2)) if np.isfinite(se).any() else np.nan
    if m == 1:
        half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(within)
        return out | {"ci_low": mean - half, "ci_high": mean + half, "df": np.inf}
    between = float(est.var(ddof=1))
    out["sd"] = float(np.sqrt(between))
    if not np.isfinite(within):
        within = 0.0
    total = within + (1 + 1 / m) * between
    if total <= 0:
        return out | {"ci_low": mean, "ci_high": mean, "df": np.inf}
    r = (1 + 1 / m) * between / total                  # share of the variance due to the seeds
    df = (m - 1) / r**2 if r > 0 else np.inf
    half = (stats.t.ppf(0.5 + level / 2, df) if np.isfinite(df) else stats.norm.ppf(0.5 + level / 2)) * np.sqrt(total)
    return out | {"ci_low": mean - half, "ci_high": mean + half, "df": float(df)}


def random_effects(estimates, ses, level=0.95):
    """DerSimonian-Laird pooling of ``estimates`` [k] with standard errors ``ses`` [k]: a dict of
    ``pooled``, ``se``, ``ci_low``/``ci_high``, ``tau2``, ``q``, ``q_p`` (Cochran's Q test of
    homogeneity), ``i2`` (0-1) and ``k``. Estimates with a non-finite or zero standard error are
    left out."""
    est, se = np.asarray(estimates, float), np.asarray(ses, float)
    keep = np.isfinite(est) & np.isfinite(se) & (se > 0)
    est, se = est[keep], se[keep]
    k = len(est)
    nan = {"pooled": np.nan, "se": np.nan, "ci_low": np.nan, "ci_high": np.nan, "tau2": np.nan, "q": np.nan,
           "q_p": np.nan, "i2": np.nan, "k": k}
    if k == 0:
        return nan
    w = 1 / se**2
    fixed = float((w * est).sum() / w.sum())
    q = float((w * (est - fixed) ** 2).sum())
    c = float(w.sum() - (w**2).sum() / w.sum())
    tau2 = max(0.0, (q - (k - 1)) / c) if k > 1 and c > 0 else 0.0
    w_re = 1 / (se**2 + tau2)
    pooled = float((w_re * est).sum() / w_re.sum())
    se_p = float(np.sqrt(1 / w_re.sum()))
    z = stats.norm.ppf(0.5 + level / 2)
    return {"pooled": pooled, "se": se_p, "ci_low": pooled - z * se_p, "ci_high": pooled + z * se_p, "tau2": tau2,
            "q": q, "q_p": float(stats.chi2.sf(q, k - 1)) if k > 1 else np.nan,
            "i2": max(0.0, (q - (k - 1)) / q) if k > 1 and q > 0 else 0.0, "k": k}
