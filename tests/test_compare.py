"""tools/compare.py's engine: baselines on the same people, DeLong table, refusals; the
classical baselines' features and models."""
import json
import os

import numpy as np
import pandas as pd
import pytest

import ppeye
from conftest import DEMO
from ppeye.core.errors import DataError, InputError
from ppeye.metrics import DISEASES
from ppeye.metrics.clinical import delong


@pytest.fixture(scope="module")
def compared(trained, tmp_path_factory):
    from ppeye.engine.compare import Comparison

    root, overrides = trained
    out = tmp_path_factory.mktemp("compare")
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r", "compare.logistic_c=[0.01, 1.0]",
                                               "compare.xgboost.n_estimators=40", "train.epochs=1",
                                               "compare.dlnm.negative_control_shift_days=60"])   # 6 months of data
    rows = Comparison(cfg, str(out), processes="inline").run()
    return root, out, rows


@pytest.mark.slow
def test_the_table_lists_every_baseline_on_the_same_test_people(compared):
    from ppeye.engine.compare import BASELINES

    root, out, rows = compared
    model = np.load(root / "r" / "eval" / "test_predictions.npz")
    table = pd.read_csv(out / "compare_test.csv")
    assert list(dict.fromkeys(table.contender)) == ["model", *BASELINES]
    assert set(table.disease) == {*DISEASES, "macro"}
    assert (table.n == len(model["rows"])).all()                    # every contender: the same test size
    assert set(pd.read_csv(out / "compare_external.csv").contender) == {"model", *BASELINES}
    for name in BASELINES:
        pred = np.load(out / name / "eval" / "test_predictions.npz")
        assert np.array_equal(pred["rows"], model["rows"]) and np.array_equal(pred["labels"], model["labels"])
        assert np.isfinite(pred["probs"]).all() and ((pred["probs"] >= 0) & (pred["probs"] <= 1)).all()
        # each contender's DeLong row is the test on the saved predictions
        j = int(np.argmax(model["labels"].sum(0)))
        row = table[(table.contender == name) & (table.disease == DISEASES[j])].iloc[0]
        t = delong(model["labels"][:, j], model["probs"][:, j], pred["probs"][:, j])
        six = dict(rel=2e-6, abs=1e-6)                   # the CSV holds 6 significant digits (core/io.csv_value)
        assert row.model_minus_contender == pytest.approx(t["diff"], **six)
        assert (row.diff_ci_low, row.diff_ci_high, row.p_value) == pytest.approx((t["ci_low"], t["ci_high"],
                                                                                   t["p_value"]), **six)
        assert row.ci_low <= row.roc_auc <= row.ci_high
    macro = table[table.disease == "macro"].set_index("contender")
    assert macro.loc["model", "roc_auc"] == pytest.approx(table[(table.contender == "model") &
                                                                (table.disease != "macro")].roc_auc.mean())
    assert np.isnan(macro.loc["model", "p_value"]) and (macro.drop("model").p_value.between(0, 1)).all()
    text = (out / "compare.md").read_text()
    assert all(f"| {name} |" in text for name in BASELINES) and "### external" in text
    # what the weather branch adds, per split, in words (compare.md, compare.json)
    saved = json.load(open(out / "compare.json"))["weather_branch"]
    assert set(saved) == {"test", "external"}
    for split, v in saved.items():
        assert v["verdict"] in ("above", "unclear", "below") and f"- {split}: " in text
    # the branch-off baselines are OnsetNet runs with the branch switched off
    for name, key in (("patient_only", "weather_branch"), ("weather_only", "patient_branch")):
        saved = ppeye.load_config(str(out / name / "config.yaml"))
        assert saved["model"][key] is False and saved["train"]["epochs"] == 1
    fitted = json.load(open(out / "logistic" / "eval" / "summary.json"))["fitted"]["per_disease"]
    assert {v["C"] for v in fitted.values()} <= {0.01, 1.0}
    # the distributed-lag baseline's lag-response curves: every lag of the window, and overall
    curves = pd.read_csv(out / "dlnm" / "lag_response.csv")
    T = ppeye.load_config(str(out / "patient_only" / "config.yaml"))["data"]["window_days"]
    assert len(curves) == 4 * (T + 1) and (curves.ci_low <= curves.log_or).all()
    assert (out / "dlnm" / "lag_response.png").exists()
    fitted = json.load(open(out / "dlnm" / "eval" / "summary.json"))["fitted"]
    assert fitted["variable"] == "surface_solar_radiation_downwards" and fitted["region"] == [0.15, 0.4, 0.55, 0.8]
    # its negative control: the same model on windows a year earlier, beside the real one
    assert len(pd.read_csv(out / "dlnm" / "lag_response_negative_control.csv")) == 4 * (T + 1)
    assert set(json.load(open(out / "dlnm" / "lag_response.json"))) == {"weather", "weather 60 days earlier"}


def _write_eval(d, rows, labels, probs):
    os.makedirs(d, exist_ok=True)
    np.savez(os.path.join(d, "test_predictions.npz"), rows=rows, labels=labels, probs=probs)
    return str(d)


def test_runs_on_other_people_or_other_labels_are_refused(tmp_path):
    from ppeye.engine.compare import write_comparison

    rng = np.random.default_rng(0)
    n = 120
    rows = np.arange(n) * 3
    labels = (rng.random((n, 4)) < 0.3).astype(float)
    a = _write_eval(tmp_path / "a", rows, labels, rng.random((n, 4)))
    other_people = _write_eval(tmp_path / "b", rows[:-5], labels[:-5], rng.random((n - 5, 4)))
    refused = r"test sets differ: .*a/test_predictions.npz \(model\) and .*b/test_predictions.npz \(b\) hold 120 and 115"
    with pytest.raises(DataError, match=refused):
        write_comparison({"model": a, "b": other_people}, str(tmp_path / "out"), ["test"], n_boot=10)
    flipped = labels.copy()
    flipped[:7, 0] = 1 - flipped[:7, 0]
    other_labels = _write_eval(tmp_path / "c", rows, flipped, rng.random((n, 4)))
    with pytest.raises(DataError, match="test label sets differ: .* different labels for 7 of them"):
        write_comparison({"model": a, "c": other_labels}, str(tmp_path / "out"), ["test"], n_boot=10)
    assert not (tmp_path / "out").exists()                          # nothing half-written
    # the same people in another order are aligned, not refused
    perm = rng.permutation(n)
    probs = rng.random((n, 4))
    shuffled = _write_eval(tmp_path / "d", rows[perm], labels[perm], probs[perm])
    same = _write_eval(tmp_path / "e", rows, labels, probs)
    one = write_comparison({"model": a, "x": shuffled}, str(tmp_path / "o1"), ["test"], n_boot=20)
    two = write_comparison({"model": a, "x": same}, str(tmp_path / "o2"), ["test"], n_boot=20)
    assert [r["model_minus_contender"] for r in one] == pytest.approx([r["model_minus_contender"] for r in two],
                                                                      nan_ok=True)


def test_compare_tool_refuses_runs_on_different_test_sets(tmp_path):
    import subprocess
    import sys

    rng = np.random.default_rng(1)
    a = _write_eval(tmp_path / "a" / "eval", np.arange(50), (rng.random((50, 4)) < 0.3) * 1.0, rng.random((50, 4)))
    b = _write_eval(tmp_path / "b" / "eval", np.arange(1, 51), (rng.random((50, 4)) < 0.3) * 1.0, rng.random((50, 4)))
    for d in (a, b):
        open(os.path.join(d, "summary.json"), "w").write("{}")
    tool = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "compare.py")
    r = subprocess.run([sys.executable, tool, "--runs", f"model={tmp_path / 'a'}", str(tmp_path / "b"),
                        "--output_dir", str(tmp_path / "out")], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert "error: the test sets differ" in r.stderr and "1 of them in one only" not in r.stderr


def test_logistic_and_xgboost_baselines_learn_and_check_their_input():
    from ppeye.baselines import fit_logistic, fit_xgboost

    rng = np.random.default_rng(0)

    def make(n):
        X = rng.normal(size=(n, 6))
        logits = np.stack([2 * X[:, 0], -2 * X[:, 1], X[:, 2] + X[:, 3], 2 * X[:, 4]], axis=1)
        return X, (rng.random((n, 4)) < 1 / (1 + np.exp(-logits))).astype(float)

    (Xt, Yt), (Xv, Yv), (Xs, Ys) = make(600), make(300), make(300)
    from sklearn.metrics import roc_auc_score

    for fitted in (fit_logistic(Xt, Yt, Xv, Yv, c_grid=(0.01, 1.0)),
                   fit_xgboost(np.where(rng.random(Xt.shape) < 0.1, np.nan, Xt), Yt, Xv, Yv, {"n_estimators": 60})):
        p = fitted.predict(Xs)
        assert p.shape == (300, 4) and ((p > 0) & (p < 1)).all()
        assert min(roc_auc_score(Ys[:, j], p[:, j]) for j in range(4)) > 0.7
    with pytest.raises(DataError, match="training split has only one class for cataract"):
        Y1 = Yt.copy()
        Y1[:, 1] = 0
        fit_logistic(Xt, Y1, Xv, Yv)
    with pytest.raises(DataError, match="logistic regression: the validation features hold 1 non-finite"):
        Xn = Xv.copy()
        Xn[3, 2] = np.nan
        fit_logistic(Xt, Yt, Xn, Yv)
    with pytest.raises(InputError, match=r"compare.xgboost: unknown settings \['depth'\]"):
        fit_xgboost(Xt, Yt, Xv, Yv, {"depth": 3})


def test_logistic_with_its_own_penalty_on_some_columns():
    """``own_penalty``: a penalty ratio of 1 is the plain fit; a huge one shrinks those columns
    toward 0 while the others keep theirs; the raw-feature linear form gives the same logits."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from ppeye.baselines import fit_logistic

    rng = np.random.default_rng(1)
    X = rng.normal(size=(900, 6)) * [1, 2, 3, 1, 5, 0.5] + [0, 1, -2, 3, 0, 10]
    logits = np.stack([X[:, 0] - 0.5 * X[:, 4], -X[:, 1], X[:, 5] - 10 + X[:, 0], 0.3 * X[:, 2]], axis=1)
    Y = (rng.random((900, 4)) < 1 / (1 + np.exp(-logits))).astype(float)
    tr, va = slice(0, 600), slice(600, 900)
    plain = fit_logistic(X[tr], Y[tr], X[va], Y[va], c_grid=(0.1, 1.0))
    same = fit_logistic(X[tr], Y[tr], X[va], Y[va], c_grid=(0.1, 1.0), own_penalty=(4, [1.0]))
    np.testing.assert_allclose(same.predict(X[va]), plain.predict(X[va]), rtol=1e-12)
    assert all(v["own_penalty"] == 1.0 for v in same.params["per_disease"].values())
    # one ratio, chosen by nobody: the shrinkage is the point
    shrunk = fit_logistic(X[tr], Y[tr], X[va], Y[va], c_grid=(1.0,), own_penalty=(4, [1e6]))
    w_plain, _ = plain.linear()
    w, b = shrunk.linear()
    assert np.abs(w[4:]).max() < 1e-3 < np.abs(w_plain[4:]).max()
    assert np.abs(w[:4]).max() > 0.3
    # the linear form is the fitted models' logits on the raw features
    for fitted in (plain, shrunk):
        w, b = fitted.linear()
        np.testing.assert_allclose(1 / (1 + np.exp(-(X[va] @ w + b))), fitted.predict(X[va]), rtol=1e-9, atol=1e-12)
    # the validation ROC-AUC recorded is the chosen model's, over every (ratio, C) pair tried
    both = fit_logistic(X[tr], Y[tr], X[va], Y[va], c_grid=(0.1, 1.0), own_penalty=(4, [1.0, 100.0]))
    p = both.predict(X[va])
    for j, (d, v) in enumerate(both.params["per_disease"].items()):
        assert v["val_roc_auc"] == pytest.approx(roc_auc_score(Y[va, j], p[:, j]), abs=1e-12)
        for r in (1.0, 100.0):
            z = (X - X[tr].mean(0)) / X[tr].std(0) * np.r_[np.ones(4), np.full(2, r ** -0.5)]
            for c in (0.1, 1.0):
                m = LogisticRegression(C=c, max_iter=5000).fit(z[tr], Y[tr, j])
                assert roc_auc_score(Y[va, j], m.decision_function(z[va])) <= v["val_roc_auc"] + 1e-9
    with pytest.raises(InputError, match="own_penalty needs a column in 0..5 and positive ratios"):
        fit_logistic(X[tr], Y[tr], X[va], Y[va], own_penalty=(4, [0.0]))
    with pytest.raises(InputError, match="own_penalty needs a column"):
        fit_logistic(X[tr], Y[tr], X[va], Y[va], own_penalty=(6, [1.0]))


def test_climate_features_are_window_means_and_anomalies_of_the_store(tiny_work):
    from conftest import PIPE, TINY
    from ppeye.baselines import ClimateFeatures
    from ppeye.data.dataset import OnsetDataset

    cfg = ppeye.load_config(DEMO, TINY + PIPE + tiny_work)
    ds = OnsetDataset(cfg, "train")
    climate = ClimateFeatures(ds.store, cfg["data"]["norm_period"], segments=2)
    X = climate.transform(ds)
    V = len(cfg["data"]["variables"])
    assert X.shape == (len(ds), 3 * V) and len(climate.names) == 3 * V and np.isfinite(X).all()
    for i in (0, len(ds) // 2, len(ds) - 1):
        days = np.arange(ds.start[i], ds.start[i] + ds.T)
        window = ds.store.read(int(ds.site[i]), days).mean(axis=(0, 2, 3, 4))
        assert X[i, :V] == pytest.approx(window, abs=1e-4)
    # the two halves' anomalies average to the whole window's (T is even)
    whole = ClimateFeatures(ds.store, cfg["data"]["norm_period"], segments=1).transform(ds)
    assert (X[:, V:2 * V] + X[:, 2 * V:]) / 2 == pytest.approx(whole[:, V:], abs=1e-5)
    assert np.abs(whole[:, V:]).max() > 1e-3                       # and they are not all zero
    # the distributed-lag exposure: one variable's daily mean at lags 1..T (lag 1 the day before the
    # index date), over the box or a part of it
    t2m = list(cfg["data"]["variables"]).index("t2m")
    lagged = climate.lagged(ds, "2m_temperature", anomaly=False)
    corner = ClimateFeatures(ds.store, cfg["data"]["norm_period"], segments=1, region=[0, 0.5, 0.5, 1])
    lagged_corner = corner.lagged(ds, "t2m", anomaly=False)
    mean, std = ds.store.mean.reshape(-1)[t2m], ds.store.std.reshape(-1)[t2m]
    for i in (0, len(ds) - 1):
        days = np.arange(ds.start[i], ds.start[i] + ds.T)
        raw = ds.store.read(int(ds.site[i]), days)[:, t2m] * std + mean          # back from the store's units
        assert lagged[i] * std + mean == pytest.approx(raw.mean(axis=(1, 2, 3))[::-1], abs=1e-3)
        H, W = raw.shape[-2:]
        part = raw[:, :, : H // 2, W // 2:].mean(axis=(1, 2, 3))[::-1]
        assert lagged_corner[i] * std + mean == pytest.approx(part, abs=1e-3)
    # a window moved 7 days earlier: lag l is the unshifted lag l + 7; one that leaves the store is NaN
    shifted = climate.lagged(ds, "t2m", anomaly=False, shift=7)
    late, early = ds.start >= 7, ds.start < 7
    assert late.any() and early.any() and np.isnan(shifted[early]).all()
    whole = late & np.isfinite(shifted).all(axis=1)
    assert whole.sum() > 0.9 * late.sum()
    np.testing.assert_array_equal(shifted[whole, : ds.T - 7], lagged[whole, 7:])
    with pytest.raises(InputError, match=r"compare.dlnm.variable 'skt' is not in the store's variables"):
        climate.lagged(ds, "skt")
    with pytest.raises(InputError, match=r"a box region is \[row0, row1, col0, col1\] fractions"):
        ClimateFeatures(ds.store, cfg["data"]["norm_period"], region=[0.5, 0.2, 0, 1])
    # people without weather get the climatological zero
    absent = ds.subset(np.arange(3))
    absent.weather_present = np.zeros(3, np.float32)
    assert (climate.transform(absent) == 0).all()
    assert np.isnan(climate.lagged(absent, "t2m")).all()
    with pytest.raises(DataError, match="no valid day in data.norm_period"):
        ClimateFeatures(ds.store, ["1990-01-01", "1990-12-31"])


def test_bad_comparison_settings_are_refused_before_anything_runs(trained, tmp_path):
    from ppeye.engine.compare import Comparison

    root, overrides = trained
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r"])
    with pytest.raises(InputError, match=r"unknown baselines \['xgb'\]: choose from patient_only, weather_only, "
                                         r"xgboost"):
        Comparison(cfg, str(tmp_path / "c"), ["xgb"])
    assert Comparison(cfg, str(tmp_path / "c"), ["late_fusion"]).baselines == ["weather_only", "patient_only",
                                                                               "late_fusion"]
    with pytest.raises(InputError, match=r"splits \['holdout'\] are not in the cohort"):
        Comparison(cfg, str(tmp_path / "d"), ["logistic"], splits=["holdout"]).run()
    assert not (tmp_path / "d").exists()
    for bad, message in (("compare.dlnm.negative_control_shift_days=-1", "negative_control_shift_days must be a whole"),
                         ("compare.dlnm.lag_df=0", r"compare.dlnm.lag_df must be a whole number >= 1, got 0"),
                         ("compare.dlnm.region=[0.5, 0.2, 0, 1]", "a box region is"),
                         ("compare.dlnm.contrast=[90, 10]", "contrast must be two percentiles")):
        with pytest.raises(InputError, match=message):
            Comparison(ppeye.load_config(DEMO, overrides + [f"weights={root}/r", bad]), str(tmp_path / "e"), ["dlnm"])
    assert not (tmp_path / "e").exists()


def test_the_comparison_says_plainly_when_the_model_is_below_its_patient_only_baseline():
    from ppeye.engine.compare import weather_verdicts

    def row(split, contender, d, lo, hi):
        return {"split": split, "contender": contender, "disease": "macro", "model_minus_contender": d,
                "diff_ci_low": lo, "diff_ci_high": hi}

    rows = [row("test", "model", np.nan, np.nan, np.nan), row("test", "patient_only", 0.05, 0.01, 0.09),
            row("external", "patient_only", -0.06, -0.11, -0.01), row("period", "patient_only", 0.01, -0.03, 0.05),
            row("period_2", "patient_only", -0.01, -0.05, 0.03), row("test", "xgboost", -0.2, -0.3, -0.1)]
    got = weather_verdicts(rows)
    assert {k: v[0] for k, v in got.items()} == {"test": "above", "external": "below", "period": "unclear",
                                                 "period_2": "below"}
    assert "BELOW its own patient-only baseline (-0.060 [-0.110, -0.010], interval below 0): its weather branch " \
           "hurts" in got["external"][1]
    assert "the interval includes 0" in got["period_2"][1] and "hurts" not in got["period_2"][1]
    assert weather_verdicts([r for r in rows if r["contender"] != "patient_only"]) == {}


def test_single_modality_baselines_of_a_model_with_missing_modalities_can_be_built():
    """model.missing needs both branches: the patient-only and weather-only baselines of such a
    config drop it (they used to fail at their first step, so compare and the bench crashed)."""
    from ppeye.engine.compare import NEURAL, patient_only_overrides, single_modality_overrides, weather_only_overrides

    missing = ["model.missing.enabled=true"]

    def built(overrides):
        cfg = ppeye.load_config(DEMO, overrides)
        cfg["model"]["missing"]["blocks"] = [[0, 1]]        # given, so no converted data is needed
        return ppeye.build_model(cfg)

    cfg = ppeye.load_config(DEMO, missing + ["pretrained=null"])
    with pytest.raises(InputError, match="model.missing needs both branches"):
        built([*missing, *NEURAL["patient_only"]])
    for name, extra in (("patient_only", patient_only_overrides(cfg)), ("weather_only", weather_only_overrides(cfg))):
        assert "model.missing.enabled=false" in extra
        model = built([*missing, *NEURAL[name], *extra])
        assert model.missing is None
    assert single_modality_overrides(ppeye.load_config(DEMO)) == []
