"""Imputation of patient features, fitted on the training split and reused at inference.

Methods (``ukb.imputer``):

* ``mean`` / ``median``: the training mean or median per continuous column;
* ``mice``: chained equations (scikit-learn's IterativeImputer, Bayesian ridge per column);
* ``knn``: the mean of the 5 nearest training rows over the observed columns;
* ``xgboost``: the MissForest scheme with gradient-boosted trees as the learner: start
  from the mean/mode fill, predict each column from all the others (one model per
  column, fitted on the rows where it is observed, with the other columns filled the
  same way, plus a copy with 20% of the inputs reset to their fill so that a model
  does not lean on a column that may be missing too), and repeat the round of
  predictions ``rounds`` times at imputation.
  (Letting xgboost route missing inputs natively failed here: models fitted on
  complete columns send a missing input down an arbitrary branch, worse than the mean.)

Every method fills categorical columns with codes it has seen (the training mode for
mean/median, the rounded or most likely code otherwise). Columns are standardised
with training statistics before MICE/KNN and un-standardised after, so no column
dominates by its units. The fitted imputer is saved with joblib as
``features/imputer.joblib``; load it only from a work directory you made.
"""
import numpy as np

from ...core.errors import ConfigError, DataError
from ...core.io import atomic_write
from ...core.logger import get_logger
from ...core.optional import require

METHODS = ("mean", "median", "mice", "knn", "xgboost")


class FeatureImputer:
    """Impute a float matrix ``X`` [N, F] with NaN for missing; ``kinds`` names each column's kind.

    >>> import numpy as np
    >>> imp = FeatureImputer("mean").fit(np.array([[1.0, 0.0], [3.0, 1.0], [np.nan, 1.0]]), ["continuous", "categorical"])
    >>> imp.transform(np.array([[np.nan, np.nan]])).tolist()
    [[2.0, 1.0]]
    """

    def __init__(self, method="xgboost", seed=0, n_neighbors=5, max_iter=10, n_estimators=60, max_depth=4, rounds=3):
        if method not in METHODS:
            raise ConfigError(f"unknown imputer '{method}'; use one of {', '.join(METHODS)}")
        self.method = method
        self.seed = seed
        self.n_neighbors = n_neighbors
        self.max_iter = max_iter
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.rounds = rounds

    def fit(self, X, kinds):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(kinds):
            raise DataError(f"imputer: X must be [N, {len(kinds)}] (one kind per column), got {X.shape}")
        self.kinds = list(kinds)
        self.categorical = np.array([k == "categorical" for k in kinds])
        observed = ~np.isnan(X)
        self.center = np.array([np.nanmean(c) if o.any() else 0.0 for c, o in zip(X.T, observed.T)])
        scale = np.array([np.nanstd(c) if o.any() else 1.0 for c, o in zip(X.T, observed.T)])
        self.scale = np.where(scale > 0, scale, 1.0)
        self.median = np.array([np.nanmedian(c) if o.any() else 0.0 for c, o in zip(X.T, observed.T)])
        self.mode = np.array([_mode(c[~np.isnan(c)]) for c in X.T])
        self.levels = [np.unique(c[~np.isnan(c)]) if cat else None for c, cat in zip(X.T, self.categorical)]
        self.fallback = np.where(self.categorical, self.mode, self.center if self.method != "median" else self.median)
        Z = (X - self.center) / self.scale
        if self.method == "mice":
            import warnings

            from sklearn.exceptions import ConvergenceWarning
            from sklearn.experimental import enable_iterative_imputer  # noqa: F401
            from sklearn.impute import IterativeImputer

            self.model = IterativeImputer(max_iter=self.max_iter, random_state=self.seed, keep_empty_features=True)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                self.model.fit(Z)
            self.converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        elif self.method == "knn":
            from sklearn.impute import KNNImputer

            self.model = KNNImputer(n_neighbors=self.n_neighbors, keep_empty_features=True)
            self.model.fit(Z)
        elif self.method == "xgboost":
            self.model = self._fit_trees(X)
        return self

    def _initial_fill(self, X):
        return np.where(np.isnan(X), self.fallback[None, :], X)

    def _fit_trees(self, X):
        xgb = require("xgboost")

        filled = self._initial_fill(X)
        # a second copy of the rows with 20% of the inputs reset to their fill value, so each
        # model also learns to predict when some of the other columns are missing too
        rng = np.random.default_rng(self.seed)
        dropped = np.where(rng.random(X.shape) < 0.2, self.fallback[None, :], filled)
        models = {}
        for j in range(X.shape[1]):
            seen = ~np.isnan(X[:, j])
            if seen.sum() < 10:  # too few values to learn from: the column keeps its mean/mode
                continue
            inputs = np.concatenate([np.delete(filled, j, axis=1)[seen], np.delete(dropped, j, axis=1)[seen]])
            target = np.concatenate([X[seen, j], X[seen, j]])
            common = dict(n_estimators=self.n_estimators, max_depth=self.max_depth, learning_rate=0.15,
                          subsample=0.9, random_state=self.seed, n_jobs=1, tree_method="hist")
            if self.categorical[j]:
                levels = self.levels[j]
                if len(levels) < 2:
                    continue
                model = xgb.XGBClassifier(**common)
                model.fit(inputs, np.searchsorted(levels, target))
            else:
                model = xgb.XGBRegressor(**common)
                model.fit(inputs, target)
            models[j] = model
        return models

    def _predict_trees(self, X, missing):
        out = self._initial_fill(X)
        columns = [j for j in np.nonzero(missing.any(0))[0] if j in self.model]
        for _ in range(self.rounds):
            for j in columns:
                rows = missing[:, j]
                inputs = np.delete(out[rows], j, axis=1)
                if self.categorical[j]:
                    out[rows, j] = self.levels[j][self.model[j].predict(inputs).astype(int)]
                else:
                    out[rows, j] = self.model[j].predict(inputs)
        return out

    def transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.kinds):
            raise DataError(f"imputer: expected [N, {len(self.kinds)}] features, got {X.shape}")
        missing = np.isnan(X)
        if not missing.any():
            return X.copy()
        if self.method in ("mean", "median"):
            out = np.where(missing, self.fallback[None, :], X)
        elif self.method in ("mice", "knn"):
            Z = self.model.transform((X - self.center) / self.scale)
            out = np.where(missing, Z * self.scale + self.center, X)
        else:
            out = self._predict_trees(X, missing)
        return self._snap_categories(out, missing)

    def _snap_categories(self, out, missing):
        for j in np.nonzero(self.categorical & missing.any(0))[0]:
            levels = self.levels[j]
            if levels is None or len(levels) == 0:
                out[missing[:, j], j] = 0.0
                continue
            values = out[missing[:, j], j]
            nearest = np.abs(values[:, None] - levels[None, :]).argmin(1)
            out[missing[:, j], j] = levels[nearest]
        return out


def _mode(values):
    if len(values) == 0:
        return 0.0
    uniq, counts = np.unique(values, return_counts=True)
    return float(uniq[np.argmax(counts)])


# ------------------------------------------------------------------------------ comparison


def mask_known(X, rng, kind="random", rate=0.1, block_rows=0.1, block_cols=0.3):
    """Hide observed cells for scoring: at random (``rate`` of them) or as blocks
    (for ``block_rows`` of the rows, the same random ``block_cols`` share of the columns).
    Returns the masked copy and the boolean matrix of hidden cells."""
    X = np.asarray(X, dtype=np.float64)
    observed = ~np.isnan(X)
    if kind == "random":
        hide = observed & (rng.random(X.shape) < rate)
    elif kind == "block":
        cols = rng.random(X.shape[1]) < block_cols
        if not cols.any():
            cols[rng.integers(X.shape[1])] = True
        rows = rng.random(X.shape[0]) < block_rows
        hide = observed & rows[:, None] & cols[None, :]
    else:
        raise ConfigError(f"mask kind must be random or block, got {kind!r}")
    masked = X.copy()
    masked[hide] = np.nan
    return masked, hide


def score(truth, imputed, hidden, kinds, scale):
    """RMSE of standardised continuous values and accuracy of categories, over hidden cells."""
    cat = np.array([k == "categorical" for k in kinds])
    cont_cells = hidden & ~cat[None, :]
    cat_cells = hidden & cat[None, :]
    z_err = ((imputed - truth) / scale[None, :])[cont_cells]
    rmse = float(np.sqrt(np.mean(z_err**2))) if z_err.size else float("nan")
    acc = float(np.mean(imputed[cat_cells] == truth[cat_cells])) if cat_cells.any() else float("nan")
    return {"rmse_std": rmse, "accuracy": acc, "cells_continuous": int(cont_cells.sum()), "cells_categorical": int(cat_cells.sum())}


def compare(tables, methods=METHODS, masks=("random", "block"), seed=0, log=None):
    """Score every method on every table and mask kind; a list of result rows.

    ``tables`` maps a name to ``(X, kinds)``; rows are split 70/30 into fit and score parts,
    so each imputer is scored on rows it did not see during fitting.
    """
    rows = []
    for name, (X, kinds) in tables.items():
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(X))
        cut = int(0.7 * len(X))
        fit_rows, test_rows = X[order[:cut]], X[order[cut:]]
        scale = np.nanstd(fit_rows, axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        for mask in masks:
            masked, hidden = mask_known(test_rows, np.random.default_rng(seed + 1), mask)
            for method in methods:
                imputer = FeatureImputer(method, seed=seed).fit(fit_rows, kinds)
                imputed = imputer.transform(masked)
                result = score(test_rows, imputed, hidden, kinds, scale)
                rows.append({"table": name, "mask": mask, "method": method, **result})
                if log:
                    log.info(f"imputation {name:<10} {mask:<6} {method:<8} rmse(std) {result['rmse_std']:.3f} "
                             f"accuracy {result['accuracy']:.3f}")
    return rows


def rank_methods(rows):
    """Mean rank of each method, best first, over every (table, mask, metric) with cells to score.

    Methods are ranked by standardised RMSE (continuous cells) and by accuracy
    (categorical cells) separately in each scenario; ties share the average rank.
    """
    import pandas as pd

    frame = pd.DataFrame(rows)
    ranks = []
    for column, ascending in (("rmse_std", True), ("accuracy", False)):
        scored = frame[frame[column].notna()]
        ranks.append(scored.groupby(["table", "mask"])[column].rank(method="average", ascending=ascending)
                     .rename("rank").to_frame().join(scored["method"]))
    return pd.concat(ranks).groupby("method")["rank"].mean().sort_values()


def impute_cohort(cfg, log=None):
    """Fit ``ukb.imputer`` on the training split of cohort.parquet and write the imputed cohort.

    Writes ``cohort_imputed.parquet`` (same rows and columns, no missing feature values;
    the missing pattern stays in cohort.parquet for ``tab_mask``),
    ``features/imputer.joblib`` and ``features/tab_stats.json`` (the training mean and
    standard deviation of each non-categorical feature, for standardising).
    """
    import json
    import os

    import joblib
    import pandas as pd


    log = log or get_logger("ppeye.impute")
    work = cfg["data"]["work_dir"]
    path = os.path.join(work, "cohort.parquet")
    if not os.path.isfile(path):
        raise DataError(f"{path} does not exist: run tools/preprocess.py --stage ukb first")
    meta = json.load(open(os.path.join(work, "features", "ukb_fields.json")))
    cohort = pd.read_parquet(path)
    columns = [m["column"] for m in meta["fields"]]
    kinds = [m["kind"] for m in meta["fields"]]
    X = cohort[columns].to_numpy(dtype=np.float64)
    train = (cohort["split"] == "train").to_numpy()
    if not train.any():
        raise DataError(f"{path}: the training split is empty")
    method = cfg["ukb"]["imputer"]
    imputer = FeatureImputer(method, seed=int(cfg["ukb"]["seed"])).fit(X[train], kinds)
    filled = cohort.copy()
    filled[columns] = imputer.transform(X).astype(np.float32)
    with atomic_write(os.path.join(work, "features", "imputer.joblib"), mode="wb") as f:
        joblib.dump(imputer, f)
    # standardisation of the imputed features (training rows; categories keep their codes)
    values = filled.loc[train, columns].to_numpy(np.float64)
    categorical = np.array([k == "categorical" for k in kinds])
    mean = np.where(categorical, 0.0, values.mean(0))
    std = np.where(categorical, 1.0, values.std(0))
    std = np.where(std > 0, std, 1.0)
    with atomic_write(os.path.join(work, "features", "tab_stats.json")) as f:
        json.dump({"columns": columns, "kinds": kinds, "mean": mean.tolist(), "std": std.tolist()}, f, indent=1)
    with atomic_write(os.path.join(work, "cohort_imputed.parquet"), mode="wb") as f:
        filled.to_parquet(f, index=False)
    share = float(np.isnan(X).mean())
    log.info(f"imputed {share:.1%} missing feature values with {method} (fitted on {int(train.sum())} training rows)")
    return {"method": method, "missing_share": share, "rows": len(cohort)}
