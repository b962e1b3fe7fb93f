"""A distributed-lag non-linear model (DLNM): the epidemiologists' baseline for lagged weather effects.

Each person's exposure is one variable's daily site mean (its anomaly from the site's
climatology by default) at lags 1..T before the index date. As in Gasparrini's dlnm, the
cross-basis crosses a natural cubic spline in the exposure (``var_df`` columns, knots at
quantiles of the training exposures, no intercept) with a natural cubic spline in the lag
(``lag_df`` columns with the intercept, knots equally spaced over 1..T): column (j, k) of a person
is ``sum over lags l of f_j(x_l) g_k(l)``. Per disease a logistic regression on the cross-basis
adjusted for age, sex, season (sine and cosine of the index date's day of the year) and centre
(one indicator per training centre but the first; a centre training never saw gets the training
mean) is fitted by Newton's method, with the Wald covariance of its coefficients.

The lag-response of a disease is the log odds ratio at each lag of the exposure at the
``contrast``'s high percentile against its low one (of the training exposures), with a Wald
interval; summed over lags it is the overall (cumulative) effect.
"""
import numpy as np
import pandas as pd

from ..core.errors import DataError, InputError
from ..data.attributes import cohort_rows
from ..data.era5.variables import get_variable
from ..data.ukb.fields import disease_title
from ..metrics import DISEASES
from ..metrics.plots import _figure


def natural_spline(x, knots):
    """Natural cubic spline basis at ``x`` for sorted ``knots`` (the first and last are the boundary
    knots): ``len(knots) - 1`` columns, ``x`` and the truncated cubics that are linear beyond the
    boundary knots (no intercept). Inputs are rescaled to the boundary knots' range first."""
    k = np.asarray(knots, np.float64)
    if k.ndim != 1 or len(k) < 2 or np.any(np.diff(k) <= 0):
        raise DataError(f"natural spline knots must be increasing (at least 2), got {k.tolist()}: "
                        f"the exposure takes too few distinct values for this many degrees of freedom")
    lo, span = k[0], k[-1] - k[0]
    u, k = (np.asarray(x, np.float64) - lo) / span, (k - lo) / span

    def d(j):
        return (np.clip(u - k[j], 0, None) ** 3 - np.clip(u - k[-1], 0, None) ** 3) / (k[-1] - k[j])

    last = d(len(k) - 2)
    return np.stack([u] + [d(j) - last for j in range(len(k) - 2)], axis=-1)


class CrossBasis:
    """The exposure x lag cross-basis, its knots fixed on the training exposures ``[N, T]``."""

    def __init__(self, exposure, var_df=2, lag_df=4):
        var_df, lag_df = int(var_df), int(lag_df)
        T = exposure.shape[1]
        if var_df < 1 or not 1 <= lag_df <= T:
            raise InputError(f"compare.dlnm: var_df must be >= 1 and lag_df between 1 and the window's {T} days, "
                             f"got {var_df} and {lag_df}")
        values = exposure[np.isfinite(exposure)]
        self.var_knots = np.quantile(values, np.linspace(0, 1, var_df + 1))
        self.lags = np.arange(1, T + 1)
        lag_knots = np.linspace(1, T, lag_df)
        self.lag_basis = np.ones((T, 1)) if lag_df == 1 else \
            np.concatenate([np.ones((T, 1)), natural_spline(self.lags, lag_knots)], axis=1)   # [T, lag_df]
        self.var_df, self.lag_df = var_df, lag_df

    def transform(self, exposure):
        """``[N, var_df * lag_df]`` for exposures ``[N, T]`` (lag 1 first)."""
        return np.einsum("nlv,lk->nvk", natural_spline(exposure, self.var_knots), self.lag_basis).reshape(
            len(exposure), -1)

    def lag_matrix(self, high, low):
        """``[T, var_df * lag_df]``: row l maps the coefficients to the log odds ratio at lag l of
        exposure ``high`` against ``low``."""
        delta = natural_spline(np.array([high]), self.var_knots)[0] - natural_spline(np.array([low]), self.var_knots)[0]
        return np.einsum("v,lk->lvk", delta, self.lag_basis).reshape(len(self.lags), -1)


def fit_logit(X, y, ridge=1e-6, max_iter=100, tol=1e-9):
    """Logistic regression of ``y`` on ``[1, X]`` by Newton's method (a tiny ridge on the slopes for
    separable data); returns the coefficients (intercept first) and their Wald covariance."""
    Xd = np.concatenate([np.ones((len(X), 1)), X], axis=1)
    beta = np.zeros(Xd.shape[1])
    penalty = np.full(Xd.shape[1], ridge)
    penalty[0] = 0.0
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-np.clip(Xd @ beta, -30, 30)))
        H = (Xd * (p * (1 - p))[:, None]).T @ Xd + np.diag(penalty)
        step = np.linalg.solve(H, Xd.T @ (y - p) - penalty * beta)
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            break
    p = 1.0 / (1.0 + np.exp(-np.clip(Xd @ beta, -30, 30)))
    H = (Xd * (p * (1 - p))[:, None]).T @ Xd + np.diag(penalty)
    return beta, np.linalg.inv(H)


class DistributedLag:
    """``fit(exposure, covariates, labels)``, ``predict(exposure, covariates)`` (probabilities
    ``[N, 4]``) and ``lag_response(disease)``; ``covariates`` is a dict of arrays (see
    :func:`adjustment`)."""

    def __init__(self, var_df=2, lag_df=4, contrast=(50, 90)):
        self.var_df, self.lag_df = var_df, lag_df
        low, high = (float(c) for c in contrast)
        if not 0 <= low < high <= 100:
            raise InputError(f"compare.dlnm.contrast must be two percentiles [low, high], low < high, got {contrast}")
        self.contrast = (low, high)

    def fit(self, exposure, covariates, labels):
        """Fit on the people with a whole weather window (people kept without one,
        ``data.incomplete_weather: include``, are left out of the fit and predicted at exposure 0)."""
        keep = np.isfinite(exposure).all(axis=1)
        if keep.sum() < 10:
            raise DataError(f"the distributed-lag baseline has {int(keep.sum())} training people with a whole "
                            f"weather window: too few to fit")
        exposure, labels = exposure[keep], labels[keep]
        covariates = {k: np.asarray(v)[keep] for k, v in covariates.items()}
        self.basis = CrossBasis(exposure, self.var_df, self.lag_df)
        self.adjust = Adjustment(covariates)
        X = self._design(exposure, covariates)
        self.mean, self.std = X.mean(axis=0), np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
        Z = (X - self.mean) / self.std
        self.fits = [fit_logit(Z, labels[:, j]) for j in range(labels.shape[1])]
        values = exposure.ravel()
        self.at = tuple(float(np.percentile(values, q)) for q in self.contrast)      # (low, high)
        self.params = {"model": "distributed-lag non-linear logistic regression", "var_df": self.var_df,
                       "lag_df": self.lag_df, "contrast_percentiles": list(self.contrast),
                       "contrast_values": list(self.at), "adjusted_for": self.adjust.names,
                       "fitted_on": int(keep.sum())}
        return self

    def _design(self, exposure, covariates):
        cb = self.basis.transform(np.nan_to_num(exposure))
        return np.concatenate([cb, self.adjust.transform(covariates)], axis=1)

    def predict(self, exposure, covariates):
        Z = (self._design(exposure, covariates) - self.mean) / self.std
        logits = np.stack([beta[0] + Z @ beta[1:] for beta, _ in self.fits], axis=1)
        return 1.0 / (1.0 + np.exp(-logits))

    def lag_response(self, j, z=1.959964):
        """Disease ``j``: per lag the log odds ratio of the high exposure against the low one, its
        standard error and interval; and the overall effect summed over lags."""
        n_cb = self.basis.var_df * self.basis.lag_df
        beta, cov = self.fits[j]
        scale = self.std[:n_cb]
        M = self.basis.lag_matrix(self.at[1], self.at[0]) / scale                  # on the standardised columns
        b, V = beta[1:n_cb + 1], cov[1:n_cb + 1, 1:n_cb + 1]
        log_or = M @ b
        se = np.sqrt(np.einsum("lk,kj,lj->l", M, V, M))
        total = M.sum(axis=0)
        overall, overall_se = float(total @ b), float(np.sqrt(total @ V @ total))
        return {"lag": self.basis.lags, "log_or": log_or, "se": se, "low": log_or - z * se, "high": log_or + z * se,
                "overall": overall, "overall_low": overall - z * overall_se, "overall_high": overall + z * overall_se}


class Adjustment:
    """The adjustment columns: age, sex (missing: the training mean), season as sine and cosine of
    the index date's day of the year, and centre indicators (one per training centre but the first;
    a centre training never saw gets the training mean of each)."""

    def __init__(self, cov):
        self.age_mean = float(np.nanmean(cov["age"]))
        self.sex_mean = float(np.nanmean(cov["sex"]))
        centre = np.asarray(cov["centre"])
        self.all_centres = sorted(set(centre.tolist()))
        self.centres = self.all_centres[1:]
        self.centre_mean = np.array([(centre == c).mean() for c in self.centres])
        self.names = ["age", "sex", "season_sin", "season_cos"] + [f"centre_{c}" for c in self.centres]

    def transform(self, cov):
        age = np.where(np.isnan(cov["age"]), self.age_mean, cov["age"])
        sex = np.where(np.isnan(cov["sex"]), self.sex_mean, cov["sex"])
        angle = 2 * np.pi * np.asarray(cov["day_of_year"], np.float64) / 365.25
        centre = np.asarray(cov["centre"])
        dummies = np.stack([(centre == c).astype(np.float64) for c in self.centres], axis=1) if self.centres else \
            np.zeros((len(centre), 0))
        dummies[~np.isin(centre, self.all_centres)] = self.centre_mean
        return np.concatenate([np.stack([age, sex, np.sin(angle), np.cos(angle)], axis=1), dummies], axis=1)


def covariates(cfg, ds):
    """The adjustment variables of ``ds``'s people from cohort.parquet's raw values: age at the index
    date (years, from the year of birth, field 34), sex (field 31), the index date's day of the
    year and the centre."""
    rows = cohort_rows(cfg, ds.cohort_pos, ["site", "index_date", "f34", "f31"])
    index = pd.to_datetime(rows["index_date"])
    born = rows["f34"].to_numpy(np.float64) if "f34" in rows else np.full(len(rows), np.nan)
    return {"age": index.dt.year.to_numpy(np.float64) + (index.dt.dayofyear.to_numpy() - 0.5) / 365.25 - born - 0.5,
            "sex": rows["f31"].to_numpy(np.float64) if "f31" in rows else np.full(len(rows), np.nan),
            "day_of_year": index.dt.dayofyear.to_numpy() - 1, "centre": rows["site"].to_numpy()}


def lag_response_rows(model, diseases=DISEASES):
    """CSV rows (disease, lag, log_or, ci_low, ci_high) of every disease's lag-response."""
    rows = []
    for j, d in enumerate(diseases):
        r = model.lag_response(j)
        rows += [{"disease": d, "lag": int(l), "log_or": float(a), "ci_low": float(b), "ci_high": float(c)}
                 for l, a, b, c in zip(r["lag"], r["log_or"], r["low"], r["high"])]
        rows.append({"disease": d, "lag": "overall", "log_or": r["overall"], "ci_low": r["overall_low"],
                     "ci_high": r["overall_high"]})
    return rows


def lag_response_figure(model, variable, diseases=DISEASES):
    """One panel per disease: the log odds ratio by lag with its 95% interval."""
    plt = _figure()
    fig, axes = plt.subplots(1, len(diseases), figsize=(3.2 * len(diseases), 3.0), sharey=True)
    low, high = model.contrast
    for j, (ax, d) in enumerate(zip(np.atleast_1d(axes), diseases)):
        r = model.lag_response(j)
        ax.fill_between(r["lag"], r["low"], r["high"], color="tab:blue", alpha=0.25, lw=0)
        ax.plot(r["lag"], r["log_or"], color="tab:blue", lw=1.5)
        ax.axhline(0, color="k", lw=0.8, ls=":")
        ax.set_title(f"{disease_title(d)}\noverall {r['overall']:+.2f} [{r['overall_low']:+.2f}, {r['overall_high']:+.2f}]",
                     fontsize=8)
        ax.set_xlabel("lag (days before the index date)")
    np.atleast_1d(axes)[0].set_ylabel(f"log OR, {get_variable(variable).short}: p{high:g} vs p{low:g}")
    fig.tight_layout()
    return fig


def from_config(cfg):
    """``compare.dlnm``'s settings: the exposure (variable, anomaly, region), the negative control's
    shift and the model's ``(var_df, lag_df, contrast)``."""
    dc = (cfg.get("compare") or {}).get("dlnm") or {}
    return {"variable": dc.get("variable", "2m_temperature"), "anomaly": bool(dc.get("anomaly", True)),
            "region": dc.get("region"), "shift": dc.get("negative_control_shift_days", 365),
            "model": (dc.get("var_df", 2), dc.get("lag_df", 4), dc.get("contrast", (50, 90)))}


def lag_ranges(values):
    """Sorted integers as ranges: [3, 4, 5, 9] -> '3-5, 9'."""
    out = []
    for v in (int(v) for v in values):
        if out and v == out[-1][1] + 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in out)
