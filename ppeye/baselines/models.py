"""One classical model per disease, fitted on the training split and tuned on validation.

``fit_logistic`` and ``fit_xgboost`` return a :class:`PerDisease` whose ``predict(X)`` gives
probabilities ``[N, 4]`` and whose ``params`` record what was chosen (JSON-ready).
"""
import os

import numpy as np
from sklearn.metrics import roc_auc_score

from ..core.errors import DataError, InputError
from ..core.optional import require
from ..metrics import DISEASES


class PerDisease:
    """``models[j]`` predicts disease j. With ``mean``/``std`` the inputs are standardised first
    and, with ``factor`` ([F, 4]), then multiplied column by column by disease j's factors."""

    def __init__(self, models, params, mean=None, std=None, factor=None):
        self.models, self.params, self.mean, self.std, self.factor = models, params, mean, std, factor

    def _inputs(self, X, j):
        return X if self.factor is None else X * self.factor[:, j]

    def predict(self, X):
        X = np.asarray(X, dtype=np.float64)
        if self.mean is not None:
            X = (X - self.mean) / self.std
        return np.stack([m.predict_proba(self._inputs(X, j))[:, 1] for j, m in enumerate(self.models)], axis=1)

    def linear(self):
        """Weights [F, 4] and biases [4] of the logits on the raw (unstandardised) features: the
        form a frozen linear layer takes (linear models only)."""
        factor = np.ones((len(self.mean), len(self.models))) if self.factor is None else self.factor
        weight = np.stack([m.coef_[0] * factor[:, j] for j, m in enumerate(self.models)], axis=1) / self.std[:, None]
        bias = np.array([m.intercept_[0] for m in self.models]) - (self.mean[:, None] * weight).sum(axis=0)
        return weight, bias


def _check(X_train, Y_train, X_val, Y_val, what, allow_nan=False):
    for name, X, Y in (("training", X_train, Y_train), ("validation", X_val, Y_val)):
        if X.ndim != 2 or len(X) != len(Y):
            raise InputError(f"{what}: {name} features {X.shape} do not match labels {Y.shape}")
        if not allow_nan and not np.isfinite(X).all():
            raise DataError(f"{what}: the {name} features hold {int((~np.isfinite(X)).sum())} non-finite values")
        for j, d in enumerate(DISEASES):
            if len(np.unique(Y[:, j])) < 2:
                raise DataError(f"{what}: the {name} split has only one class for {d}: cannot fit or tune on it")


C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


def fit_logistic(X_train, Y_train, X_val, Y_val, c_grid=C_GRID, seed=0, own_penalty=None):
    """L2 logistic regression on features standardised with the training mean and SD; per
    disease the inverse regularisation strength ``C`` with the best validation ROC-AUC (ties:
    the strongest regularisation).

    ``own_penalty=(first, grid)`` gives the columns from ``first`` on their own penalty, ``r``
    times the other columns' for ``r`` in ``grid``, chosen per disease with ``C`` (ties: the
    largest ``r``) and recorded as ``own_penalty``. A penalty ``r`` on a column is that column
    scaled by ``1/sqrt(r)`` under the common penalty."""
    from sklearn.linear_model import LogisticRegression

    _check(X_train, Y_train, X_val, Y_val, "logistic regression")
    grid = sorted(float(c) for c in c_grid)
    if not grid or grid[0] <= 0:
        raise InputError(f"compare.logistic_c must be a list of positive numbers, got {list(c_grid)}")
    factors = [(None, None)]
    if own_penalty is not None:
        first, ratios = own_penalty
        ratios = sorted((float(r) for r in ratios), reverse=True)
        if not ratios or ratios[-1] <= 0 or not 0 <= first < X_train.shape[1]:
            raise InputError(f"logistic regression: own_penalty needs a column in 0..{X_train.shape[1] - 1} "
                             f"and positive ratios, got {own_penalty}")
        factors = [(r, np.concatenate([np.ones(first), np.full(X_train.shape[1] - first, r ** -0.5)]))
                   for r in ratios]
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    Xt, Xv = (X_train - mean) / std, (X_val - mean) / std
    models, chosen, chosen_factor = [], {}, np.ones((X_train.shape[1], len(DISEASES)))
    for j, d in enumerate(DISEASES):
        best = None
        for ratio, factor in factors:
            zt, zv = (Xt, Xv) if factor is None else (Xt * factor, Xv * factor)
            for c in grid:
                m = LogisticRegression(C=c, max_iter=5000, random_state=seed).fit(zt, Y_train[:, j])
                auc = roc_auc_score(Y_val[:, j], m.predict_proba(zv)[:, 1])
                if best is None or auc > best[0] + 1e-12:
                    best = (auc, c, m, ratio, factor)
        models.append(best[2])
        chosen[d] = {"C": best[1], "val_roc_auc": float(best[0])}
        if best[4] is not None:
            chosen[d]["own_penalty"] = best[3]
            chosen_factor[:, j] = best[4]
    return PerDisease(models, {"model": "L2 logistic regression", "per_disease": chosen}, mean, std,
                      None if own_penalty is None else chosen_factor)


XGBOOST_DEFAULTS = {"n_estimators": 500, "learning_rate": 0.05, "max_depth": 3, "subsample": 0.8,
                    "colsample_bytree": 0.8, "min_child_weight": 1.0, "reg_lambda": 1.0, "early_stopping_rounds": 30}


def fit_xgboost(X_train, Y_train, X_val, Y_val, params=None, seed=0):
    """Gradient-boosted trees (histogram method; NaN is a value the trees route), early-stopped
    on the validation log-loss; ``params`` override :data:`XGBOOST_DEFAULTS`."""
    xgboost = require("xgboost")

    _check(X_train, Y_train, X_val, Y_val, "xgboost", allow_nan=True)
    unknown = sorted(set(params or {}) - set(XGBOOST_DEFAULTS))
    if unknown:
        raise InputError(f"compare.xgboost: unknown settings {unknown}; known: {sorted(XGBOOST_DEFAULTS)}")
    p = dict(XGBOOST_DEFAULTS) | dict(params or {})
    models, chosen = [], {}
    for j, d in enumerate(DISEASES):
        m = xgboost.XGBClassifier(tree_method="hist", eval_metric="logloss", random_state=seed,
                                  n_jobs=os.cpu_count() or 1, **p)
        m.fit(X_train, Y_train[:, j], eval_set=[(X_val, Y_val[:, j])], verbose=False)
        models.append(m)
        chosen[d] = {"trees": int(m.best_iteration) + 1,
                     "val_roc_auc": float(roc_auc_score(Y_val[:, j], m.predict_proba(X_val)[:, 1]))}
    return PerDisease(models, {"model": "XGBoost", "settings": p, "per_disease": chosen})
