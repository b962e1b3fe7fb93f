"""tools/eval.py's engine: thresholds from validation, intervals, files, retrieval, external."""
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

import ppeye
from conftest import DEMO, PIPE, TINY, resplit
from test_trainer import SMALL_MODEL
from ppeye.core.errors import DataError, InputError
from ppeye.engine import Trainer
from ppeye.engine.evaluator import Evaluator
from ppeye.metrics import choose_thresholds, multilabel_metrics


def test_every_split_gets_metrics_intervals_curves_and_predictions(trained):
    root, overrides = trained
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r"])
    summary = Evaluator(cfg).run("all")
    out = root / "r" / "eval"
    assert set(summary["splits"]) == {"val", "test", "external", "val_retrieval", "test_retrieval",
                                      "external_retrieval"}
    for split in ("val", "test", "external"):
        for f in (f"{split}_metrics.json", f"{split}_metrics.csv", f"{split}_calibration.csv",
                  f"{split}_roc.png", f"{split}_pr.png", f"{split}_calibration.png", f"{split}_predictions.npz"):
            assert (out / f).exists(), f
        m = json.load(open(out / f"{split}_metrics.json"))["metrics"]
        auc = m["macro_roc_auc"]
        assert auc["ci_low"] <= auc["value"] <= auc["ci_high"] and auc["replicates"] > 0
        pred = np.load(out / f"{split}_predictions.npz")
        # row numbers, never participant ids; the stamp tools/export.py checks before reusing them
        assert set(pred.files) == {"labels", "probs", "rows", "weights_sha256", "config_fingerprint"}
        # the file's numbers are the metrics of the saved predictions at the validation thresholds
        thr = [summary["thresholds"]["model"][d] for d in ("glaucoma", "cataract", "amd", "dr")]
        again = multilabel_metrics(pred["labels"], pred["probs"], thr)
        assert again["macro_f1"] == pytest.approx(m["macro_f1"]["value"])
    val = np.load(out / "val_predictions.npz")
    assert list(summary["thresholds"]["model"].values()) == choose_thresholds(val["labels"], val["probs"])
    ext = pd.read_csv(out / "external_metrics.csv")
    assert {"metric", "value", "ci_low", "ci_high", "replicates"} <= set(ext.columns)


def test_clinical_outputs_subgroups_and_post_hoc_calibration(trained, tmp_path):
    from ppeye.metrics.clinical import PostHocCalibrator, calibration_fit, net_benefit, operating_points

    root, overrides = trained
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r", "evaluation.post_hoc_calibration=temperature",
                                               "evaluation.decision_thresholds=[0.05, 0.5, 0.05]"])
    summary = Evaluator(cfg, out_dir=str(tmp_path)).run("test")
    assert {"test", "test_calibrated", "test_retrieval"} <= set(summary["splits"])
    pred = np.load(tmp_path / "test_predictions.npz")
    y, p = pred["labels"], pred["probs"]
    clin = pd.read_csv(tmp_path / "test_clinical.csv")
    j = int(np.argmax(y.sum(0)))                                  # the disease with most cases
    d = ("glaucoma", "cataract", "amd", "dr")[j]
    rows = clin[clin.disease == d].set_index("metric")
    ops = operating_points(y[:, j], p[:, j])
    assert rows.loc["sens_at_spec_0.90", "value"] == pytest.approx(ops["sens_at_spec_0.90"])
    assert rows.loc["calibration_slope", "value"] == pytest.approx(calibration_fit(y[:, j], p[:, j])["calibration_slope"])
    auc = rows.loc["roc_auc"]
    assert auc.ci_low <= auc.value <= auc.ci_high
    dc = pd.read_csv(tmp_path / "test_decision_curve.csv")
    mine = dc[dc.disease == d]
    assert len(mine) == 10 and mine.threshold.iloc[0] == pytest.approx(0.05)
    # the curve is drawn from the risks recalibrated on val (logistic by default), and says so
    assert set(dc.risks) == {"risks recalibrated on the validation split (logistic)"}
    assert summary["decision_curve_risks"] == "risks recalibrated on the validation split (logistic)"
    raw = Evaluator(ppeye.load_config(DEMO, overrides + [f"weights={root}/r", "evaluation.decision_curve_risks=null",
                                                         "evaluation.decision_thresholds=[0.05, 0.5, 0.05]"]),
                    out_dir=str(tmp_path / "raw")).run(["val", "test"])
    assert raw["decision_curve_risks"] == "risks as the model gives them (uncalibrated)"
    plain = pd.read_csv(tmp_path / "raw" / "test_decision_curve.csv")
    plain = plain[plain.disease == d]
    assert plain.model.to_numpy() == pytest.approx(net_benefit(y[:, j], p[:, j], plain.threshold.to_numpy())["model"],
                                                   abs=1e-5)
    val = np.load(tmp_path / "raw" / "val_predictions.npz")
    q = PostHocCalibrator("logistic").fit(val["labels"], val["probs"]).transform(p)
    assert mine.model.to_numpy() == pytest.approx(net_benefit(y[:, j], q[:, j], mine.threshold.to_numpy())["model"],
                                                  abs=1e-5)
    raw = Evaluator(ppeye.load_config(DEMO, overrides + [f"weights={root}/r", "evaluation.decision_curve_risks=null",
                                                         "evaluation.decision_thresholds=[0.05, 0.5, 0.05]"]),
                    out_dir=str(tmp_path / "raw")).run("test")
    assert raw["decision_curve_risks"] == "risks as the model gives them (uncalibrated)"
    plain = pd.read_csv(tmp_path / "raw" / "test_decision_curve.csv")
    plain = plain[plain.disease == d]
    assert plain.model.to_numpy() == pytest.approx(net_benefit(y[:, j], p[:, j], plain.threshold.to_numpy())["model"],
                                                   abs=1e-5)
    cm = pd.read_csv(tmp_path / "test_confusion_matrix.csv").set_index("disease")
    assert (cm[["tp", "fp", "tn", "fn"]].sum(1) == len(y)).all()
    assert cm.loc[d, "tp"] + cm.loc[d, "fn"] == int(y[:, j].sum())
    # subgroups: within every attribute each person is in exactly one group
    sub = pd.read_csv(tmp_path / "test_subgroups.csv")
    assert {"sex", "age_band", "centre", "season", "missingness"} == set(sub.attribute)
    assert set(sub[sub.attribute == "centre"].group) <= {"Manchester", "Bury", "Liverpool", "Stoke", "Sheffield",
                                                         "Nottingham", "Leeds"}           # names, not field-54 codes
    for attr, g in sub[sub.disease == d].groupby("attribute"):
        assert g.n.sum() == len(y) and g.cases.sum() == int(y[:, j].sum()), attr
    assert (tmp_path / "test_subgroups.png").exists() and (tmp_path / "test_decision_curve.png").exists()
    temps = summary["post_hoc_calibration"]["temperature"]
    assert all(t > 0 for t in temps.values())
    cal = np.load(tmp_path / "test_calibrated_predictions.npz")["probs"]
    # temperature scaling is monotone: the ranking (so the ROC-AUC) is unchanged
    assert summary["splits"]["test_calibrated"]["macro_roc_auc"]["value"] == pytest.approx(
        summary["splits"]["test"]["macro_roc_auc"]["value"])
    assert not np.allclose(cal, p)
    with pytest.raises(InputError, match="decision_thresholds"):
        Evaluator(ppeye.load_config(DEMO, overrides + [f"weights={root}/r", "evaluation.decision_thresholds=[0.5, 0.1, 0.1]"]),
                  out_dir=str(tmp_path / "bad")).run("val")
    assert not (tmp_path / "bad").exists()                      # refused before anything was written


def test_retrieval_is_chosen_on_validation_and_never_hurts_it(trained):
    root, overrides = trained
    params = json.load(open(root / "r" / "retrieval" / "params.json"))
    assert params["n"] > 0 and params["k"] in (3, 10) and params["grid"][0]["alpha"] == 0.0
    best = max(g["macro_roc_auc"] for g in params["grid"])
    chosen = [g for g in params["grid"] if g["alpha"] == params["alpha"] and (g["k"] == params["k"] or g["alpha"] == 0)]
    assert chosen[0]["macro_roc_auc"] == pytest.approx(best)
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r"])
    s = Evaluator(cfg, out_dir=str(root / "e2")).run("val")
    assert s["splits"]["val_retrieval"]["macro_roc_auc"]["value"] >= s["splits"]["val"]["macro_roc_auc"]["value"] - 1e-9


def test_bad_requests_say_what_is_wrong(trained, tiny_work, tmp_path):
    root, overrides = trained
    with pytest.raises(InputError, match="no weights to evaluate"):
        Evaluator(ppeye.load_config(DEMO, overrides))
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r"])
    with pytest.raises(InputError, match="unknown split 'train'"):
        Evaluator(cfg, out_dir=str(tmp_path)).run("train")
    plain = ppeye.load_config(DEMO, TINY + PIPE + tiny_work + SMALL_MODEL + [f"weights={root}/r"])
    with pytest.raises(DataError, match="no participants in split"):
        Evaluator(plain, out_dir=str(tmp_path)).run("external")
    assert not os.path.exists(tmp_path / "external_metrics.json")


def test_curves_and_figures_go_to_visualdl(trained, tmp_path):
    from visualdl import LogReader

    from ppeye.engine.callbacks import VisualDLCallback

    root, overrides = trained
    vdl = VisualDLCallback(str(tmp_path / "vdl"))
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r", "retrieval.enabled=false"])
    Evaluator(cfg, out_dir=str(tmp_path / "eval"), vdl=vdl).run("test")
    vdl.close()
    log = [p for p in os.listdir(tmp_path / "vdl") if p.startswith("vdlrecords")][0]
    tags = LogReader(file_path=str(tmp_path / "vdl" / log)).get_tags()
    assert {"eval_test/roc", "eval_test/pr", "eval_test/calibration"} <= set(tags.get("image", []))
    assert "eval_test/glaucoma_pr_auc" in tags.get("scalar", [])
    assert "eval_test/macro_roc_auc" in tags.get("scalar", [])
    from ppeye.engine.checkpoint import resolve
    from ppeye.engine.evaluator import checkpoint_epoch

    (point,) = LogReader(file_path=str(tmp_path / "vdl" / log)).get_data("scalar", "eval_test/macro_roc_auc")
    epoch = checkpoint_epoch(resolve(f"{root}/r"))
    assert epoch > 0 and point.id == epoch                    # at the checkpoint's epoch, beside its validation curve


def test_shared_window_days_counts_the_site_days_inside_training_windows():
    from types import SimpleNamespace

    from ppeye.data.dataset import shared_window_days

    rng = np.random.default_rng(0)
    store = SimpleNamespace(valid=np.ones((3, 60), bool), n_days=60)

    def people(n):
        return SimpleNamespace(store=store, T=10, site=rng.integers(0, 3, n), start=rng.integers(0, 51, n),
                               weather_present=(rng.random(n) > 0.2).astype(np.float32))

    train, ds = people(8), people(40)
    seen = {(s, d) for s, st, w in zip(train.site, train.start, train.weather_present) if w
            for d in range(st, st + 10)}
    expected = [sum((s, d) in seen for d in range(st, st + 10)) if w else 0
                for s, st, w in zip(ds.site, ds.start, ds.weather_present)]
    np.testing.assert_array_equal(shared_window_days(train, ds), expected)
    assert 0 < np.count_nonzero(expected) < len(expected)


def test_a_held_out_period_is_evaluated_with_its_leakage_diagnostic(trained, tmp_path):
    root, overrides = trained
    shutil.copytree(root / "work", tmp_path / "work")
    cohort = pd.read_parquet(tmp_path / "work" / "cohort.parquet")
    later = (cohort.index_date > "2019-05-20") & cohort.split.isin(["train", "val", "test"])
    resplit(tmp_path / "work", later, "period")
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r", f"data.work_dir={tmp_path / 'work'}",
                                               "retrieval.enabled=false"])
    summary = Evaluator(cfg, out_dir=str(tmp_path / "eval")).run("all")
    assert {"val", "test", "external", "period"} == set(summary["splits"])
    n_days = cfg["data"]["window_days"]
    for split in ("test", "period"):
        leak = pd.read_csv(tmp_path / "eval" / f"{split}_leakage.csv").set_index("group")
        assert leak.n.sum() == summary["splits"][split]["n"]["value"]
        assert summary["splits"][split]["leakage"][0]["group"] == "no day shared with training"
        if split == "test":         # a random split within centres: everyone's days were seen in training
            assert leak.loc["all days shared", "n"] == leak.n.sum()
    # the period's people whose window starts after the last training index date share no day
    period = cohort[later]
    after = int(((period.index_date - pd.Timedelta(days=n_days)) > "2019-05-20").sum())
    leak = pd.read_csv(tmp_path / "eval" / "period_leakage.csv").set_index("group")
    assert leak.loc["no day shared with training", "n"] >= after > 0
    assert leak.loc["some days shared", "n"] > 0
