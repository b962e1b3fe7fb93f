"""Clinical statistics (ppeye/metrics/clinical.py): DeLong, operating points, decision curves,
calibration fit and post-hoc calibration."""
import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from ppeye.core.errors import InputError
from ppeye.metrics.clinical import (PostHocCalibrator, auc_variance, calibration_fit, delong, net_benefit,
                                    operating_points)


def correlated_scores(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(float)
    shared = rng.normal(size=n)
    a = 1.0 * y + shared + 0.7 * rng.normal(size=n)
    b = 0.6 * y + shared + 0.7 * rng.normal(size=n)
    return y, a, b


def mann_whitney_auc(y, s):
    """ROC-AUC as the Mann-Whitney statistic on mid-ranks (the bootstraps below draw 6,000 of
    them: scikit-learn's roc_auc_score took 30 s for that, this 0.3 s; the point values are
    checked against scikit-learn's above)."""
    pos = y == 1
    n1 = pos.sum()
    return (rankdata(s)[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1))


def test_delong_matches_sklearn_auc_and_a_bootstrap():
    y, a, b = correlated_scores()
    res = delong(y, a, b)
    assert res["auc_a"] == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert res["auc_b"] == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    assert res["diff"] == pytest.approx(res["auc_a"] - res["auc_b"])
    # brute force: the standard deviation of the paired difference over bootstrap replicates
    rng = np.random.default_rng(1)
    diffs = []
    for _ in range(2000):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            diffs.append(mann_whitney_auc(y[i], a[i]) - mann_whitney_auc(y[i], b[i]))
    assert res["se"] == pytest.approx(np.std(diffs), rel=0.1)
    assert res["ci_low"] < res["diff"] < res["ci_high"]
    assert res["p_value"] < 0.05                      # a real difference on 400 people
    # the single-AUC variance agrees with the bootstrap as well
    assert mann_whitney_auc(y, a) == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    boot = [mann_whitney_auc(y[i], a[i]) for i in (rng.integers(0, len(y), len(y)) for _ in range(2000))]
    assert np.sqrt(auc_variance(y, a)) == pytest.approx(np.std(boot), rel=0.1)


def test_delong_symmetry_ties_and_identical_scores():
    y, a, b = correlated_scores(seed=3)
    ab, ba = delong(y, a, b), delong(y, b, a)
    assert ab["diff"] == pytest.approx(-ba["diff"]) and ab["p_value"] == pytest.approx(ba["p_value"])
    same = delong(y, a, a)
    assert same["diff"] == 0 and same["p_value"] == 1.0
    rounded = np.round(a)                              # heavy ties: mid-ranks still give sklearn's AUC
    assert delong(y, rounded, b)["auc_a"] == pytest.approx(roc_auc_score(y, rounded))
    # under the null (two noisy copies of the same score) p-values are roughly uniform
    rng = np.random.default_rng(5)
    ps = []
    for _ in range(200):
        yy = (rng.random(200) < 0.3).astype(float)
        s = yy + rng.normal(size=200)
        ps.append(delong(yy, s + 0.5 * rng.normal(size=200), s + 0.5 * rng.normal(size=200))["p_value"])
    assert 0.02 < np.mean(np.array(ps) < 0.05) < 0.10


def test_one_case_gives_an_auc_without_an_interval_not_0_to_1_and_no_warning():
    import warnings

    from ppeye.metrics.clinical import auc_interval, clinical_report
    from ppeye.metrics.subgroups import subgroup_table

    y = np.array([1, 0, 0, 0, 0, 0], float)
    p = np.array([0.9, 0.1, 0.2, 0.3, 0.95, 0.4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auc, lo, hi = auc_interval(y, p, 1.96)
        assert auc == pytest.approx(0.8) and np.isnan(lo) and np.isnan(hi)
        row = clinical_report(np.c_[y, 1 - y], np.c_[p, p], ["a", "b"], n_boot=20)[0]
        assert row["metric"] == "roc_auc" and np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])
        rows = subgroup_table(np.c_[y, y, y, y], np.c_[p, p, p, p], {"sex": np.array(["f"] * 6)}, min_cases=1)
        assert not any(r["differs"] for r in rows) and np.isnan(rows[0]["ci_low"])


def test_operating_points_by_hand():
    y = np.array([0, 0, 0, 0, 1, 0, 1, 1, 0, 1], float)
    p = np.arange(10) / 10.0
    out = operating_points(y, p, specificities=(0.8,), sensitivities=(0.75,))
    # specificity >= 0.8 allows at most one false positive among 6 controls: cut at 0.6 -> 3 cases of 4
    assert out["sens_at_spec_0.80"] == 0.75 and out["threshold_sens_at_spec_0.80"] == pytest.approx(0.6)
    # sensitivity >= 0.75: cut at 0.6 (cases 0.6, 0.7, 0.9; controls 0.8) -> specificity 5/6
    assert out["spec_at_sens_0.75"] == pytest.approx(5 / 6)


def test_net_benefit_by_hand():
    y = np.array([1, 1, 0, 0, 0], float)
    p = np.array([0.9, 0.4, 0.6, 0.2, 0.1])
    dc = net_benefit(y, p, [0.3, 0.5])
    # t = 0.3: treated 0.9, 0.4, 0.6 -> TP 2, FP 1 -> 2/5 - 1/5 * 0.3/0.7
    assert dc["model"][0] == pytest.approx(0.4 - 0.2 * 3 / 7)
    # t = 0.5: treated 0.9, 0.6 -> TP 1, FP 1 -> 1/5 - 1/5 * 1
    assert dc["model"][1] == pytest.approx(0.0)
    assert dc["treat_all"][0] == pytest.approx(0.4 - 0.6 * 3 / 7)
    assert (dc["treat_none"] == 0).all()
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        net_benefit(y, p, [0.0, 0.5])


def test_calibration_fit_recovers_slope_and_intercept():
    rng = np.random.default_rng(0)
    z = rng.normal(size=20000)
    y = (rng.random(len(z)) < 1 / (1 + np.exp(-z))).astype(float)
    fit = calibration_fit(y, 1 / (1 + np.exp(-z)))
    assert fit["calibration_slope"] == pytest.approx(1.0, abs=0.05)
    assert fit["calibration_intercept"] == pytest.approx(0.0, abs=0.05)
    over = calibration_fit(y, 1 / (1 + np.exp(-2 * z)))          # over-confident: slope 1/2
    assert over["calibration_slope"] == pytest.approx(0.5, abs=0.03)
    shifted = calibration_fit(y, 1 / (1 + np.exp(-(z + 1))))      # predicts too high: intercept < 0
    assert shifted["calibration_intercept"] < -0.8


@pytest.mark.parametrize("method", ["temperature", "logistic", "isotonic"])
def test_post_hoc_calibration_fixes_overconfidence(method):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(6000, 2))
    y = (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(float)
    p = 1 / (1 + np.exp(-3 * z))                                   # 3x over-confident
    cal = PostHocCalibrator(method).fit(y[:3000], p[:3000])
    fixed = cal.transform(p[3000:])
    for j in range(2):
        before = calibration_fit(y[3000:, j], p[3000:, j])
        after = calibration_fit(y[3000:, j], np.clip(fixed[:, j], 1e-4, 1 - 1e-4))
        assert after["brier"] < before["brier"]
        assert abs(after["calibration_slope"] - 1) < abs(before["calibration_slope"] - 1)
    if method == "temperature":
        assert cal.params[0] == pytest.approx(3.0, rel=0.15)
    if method == "logistic":                                       # logit(p) = 3z, truth z: a = 0, b = 1/3
        assert cal.params[0][0] == pytest.approx(0.0, abs=0.1) and cal.params[0][1] == pytest.approx(1 / 3, rel=0.15)
    assert roc_auc_score(y[3000:, 0], fixed[:, 0]) >= roc_auc_score(y[3000:, 0], p[3000:, 0]) - 0.01


def test_logistic_recalibration_moves_the_intercept_that_class_weights_shift():
    """Risks of a model trained with class weights sit near 0.5 for a 10% disease: temperature
    scaling keeps logit 0 at 0.5, logistic recalibration brings the mean risk to the prevalence, so
    the decision curve stops lying on treat-all."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=(8000, 1))
    y = (rng.random(z.shape) < 1 / (1 + np.exp(-(-2.4 + z)))).astype(float)      # ~10% cases
    p = 1 / (1 + np.exp(-(z + 0.2)))                                               # weighted: mean ~0.54
    fixed = PostHocCalibrator("logistic").fit(y[:4000], p[:4000]).transform(p[4000:])
    temp = PostHocCalibrator("temperature").fit(y[:4000], p[:4000]).transform(p[4000:])
    prevalence = y[4000:].mean()
    assert abs(fixed.mean() - prevalence) < 0.01 < abs(temp.mean() - prevalence)
    grid = np.arange(0.05, 0.5, 0.05)
    raw, cal = net_benefit(y[4000:, 0], p[4000:, 0], grid), net_benefit(y[4000:, 0], fixed[:, 0], grid)
    assert np.allclose(raw["model"][:2], raw["treat_all"][:2], atol=0.002)       # ~everyone above the low thresholds
    assert (cal["model"] >= raw["model"] - 1e-9).all() and (cal["model"] > raw["model"] + 0.005).sum() >= 3


def test_clinical_bad_input():
    with pytest.raises(InputError, match="cases and controls"):
        delong(np.zeros(5), np.arange(5.0), np.arange(5.0))
    with pytest.raises(InputError, match="3 values for 4 labels"):
        delong(np.array([0, 1, 0, 1.0]), np.arange(3.0), np.arange(4.0))
    with pytest.raises(InputError, match="not finite"):
        operating_points(np.array([0, 1.0]), np.array([np.nan, 1.0]))
    with pytest.raises(InputError, match="must be 0/1"):
        calibration_fit(np.array([0, 2.0]), np.array([0.1, 0.2]))
    with pytest.raises(InputError, match="temperature, logistic, isotonic"):
        PostHocCalibrator("platt")
    with pytest.raises(InputError, match="fit it"):
        PostHocCalibrator().transform(np.zeros((2, 4)))


def test_subgroups_partition_people_and_flag_a_different_group():
    from ppeye.metrics.subgroups import forest_figure, subgroup_table

    rng = np.random.default_rng(0)
    n = 600
    y = (rng.random((n, 2)) < 0.3).astype(float)
    group = np.where(np.arange(n) < 200, "a", np.where(np.arange(n) < 400, "b", "c"))
    strength = np.where(group == "c", 0.0, 2.0)          # group c: the score carries nothing
    p = 1 / (1 + np.exp(-(strength[:, None] * y + rng.normal(size=(n, 2)))))
    rows = subgroup_table(y, p, {"g": group, "tiny": np.where(np.arange(n) < 3, "few", "rest")}, names=("x", "z"))
    by = {(r["attribute"], r["group"], r["disease"]): r for r in rows}
    for d, j in (("x", 0), ("z", 1)):
        assert sum(by[("g", g, d)]["n"] for g in "abc") == n
        assert sum(by[("g", g, d)]["cases"] for g in "abc") == int(y[:, j].sum())
        c = by[("g", "c", d)]
        assert c["roc_auc"] < 0.65 and c["differs"]                    # flagged: excludes the overall AUC
        assert c["ci_low"] < c["roc_auc"] < c["ci_high"]
        assert not np.isfinite(by[("tiny", "few", d)]["roc_auc"])   # 3 people: no AUC, counts only
        assert by[("tiny", "few", d)]["n"] == 3
    fig = forest_figure(rows, "t", names=("x", "z"))
    assert len(fig.axes) == 2
    for ax, d in zip(fig.axes, ("x", "z")):                        # each panel counts its own disease's cases
        shown = {t.get_text() for t in ax.texts}
        assert {f"{r['cases']}/{r['n']}" for r in rows if r["disease"] == d} <= shown
        assert "too few cases" in shown                            # the 3-person group: no interval, said so
    assert [t.get_text() for t in fig.legends[0].get_texts()][:2] == ["interval includes the overall ROC-AUC",
                                                                       "interval excludes it"]
    amd = forest_figure([{**r, "disease": "amd"} for r in rows if r["disease"] == "x"], "t", names=("amd",))
    assert amd.axes[0].get_title().startswith("Age-related macular degeneration (AMD)")
    with pytest.raises(InputError, match="'g': 5 values for 600 people"):
        subgroup_table(y, p, {"g": group[:5]}, names=("x", "z"))
    with pytest.raises(InputError, match="2 label columns for 4 names"):
        subgroup_table(y, p, {"g": group})
