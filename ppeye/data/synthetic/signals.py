"""The planted signals: what drives disease risk in the synthetic data, exactly.

For a person at site ``s`` with reference date ``t`` (the index date if they become
a case), the log-odds of disease ``k`` are::

    logit_k = b_k                                   (solved so the prevalence is as configured)
            + sum_j w_kj * x_j                      (a) patient features (true values)
            + beta_k^event(age band) * z_event      (b) weather events in one variable, inside one
                                                        sub-region of the box, in a lag window
            + beta_k^periodic(season) * z_periodic  (c) amplitude of a fixed-period oscillation
                                                        over the whole window

``z_event`` is the standardised sum of event mass inside the site's region over
the days ``t - lag_max .. t - lag_min``; ``z_periodic`` the standardised mean
oscillation amplitude at the site over the ``window_days`` before ``t``. The
subgroups (d) decide which weather signal acts: the event effect depends on the
age band at ``t`` (older / younger), the periodic effect on the season of ``t``
(winter / summer). Everything here is written to ``ground_truth.json``.
"""
import numpy as np

from ...core.errors import ConfigError
from ..ukb.fields import DISEASES

# (a) patient effects: disease -> [(covariate, field id, weight)]; covariates are
# the true values before missingness, transformed as named.
PATIENT_EFFECTS = {
    "glaucoma": [("age_per_decade", 34, 0.5), ("iop_sd", 5262, 0.6), ("male", 31, 0.15), ("black_ethnicity", 21000, 0.6)],
    "cataract": [("age_per_decade", 34, 0.8), ("diabetes", 2443, 0.5), ("current_smoker", 20116, 0.4)],
    "amd": [("age_per_decade", 34, 1.0), ("current_smoker", 20116, 0.7), ("bmi_sd", 21001, 0.1)],
    "dr": [("diabetes", 2443, 2.2), ("hba1c_sd", 30750, 0.8), ("sbp_sd", 4080, 0.2)],
}


def validate(signals, variables, window_days):
    """Check the ``synthetic.signals`` section against the data config; raise ConfigError."""
    shorts = {v.short: v for v in variables}
    names = {v.name: v.short for v in variables}
    out = {}
    for key in ("event", "periodic"):
        if key not in signals:
            raise ConfigError(f"synthetic.signals.{key} is missing")
        spec = dict(signals[key])
        var = spec.get("variable")
        var = names.get(var, var)
        if var not in shorts:
            raise ConfigError(
                f"synthetic.signals.{key}.variable '{spec.get('variable')}' is not in data.variables "
                f"({', '.join(shorts)})"
            )
        spec["variable"] = var
        for disease, by_group in spec.get("effects", {}).items():
            if disease not in DISEASES:
                raise ConfigError(f"synthetic.signals.{key}.effects: unknown disease '{disease}' (use {', '.join(DISEASES)})")
        out[key] = spec
    ev = out["event"]
    lo, hi = ev["lags"]
    if not (1 <= lo <= hi <= window_days):
        raise ConfigError(f"synthetic.signals.event.lags {ev['lags']} must satisfy 1 <= first <= second <= data.window_days ({window_days})")
    y0, y1, x0, x1 = ev["region"]
    if not (0 <= y0 < y1 <= 1 and 0 <= x0 < x1 <= 1):
        raise ConfigError(f"synthetic.signals.event.region {ev['region']} must be fractions [y0, y1, x0, x1] of the box with y0 < y1, x0 < x1")
    if not 0 <= ev["inside_share"] <= 1:
        raise ConfigError("synthetic.signals.event.inside_share must be in [0, 1]")
    if out["periodic"]["period_days"] < 2:
        raise ConfigError("synthetic.signals.periodic.period_days must be >= 2")
    for group in ("older_age", "winter_months"):
        if group not in signals.get("subgroups", {}):
            raise ConfigError(f"synthetic.signals.subgroups.{group} is missing")
    out["subgroups"] = dict(signals["subgroups"])
    return out


def window_sums(daily, site, ref_day, lag_min, lag_max):
    """Sum of ``daily[day, site]`` over the days ``ref_day - lag_max .. ref_day - lag_min``.

    ``daily`` [days, sites]; ``site``, ``ref_day`` integer arrays [N] (day indices).
    """
    csum = np.vstack([np.zeros((1, daily.shape[1])), np.cumsum(daily, axis=0)])
    return csum[ref_day - lag_min + 1, site] - csum[ref_day - lag_max, site]


def solve_intercept(logit_rest, target):
    """The intercept ``b`` with ``mean(sigmoid(b + logit_rest)) == target`` (bisection)."""
    lo, hi = -30.0, 30.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if np.mean(1 / (1 + np.exp(-(mid + logit_rest)))) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def auc(scores, labels):
    """ROC-AUC by the rank-sum formula (ties get half credit); NaN for one class only."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def day_contrast(volumes, region_cells):
    """The planted event's per-day quantity: each day's total of the event variable (summed
    over the hours) averaged inside the planted region minus outside it. ``volumes``: that
    variable's days [days, D, H, W]; ``region_cells``: ``ground_truth.json``'s
    ``event.region_cells``. Returns [days] (float64)."""
    daily = np.asarray(volumes, dtype=np.float64).sum(axis=1)   # [days, H, W]
    inside = np.zeros(daily.shape[1:], dtype=bool)
    inside[region_cells["rows"][0] : region_cells["rows"][1] + 1, region_cells["cols"][0] : region_cells["cols"][1] + 1] = True
    return daily[:, inside].mean(1) - daily[:, ~inside].mean(1)


def visibility(store, site, end, z_event, z_periodic, gt):
    """How visible the planted weather signals are in a converted store, without any model.

    For each person (store site position ``site``, exclusive window end ``end`` as store day
    indices), the ideal hand-made detectors: for the event, the sum over the lag window of
    the event variable's daily total (summed over the hours) averaged inside the planted
    region minus outside it; for the oscillation, the magnitude of the window's Fourier
    coefficient at the planted period of the periodic variable's box mean. Returns their
    Pearson correlations with the truth's ``z_event`` and ``z_periodic``: the ceiling of what
    a model (and so its explanations) can recover from the weather. Near 0, the signal is
    buried in the weather's own variability.
    """
    ev, per = gt["event"], gt["periodic"]
    lo, hi = ev["lags"]
    T = int(gt["window_days"])
    k = T / float(per["period_days"])
    weather = store.group["weather"]
    vi, pi = store.variables.index(ev["variable"]), store.variables.index(per["variable"])
    site, end = np.asarray(site), np.asarray(end)
    event_feat = np.full(len(site), np.nan)
    periodic_feat = np.full(len(site), np.nan)
    basis = np.exp(-2j * np.pi * k * np.arange(T) / T)
    for s in np.unique(site):
        contrast = day_contrast(weather[int(s), :, vi], ev["region_cells"])
        series = np.asarray(weather[int(s), :, pi], dtype=np.float64).mean(axis=(1, 2, 3))
        for i in np.nonzero(site == s)[0]:
            e = int(end[i])
            event_feat[i] = contrast[e - hi : e - lo + 1].sum()
            w = series[e - T : e]
            periodic_feat[i] = np.abs(((w - w.mean()) * basis).sum())

    def corr(a, b):
        ok = np.isfinite(a) & np.isfinite(b)
        return float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 2 else float("nan")

    return {"event": corr(event_feat, np.asarray(z_event, float)),
            "periodic": corr(periodic_feat, np.asarray(z_periodic, float))}
