"""Bootstrap intervals, reliability bins and the evaluation figures."""
import numpy as np
import pytest

from ppeye.metrics import bootstrap_metrics, calibration_table, multilabel_metrics


def data(n=300, seed=0, signal=0.3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, (n, 4)).astype(float)
    p = np.clip(y * signal + rng.random((n, 4)) * (1 - signal), 0, 1)
    return y, p


def test_intervals_contain_the_point_estimate_and_narrow_with_more_people():
    y, p = data(200)
    small = bootstrap_metrics(y, p, n_boot=100, seed=1)
    y2, p2 = data(1600)
    large = bootstrap_metrics(y2, p2, n_boot=100, seed=1)
    for key in ("macro_roc_auc", "glaucoma_pr_auc", "macro_brier", "hamming_loss", "micro_roc_auc"):
        m = small[key]
        assert m["ci_low"] <= m["value"] <= m["ci_high"], key
        assert m["replicates"] == 100
        assert (large[key]["ci_high"] - large[key]["ci_low"]) < (m["ci_high"] - m["ci_low"]), key
    assert small["macro_roc_auc"]["value"] == pytest.approx(multilabel_metrics(y, p)["macro_roc_auc"])
    assert small["n"]["ci_low"] is None                       # a count, not a measurement


def test_bootstrap_is_seeded_and_resamples_people_not_labels():
    y, p = data(150)
    a = bootstrap_metrics(y, p, n_boot=50, seed=3)
    b = bootstrap_metrics(y, p, n_boot=50, seed=3)
    assert a == b
    # a perfectly ranked disease keeps ROC-AUC 1 in every replicate; a participant-level draw
    # keeps each person's four labels together, so a copied column stays perfectly ranked too
    p[:, 1] = y[:, 1]
    y[:, 2], p[:, 2] = y[:, 1], p[:, 1]
    c = bootstrap_metrics(y, p, n_boot=50, seed=3)
    assert c["cataract_roc_auc"]["ci_low"] == c["amd_roc_auc"]["ci_high"] == 1.0


def test_replicates_without_both_classes_are_left_out_of_that_metric_only():
    y, p = data(40)
    y[:, 0] = 0
    y[0, 0] = 1                                   # one case: most replicates miss it
    r = bootstrap_metrics(y, p, n_boot=100, seed=0)
    assert 0 < r["glaucoma_roc_auc"]["replicates"] < 100
    assert r["cataract_roc_auc"]["replicates"] == 100


@pytest.mark.parametrize("seed", range(40))
def test_the_numpy_metrics_equal_scikit_learns_with_ties_small_splits_and_empty_predictions(seed):
    """multilabel_metrics computes in numpy what scikit-learn computes (a bootstrap calls it a
    thousand times a split); the same values to 1e-12 on splits of 3 to 400 people, scores with
    many ties (rounded to 1 or 2 decimals), rare and common labels and thresholds that call
    nobody or everyone positive."""
    from sklearn import metrics as skm

    rng = np.random.default_rng(seed)
    n = int(rng.choice([3, 7, 13, 60, 400]))
    y = (rng.random((n, 4)) < rng.choice([0.05, 0.3, 0.7], 4)).astype(float)
    y[0, 0], y[1, 0] = 1.0, 0.0                                   # glaucoma has both classes always
    p = np.clip(0.3 * y + rng.random((n, 4)) * 0.7, 0, 1)
    if seed % 3:
        p = np.round(p, 1 + seed % 2)                              # ties
    thresholds = [float(rng.choice(p[:, j])) for j in range(4)]
    thresholds[1], thresholds[3] = 1.5, -0.1                      # nobody, everyone called positive
    m = multilabel_metrics(y, p, thresholds)
    pred = p >= np.asarray(thresholds)
    for j, d in enumerate(("glaucoma", "cataract", "amd", "dr")):
        t, both = y[:, j], 0 < y[:, j].sum() < n
        expect = {"roc_auc": skm.roc_auc_score(t, p[:, j]) if both else np.nan,
                  "pr_auc": skm.average_precision_score(t, p[:, j]) if both else np.nan,
                  "f1": skm.f1_score(t, pred[:, j], zero_division=0),
                  "precision": skm.precision_score(t, pred[:, j], zero_division=0),
                  "recall": skm.recall_score(t, pred[:, j], zero_division=0),
                  "brier": skm.brier_score_loss(t, p[:, j])}
        for k, v in expect.items():
            np.testing.assert_allclose(m[f"{d}_{k}"], v, rtol=0, atol=1e-12, err_msg=f"{d}_{k}")
    np.testing.assert_allclose(m["micro_roc_auc"], skm.roc_auc_score(y.ravel(), p.ravel()), rtol=0, atol=1e-12)
    np.testing.assert_allclose(m["micro_pr_auc"], skm.average_precision_score(y.ravel(), p.ravel()), rtol=0,
                               atol=1e-12)
    assert m["hamming_loss"] == pytest.approx(skm.hamming_loss(y, pred.astype(float)), abs=1e-15)


def test_calibration_bins_count_everyone_and_match_a_hand_computation():
    y, p = data(400)
    rows = calibration_table(y, p, n_bins=5, strategy="uniform")
    for j, d in enumerate(("glaucoma", "cataract", "amd", "dr")):
        mine = [r for r in rows if r["disease"] == d]
        assert sum(r["count"] for r in mine) == 400
        which = np.minimum((p[:, j] * 5).astype(int), 4)
        for r in mine:
            # bins are identified by their members' mean prediction
            members = np.nonzero(np.isclose([p[which == b, j].mean() if (which == b).any() else -1
                                             for b in range(5)], r["mean_predicted"]))[0]
            b = members[0]
            assert r["observed_rate"] == pytest.approx(y[which == b, j].mean())
            assert r["count"] == (which == b).sum()
    quant = calibration_table(y, p, n_bins=4)
    counts = [r["count"] for r in quant if r["disease"] == "amd"]
    assert max(counts) - min(counts) <= 1                # quantile bins hold equal numbers
    with pytest.raises(ValueError, match="quantile' or 'uniform"):
        calibration_table(y, p, strategy="kmeans")


def test_curve_figures_are_written_and_returned_as_images(tmp_path):
    from matplotlib import image as mpimg

    from ppeye.metrics.plots import save_curves

    y, p = data(100)
    y[:, 3] = 0
    for kind in ("roc", "pr", "calibration"):
        path = tmp_path / f"{kind}.png"
        image = save_curves(kind, y, p, str(path), "test", calibration=calibration_table(y, p), image=True)
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # the array is the written picture itself, pixel for pixel
        np.testing.assert_array_equal(image, np.round(mpimg.imread(str(path))[..., :3] * 255).astype(np.uint8))
        assert image.std() > 0                                   # not a blank canvas
        assert save_curves(kind, y, p, str(path), "test", calibration=calibration_table(y, p)) is None
