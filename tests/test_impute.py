"""Imputers: fill only what is missing, learn from the training rows, survive a save/load."""
import os

import joblib
import numpy as np
import pandas as pd
import pytest

import ppeye
from conftest import DEMO, TINY, shared
from ppeye.core.errors import ConfigError, DataError
from ppeye.data.ukb.cohort import build_cohort
from ppeye.data.ukb.impute import METHODS, FeatureImputer, compare, impute_cohort, mask_known, rank_methods


def table(n=400, seed=0):
    """x; y = 2x + noise (linear); z = x^2 (non-linear); c a category driven by x."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    X = np.stack([x, 2 * x + 0.1 * rng.normal(size=n), x**2, (x > 0.3).astype(float) + (x > 1.0)], axis=1)
    return X, ["continuous", "continuous", "continuous", "categorical"]


@pytest.mark.parametrize("method", METHODS)
def test_fills_only_missing_cells_with_valid_categories(method):
    X, kinds = table()
    masked, hidden = mask_known(X, np.random.default_rng(1), "random", rate=0.2)
    out = FeatureImputer(method).fit(masked[:300], kinds).transform(masked)
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out[~hidden], X[~hidden])
    assert set(np.unique(out[:, 3])) <= {0.0, 1.0, 2.0}


def test_model_based_methods_beat_the_mean_where_columns_are_related():
    X, kinds = table(600)
    scale = X[:400].std(0)
    masked, hidden = mask_known(X[400:], np.random.default_rng(2), "random", rate=0.3)

    def column_rmse(method, j):
        out = FeatureImputer(method).fit(X[:400], kinds).transform(masked)
        return np.sqrt(np.mean(((out - X[400:])[hidden[:, j], j] / scale[j]) ** 2)), out

    for j in (0, 1):  # x and y = 2x: a linear model recovers them
        assert column_rmse("mice", j)[0] < 0.7 * column_rmse("mean", j)[0]
    assert column_rmse("xgboost", 2)[0] < 0.5 * column_rmse("mean", 2)[0]  # z = x^2: trees do
    out = column_rmse("xgboost", 3)[1]
    cats = hidden[:, 3]
    assert np.mean(out[cats, 3] == X[400:][cats, 3]) > 0.95  # the category follows x


def test_fitted_statistics_come_from_the_training_rows_only():
    X = np.array([[1.0], [3.0], [np.nan]])
    imputer = FeatureImputer("mean").fit(X, ["continuous"])
    assert imputer.transform(np.array([[np.nan], [100.0]])).ravel().tolist() == [2.0, 100.0]


def test_save_and_load_give_the_same_imputations(tmp_path):
    X, kinds = table()
    masked, _ = mask_known(X, np.random.default_rng(3), "block")
    imputer = FeatureImputer("xgboost").fit(masked, kinds)
    joblib.dump(imputer, tmp_path / "imp.joblib")
    again = joblib.load(tmp_path / "imp.joblib")
    np.testing.assert_array_equal(imputer.transform(masked), again.transform(masked))


def test_bad_input():
    X, kinds = table()
    with pytest.raises(ConfigError, match="unknown imputer 'magic'"):
        FeatureImputer("magic")
    imputer = FeatureImputer("mean").fit(X, kinds)
    with pytest.raises(DataError, match=r"expected \[N, 4\] features, got \(2, 3\)"):
        imputer.transform(np.zeros((2, 3)))


def test_block_masks_hide_the_same_columns_together():
    X = np.ones((200, 10))
    _, hidden = mask_known(X, np.random.default_rng(0), "block", block_rows=0.2, block_cols=0.3)
    rows = hidden.any(1)
    assert 0.1 < rows.mean() < 0.3
    assert (hidden[rows] == hidden[rows][0]).all()  # every hit row misses the same columns


def test_comparison_ranks_every_method_on_a_real_table():
    t = pd.read_csv(shared("tabular", "pbc.csv")).drop(columns=["rownames", "id", "sex"])
    X = t.to_numpy(dtype=float)
    kinds = ["categorical" if len(np.unique(c[~np.isnan(c)])) <= 5 else "continuous" for c in X.T]
    rows = compare({"pbc": (X, kinds)}, methods=("mean", "mice"))
    assert len(rows) == 4 and {r["method"] for r in rows} == {"mean", "mice"}
    assert all(r["cells_continuous"] > 0 for r in rows)
    assert list(rank_methods(rows).index) == sorted({"mean", "mice"}, key=lambda m: rank_methods(rows)[m])


def test_impute_stage_writes_a_complete_cohort(tiny, tmp_path):
    out, _ = tiny
    cfg = ppeye.load_config(DEMO, TINY + [f"data.ukb_table={out}/ukb.csv", f"data.work_dir={tmp_path}"])
    build_cohort(cfg)
    result = impute_cohort(cfg)
    raw = pd.read_parquet(tmp_path / "cohort.parquet")
    filled = pd.read_parquet(tmp_path / "cohort_imputed.parquet")
    cols = [c for c in raw if c.startswith("f")]
    assert result["method"] == "xgboost" and 0.05 < result["missing_share"] < 0.5
    assert not filled[cols].isna().any().any()
    observed = raw[cols].notna().to_numpy()
    np.testing.assert_allclose(filled[cols].to_numpy()[observed], raw[cols].to_numpy()[observed])
    assert os.path.getsize(tmp_path / "features" / "imputer.joblib") > 0


def test_impute_stage_needs_the_cohort(tmp_path):
    cfg = ppeye.load_config(DEMO, TINY + [f"data.work_dir={tmp_path}"])
    with pytest.raises(DataError, match="run tools/preprocess.py --stage ukb first"):
        impute_cohort(cfg)
