"""The distributed-lag non-linear model baseline (ppeye/baselines/dlnm.py)."""
import numpy as np
import pytest

from ppeye.baselines.dlnm import DistributedLag, fit_logit, natural_spline
from ppeye.core.errors import DataError, InputError


def test_natural_splines_are_cubic_inside_and_linear_beyond_the_boundary_knots():
    knots = [0.0, 1.0, 2.5, 4.0]
    x = np.linspace(-3, 7, 1001)
    B = natural_spline(x, knots)
    assert B.shape == (1001, 3)
    for side in (x < -0.01, x > 4.01):
        second = np.diff(B[side], n=2, axis=0)
        assert np.abs(second).max() < 1e-10                                  # straight lines outside
    inside = (x > 0.01) & (x < 3.99)
    assert np.abs(np.diff(B[inside], n=2, axis=0)).max() > 1e-6              # curved inside
    with pytest.raises(DataError, match="knots must be increasing"):
        natural_spline(x, [0.0, 0.0, 1.0])


def test_newton_logistic_regression_matches_an_unpenalised_fit_and_its_wald_errors():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 4))
    y = (rng.random(3000) < 1 / (1 + np.exp(-(0.3 + X @ [1.0, -0.5, 0.0, 0.25])))).astype(float)
    beta, cov = fit_logit(X, y, ridge=0.0)
    ref = LogisticRegression(penalty=None, tol=1e-10, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(beta, np.r_[ref.intercept_, ref.coef_[0]], atol=1e-5)
    assert np.all(np.sqrt(np.diag(cov)) > 0.03) and np.all(np.sqrt(np.diag(cov)) < 0.07)


def _simulate(n, T=30, window=(5, 12), effect=1.2, seed=0):
    rng = np.random.default_rng(seed)
    e = np.zeros((n, T))
    e[:, 0] = rng.normal(size=n)
    for t in range(1, T):                                  # day-to-day persistence, as weather has
        e[:, t] = 0.6 * e[:, t - 1] + 0.8 * rng.normal(size=n)
    cov = {"age": rng.uniform(40, 75, n), "sex": rng.integers(0, 2, n).astype(float),
           "day_of_year": rng.integers(0, 365, n), "centre": rng.choice([11001, 11002, 11003], n)}
    a, b = window
    logit = -1.5 + 0.04 * (cov["age"] - 57) + effect * e[:, a - 1:b].mean(axis=1)
    labels = np.zeros((n, 4))
    labels[:, 1] = rng.random(n) < 1 / (1 + np.exp(-logit))
    for j in (0, 2, 3):
        labels[:, j] = rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 0.04 * (cov["age"] - 57))))
    return e, cov, labels


def test_the_lag_response_finds_the_planted_lag_window_and_nothing_elsewhere():
    """Planted: disease 1's log-odds rise with the mean exposure at lags 5-12 (others: no weather
    effect). The fitted lag-response peaks inside the window and its intervals exclude 0 there
    and include it for the other diseases; held-out people are ranked by the planted risk."""
    from sklearn.metrics import roc_auc_score

    e, cov, labels = _simulate(8000)
    model = DistributedLag(var_df=1, lag_df=5).fit(e[:6000], {k: v[:6000] for k, v in cov.items()}, labels[:6000])
    r = model.lag_response(1)
    lags = r["lag"]
    inside = (lags >= 5) & (lags <= 12)
    assert 5 <= lags[np.argmax(r["log_or"])] <= 12
    assert (r["low"][(lags >= 7) & (lags <= 10)] > 0).all()
    assert r["log_or"][inside].mean() > 4 * np.abs(r["log_or"][lags >= 20]).mean()
    # the overall effect: linear exposure, so (high - low) x the planted 1.2
    truth = 1.2 * (model.at[1] - model.at[0])
    assert r["overall_low"] < truth < r["overall_high"]
    for j in (0, 2, 3):
        other = model.lag_response(j)
        assert other["overall_low"] < 0 < other["overall_high"]
    p = model.predict(e[6000:], {k: v[6000:] for k, v in cov.items()})
    assert p.shape == (2000, 4) and roc_auc_score(labels[6000:, 1], p[:, 1]) > 0.6


def test_bad_settings_and_missing_weather_are_refused():
    e, cov, labels = _simulate(300)
    with pytest.raises(InputError, match="contrast must be two percentiles"):
        DistributedLag(contrast=(90, 50))
    with pytest.raises(InputError, match="lag_df between 1 and the window's 30 days"):
        DistributedLag(lag_df=31).fit(e, cov, labels)
    e[5:, 4] = np.nan                                      # people kept without weather are not fitted on
    with pytest.raises(DataError, match="has 5 training people with a whole weather window: too few"):
        DistributedLag().fit(e, cov, labels)
