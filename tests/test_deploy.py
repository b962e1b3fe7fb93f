"""Export to Paddle Inference and inference on new people (tools/export.py, tools/infer.py)."""
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

import ppeye
from conftest import DEMO, PIPE, TINY
from test_trainer import SMALL_MODEL
from ppeye.core.errors import DataError, InputError
from ppeye.core.paddle_env import import_paddle
from ppeye.data.dataset import OnsetDataset, WeatherCollator
from ppeye.data.ukb.fields import DISEASES
from ppeye.deploy.export import export_model
from ppeye.deploy.infer import ExportedModel, infer_table
from ppeye.deploy.sample import scoring_table
from ppeye.engine.checkpoint import CheckpointError, load_weights
from ppeye.engine.evaluator import Evaluator
from ppeye.engine.predict import predict

paddle = import_paddle()


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    root, overrides = trained
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r"])
    out = tmp_path_factory.mktemp("export") / "m"
    info = export_model(cfg, out_dir=str(out))
    return cfg, str(out), info


def _work(cfg):
    return cfg["data"]["work_dir"]


def test_export_writes_a_self_contained_checked_directory(exported):
    cfg, out, info = exported
    for f in ("model.json", "model.pdiparams", "infer_cfg.yml", "config.yaml", "features/ukb_fields.json",
              "features/imputer.joblib", "features/tab_stats.json", "features/pipeline.json",
              "retrieval/index.faiss"):
        assert os.path.isfile(os.path.join(out, f)), f
    on_disk = yaml.safe_load(open(os.path.join(out, "infer_cfg.yml")))
    assert on_disk["labels"] == list(DISEASES)
    assert [i["name"] for i in on_disk["inputs"]] == ["weather_unique", "day_index", "tab", "tab_mask"]
    assert on_disk["inputs"][1] == {"name": "day_index", "shape": [-1, 28], "dtype": "int64"}
    assert on_disk["inputs"][0]["shape"][0] == -1                  # the number of distinct days is dynamic
    assert on_disk["self_check"]["max_abs_diff"] <= 1e-5
    assert on_disk["self_check"]["device"] == ppeye.core.device.resolve_device(cfg.get("device", "auto"))
    assert on_disk["weather"]["variables"] == ["t2m", "tp", "ssrd", "d2m"]
    # thresholds are the evaluation's (same rule, same validation predictions)
    summary = Evaluator(cfg, out_dir=os.path.join(out, "..", "eval")).run("val")
    for variant in ("model", "retrieval"):
        for d in DISEASES:
            assert on_disk["thresholds"][variant][d] == pytest.approx(summary["thresholds"][variant][d])


def test_export_runs_on_the_configured_device_and_refuses_one_that_is_absent(trained, tmp_path):
    from ppeye.core.errors import ConfigError

    root, overrides = trained
    if ppeye.core.device.resolve_device("auto") != "cpu":
        pytest.skip("this machine has a GPU: the refusal of an absent one cannot be shown")
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r", "device=gpu"])
    with pytest.raises(ConfigError, match="device: gpu was asked for but Paddle sees no GPU"):
        export_model(cfg, out_dir=str(tmp_path / "m"))
    assert not (tmp_path / "m").exists()                          # nothing half-written


@pytest.mark.parametrize("batch", [1, 3])
def test_paddle_inference_equals_the_dygraph_model(exported, batch):
    cfg, out, _ = exported
    model = ppeye.build_model(cfg)
    load_weights(model, cfg["weights"])
    model.eval()
    ds = OnsetDataset(cfg, "test")
    people = [ds[i] for i in range(0, 7 * batch, 7)]          # different sites and dates
    b = WeatherCollator(ds.store)(people)
    with paddle.no_grad():
        expected = paddle.nn.functional.sigmoid(model(*[paddle.to_tensor(b[k]) for k in
                                                        ("weather_unique", "day_index", "tab", "tab_mask")])).numpy()
    for onednn in (True, False):
        m = ExportedModel(out, device="cpu", onednn=onednn)
        got = m.run({k: b[k] for k in ("weather_unique", "day_index", "tab", "tab_mask")})
        assert got["probs"].shape == (batch, 4)
        assert np.abs(got["probs"] - expected).max() <= 1e-5
        np.testing.assert_allclose(got["day_importance"].sum(1), 1.0, atol=1e-5)


def test_infer_on_a_table_gives_the_evaluators_predictions(exported, tmp_path):
    cfg, out, _ = exported
    table = tmp_path / "people.csv"
    n = scoring_table(cfg, "test", str(table))
    summary = infer_table(out, str(table), era5=os.path.join(_work(cfg), "era5.zarr"),
                          output=str(tmp_path / "risks.csv"), batch_size=5, explain=True)
    assert summary["rows"] == n and summary["scored"] == n and summary["problems"] == {}
    risks = pd.read_csv(tmp_path / "risks.csv", dtype={"eid": str})
    assert len(risks) == n and (risks["status"] == "ok").all()
    # the same people through the dygraph model and the retrieval index
    model = ppeye.build_model(cfg)
    load_weights(model, cfg["weights"])
    model.eval()
    ds = OnsetDataset(cfg, "test")
    pred = predict(model, ds, cfg, with_embeddings=True)
    from ppeye.retrieval import RetrievalIndex

    index = RetrievalIndex.load(os.path.join(out, "retrieval"))
    blended = index.blend(pred.probs, pred.embeddings)
    cohort = pd.read_parquet(os.path.join(_work(cfg), "cohort.parquet"))
    order = pd.Series(range(len(risks)), index=risks["eid"])
    at = order[cohort["eid"].astype(str).to_numpy()[ds.cohort_pos]].to_numpy()
    got_model = risks[[f"uncalibrated_model_risk_{d}" for d in DISEASES]].to_numpy()[at]
    got_final = risks[[f"uncalibrated_risk_{d}" for d in DISEASES]].to_numpy()[at]
    assert np.abs(got_model - pred.probs).max() <= 1e-5
    assert np.abs(got_final - blended).max() <= 1e-5
    # risk_<d>: the blend recalibrated as fitted on validation at export (logistic), and said so
    from ppeye.deploy.infer import recalibrate
    from ppeye.metrics.clinical import PostHocCalibrator

    val_ds = OnsetDataset(cfg, "val")
    val = predict(model, val_ds, cfg, with_embeddings=True)
    fitted = PostHocCalibrator("logistic").fit(val.labels, index.blend(val.probs, val.embeddings))
    calibrated = risks[[f"risk_{d}" for d in DISEASES]].to_numpy()[at]
    assert np.abs(calibrated - fitted.transform(blended)).max() <= 1e-4
    info = yaml.safe_load(open(os.path.join(out, "infer_cfg.yml")))
    assert info["recalibration"]["method"] == "logistic" and set(info["recalibration"]) >= {"model", "retrieval"}
    assert np.allclose(calibrated, np.column_stack([recalibrate(got_final[:, j], info["recalibration"]["retrieval"][d])
                                                    for j, d in enumerate(DISEASES)]), atol=2e-6)
    assert "logistic recalibration" in summary["risk_calibration"]
    y = val.labels.mean(0)                                        # recalibrated risks sit near the prevalence
    assert np.abs(calibrated.mean(0) - y).max() < np.abs(got_final.mean(0) - y).max()
    thr = summary["thresholds"]
    flags = risks[[f"above_threshold_{d}" for d in DISEASES]].to_numpy()[at]
    assert (flags == (got_final >= np.array([thr[d] for d in DISEASES]))).all()
    expl = np.load(tmp_path / "risks_explain.npz")
    assert expl["day_importance"].shape == (n, 28)
    np.testing.assert_allclose(expl["day_importance"].sum(1), 1.0, atol=1e-5)
    assert os.path.isfile(str(tmp_path / "risks.csv") + ".summary.json")


def test_raw_era5_files_are_converted_first_and_give_the_same_risks(exported, tiny, tmp_path):
    cfg, out, _ = exported
    raw, _ = tiny
    table = tmp_path / "people.csv"
    scoring_table(cfg, "test", str(table), limit=6)
    a = infer_table(out, str(table), era5=os.path.join(_work(cfg), "era5.zarr"), output=str(tmp_path / "a.csv"))
    b = infer_table(out, str(table), era5_raw=os.path.join(raw, "era5"), output=str(tmp_path / "b.csv"))
    assert a["scored"] == b["scored"] == 6
    assert os.path.isdir(tmp_path / "infer_work" / "era5.zarr")
    cols = [f"risk_{d}" for d in DISEASES]
    np.testing.assert_allclose(pd.read_csv(tmp_path / "b.csv")[cols], pd.read_csv(tmp_path / "a.csv")[cols], atol=1e-6)


def test_rows_with_problems_are_reported_by_number_and_do_not_stop_the_rest(exported, tmp_path, capsys):
    cfg, out, _ = exported
    table = tmp_path / "people.csv"
    scoring_table(cfg, "test", str(table), limit=12)
    frame = pd.read_csv(table, dtype=str)
    frame.loc[1, "54-0.0"] = "99999"                 # a centre the model does not know
    frame.loc[3, "index_date"] = ""                  # no index date
    frame.loc[5, "index_date"] = "1990-01-01"        # window long before the store
    frame.loc[7, "54-0.0"] = ""                      # cannot be placed
    feats = [c for c in frame.columns if c not in ("eid", "54-0.0", "index_date", "20074-0.0", "20075-0.0")]
    frame.loc[9, feats] = ""                         # no features at all: imputed, still scored
    frame.to_csv(table, index=False)
    s = infer_table(out, str(table), era5=os.path.join(_work(cfg), "era5.zarr"), output=str(tmp_path / "r.csv"))
    logged = capsys.readouterr().out
    assert s["problems"] == {"unknown_centre": 1, "index_date_missing": 1, "window_not_covered": 1,
                             "site_missing": 1}
    assert s["problem_rows"] == {"unknown_centre": [2], "index_date_missing": [4], "window_not_covered": [6],
                                 "site_missing": [8]}
    risks = pd.read_csv(tmp_path / "r.csv", dtype={"eid": str}, keep_default_na=False, na_values=[""])
    bad = ~risks["status"].str.startswith("ok")
    assert bad.sum() == 4 and risks.loc[bad, "risk_amd"].isna().all()
    # the row without features is scored, and its status says its features were flagged
    assert risks.loc[9, "status"] == "ok+features_flagged" and risks.loc[9, "feature_flags"] == "mostly_missing:20/20"
    assert s["feature_flags"] == {"mostly_missing": 1} and s["feature_flag_rows"] == {"mostly_missing": [10]}
    assert risks.loc[~bad, [f"risk_{d}" for d in DISEASES]].notna().all().all()
    assert s["scored"] == 8
    # the good rows get exactly what they get alone
    clean = pd.read_csv(table, dtype=str).drop(index=[1, 3, 5, 7])
    clean.to_csv(tmp_path / "clean.csv", index=False)
    infer_table(out, str(tmp_path / "clean.csv"), era5=os.path.join(_work(cfg), "era5.zarr"),
                output=str(tmp_path / "c.csv"))
    alone = pd.read_csv(tmp_path / "c.csv", dtype={"eid": str}).set_index("eid")["risk_cataract"]
    mixed = risks.loc[~bad].set_index("eid")["risk_cataract"].astype(float)
    np.testing.assert_allclose(mixed.loc[alone.index].to_numpy(), alone.to_numpy(), atol=1e-6)
    assert not any(str(e) in logged for e in frame["eid"])             # rows by number, never ids
    assert "data rows [2]" in logged


def test_rows_with_unreadable_unseen_or_implausible_features_are_scored_and_flagged(exported, tmp_path, capsys):
    cfg, out, _ = exported
    table = tmp_path / "people.csv"
    scoring_table(cfg, "test", str(table), limit=8)
    fields = ExportedModel(out).pipeline.fields
    cat = next(m for m in fields if m["kind"] == "categorical")
    num = next(m for m in fields if m["kind"] == "continuous")
    frame = pd.read_csv(table, dtype=str)
    col = lambda m: f"{m['field']}-0.0"                                   # noqa: E731
    frame.loc[1, col(num)] = "n/a"                                      # text in a numeric field
    frame.loc[2, col(cat)] = "987654"                                   # a code training never had
    mean, sd = (float(v) for v in pd.to_numeric(frame[col(num)], errors="coerce").agg(["mean", "std"]))
    frame.loc[3, col(num)] = str(mean + 1000 * sd)                      # absurd
    frame.loc[4, col(num)], frame.loc[4, col(cat)] = "?", "987654"      # two things at once
    frame.to_csv(table, index=False)
    s = infer_table(out, str(table), era5=os.path.join(_work(cfg), "era5.zarr"), output=str(tmp_path / "r.csv"))
    logged = capsys.readouterr().out
    risks = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    assert s["scored"] == 8 and (risks[[f"risk_{d}" for d in DISEASES]] != "").all().all()
    assert list(risks["status"]) == ["ok", "ok+features_flagged", "ok+features_flagged", "ok+features_flagged",
                                     "ok+features_flagged", "ok", "ok", "ok"]
    n, c = num["field"], cat["field"]
    assert list(risks["feature_flags"][1:5]) == [f"unreadable:{n}", f"unseen_category:{c}", f"implausible:{n}",
                                                 f"unreadable:{n}; unseen_category:{c}"]
    assert s["feature_flag_rows"] == {"unreadable": [2, 5], "unseen_category": [3, 5], "implausible": [4]}
    assert "2 row(s) scored with a category code the training people never had" in logged
    assert not any(str(e) in logged for e in frame["eid"])


def test_quantized_export_runs_and_stays_close(trained, exported, tmp_path):
    root, overrides = trained
    cfg, out, info = exported
    q = export_model(cfg, out_dir=str(tmp_path / "q"), quantize=True)
    qi = q["quantization"]
    assert qi["bits"] == 8 and 0 < qi["linear_layers_quantized"] <= qi["linear_layers_total"]
    assert qi["max_relative_rounding_error"] <= 0.5 / 127 + 1e-6      # round to nearest on the int8 grid
    table = tmp_path / "people.csv"
    scoring_table(cfg, "test", str(table))
    era5 = os.path.join(_work(cfg), "era5.zarr")
    infer_table(str(tmp_path / "q"), str(table), era5=era5, output=str(tmp_path / "q.csv"))
    infer_table(out, str(table), era5=era5, output=str(tmp_path / "f.csv"))
    a = pd.read_csv(tmp_path / "q.csv")[[f"uncalibrated_model_risk_{d}" for d in DISEASES]].to_numpy()
    b = pd.read_csv(tmp_path / "f.csv")[[f"uncalibrated_model_risk_{d}" for d in DISEASES]].to_numpy()
    assert 0 < np.abs(a - b).max() < 0.05


def test_a_patient_only_model_exports_without_weather_inputs(tiny_work, tmp_path):
    cfg = ppeye.load_config(DEMO, TINY + PIPE + tiny_work + SMALL_MODEL + ["model.weather_branch=false",
                                                                           "retrieval.enabled=false"])
    paddle.seed(1)
    model = ppeye.build_model(cfg)
    os.makedirs(tmp_path / "w")
    paddle.save(model.state_dict(), str(tmp_path / "w" / "model.pdparams"))
    info = export_model(cfg, weights=str(tmp_path / "w"), out_dir=str(tmp_path / "m"))
    assert [i["name"] for i in info["inputs"]] == ["tab", "tab_mask"] and info["weather"] is None
    assert info["outputs"] == ["probs", "embedding"]
    scoring_table(cfg, "test", str(tmp_path / "t.csv"), limit=5)
    s = infer_table(str(tmp_path / "m"), str(tmp_path / "t.csv"), output=str(tmp_path / "r.csv"))
    assert s["scored"] == 5


class _Lines:
    def __init__(self):
        self.lines = []

    def __getattr__(self, level):
        return self.lines.append


def test_export_takes_the_validation_predictions_of_an_evaluation_of_the_same_weights_only(trained, tmp_path):
    """The thresholds come from ``<run>/eval/val_predictions.npz`` when it is stamped with these
    weights and settings (so an export at full size does not predict the split again); stamped
    for other weights or settings, or unstamped, it is ignored and the split predicted."""
    from ppeye.metrics.multilabel import choose_thresholds

    root, overrides = trained
    shutil.copytree(root / "r", tmp_path / "r", ignore=shutil.ignore_patterns("eval", "retrieval"))
    base = overrides + [f"weights={tmp_path}/r", "retrieval.enabled=false"]
    cfg = ppeye.load_config(DEMO, base)
    Evaluator(cfg).run("val")
    saved = tmp_path / "r" / "eval" / "val_predictions.npz"
    with np.load(saved) as z:
        stamp = {k: z[k] for k in z.files}
    assert set(stamp) == {"labels", "probs", "rows", "weights_sha256", "config_fingerprint"}
    real = choose_thresholds(stamp["labels"], stamp["probs"])
    # squared risks rank alike but pick other thresholds: the export's show which it read
    squared = stamp["probs"] ** 2
    np.savez(saved, **(stamp | {"probs": squared}))

    def export(name, extra=()):
        log = _Lines()
        info = export_model(ppeye.load_config(DEMO, base + list(extra)), out_dir=str(tmp_path / name), log=log)
        export.checked = info["self_check"]["batch"]
        return [info["thresholds"]["model"][d] for d in DISEASES], " ".join(map(str, log.lines))

    # export settings do not count (here: a self-check on 1 person instead of 3)
    got, lines = export("same", ["export.participant_level=allow", "export.self_check_people=1"])
    assert got == pytest.approx(list(choose_thresholds(stamp["labels"], squared))) and export.checked == 1
    assert f"validation predictions from {saved}" in lines and "predicting" not in lines
    for name, extra, why in (("other_settings", ["seed=123"], "was written for other config"),
                             ("other_weights", [], "was written for other weights")):
        if name == "other_weights":
            np.savez(saved, **(stamp | {"probs": squared, "weights_sha256": np.array("0" * 64)}))
        got, lines = export(name, extra)
        assert got == pytest.approx(list(real)) and why in lines and "predicting the" in lines
    np.savez(saved, **{k: stamp[k] for k in ("labels", "probs", "rows")})      # an evaluation before the stamp
    got, lines = export("unstamped")
    assert got == pytest.approx(list(real)) and "was written for other weights and config" in lines
    assert export.checked == 3
    with pytest.raises(InputError, match="export.self_check_people must be a whole number >= 1, got 0"):
        export("none_checked", ["export.self_check_people=0"])
    assert not (tmp_path / "none_checked").exists()


def test_half_precision_and_tensorrt_are_configured_on_a_gpu_and_refused_on_the_cpu(exported, monkeypatch):
    """No GPU here: the CPU refuses them with what they need; on a GPU the predictor's config gets
    the precision, TensorRT with the export's dynamic shapes, and the FFT ops kept in float32
    (Paddle Inference's config recorded by a stand-in)."""
    from paddle import inference

    from ppeye.deploy import predictor as P

    cfg, out, info = exported
    with pytest.raises(InputError, match=r"--precision fp16 and --tensorrt need a GPU .* this run is on cpu"):
        ExportedModel(out, device="cpu", precision="fp16", tensorrt=True)
    with pytest.raises(InputError, match="--precision must be one of fp32, fp16, bf16, got 'int8'"):
        P.create_predictor(out, "gpu", precision="int8")
    calls = []

    class Recorder:
        def __init__(self, *files):
            calls.append(("files", [os.path.basename(f) for f in files]))

        def __getattr__(self, name):
            return lambda *a, **k: calls.append((name, a, k))

    monkeypatch.setattr(inference, "Config", Recorder)
    monkeypatch.setattr(inference, "create_predictor", lambda config: config)
    P.create_predictor(out, "gpu:1", precision="bf16")
    assert ("enable_use_gpu", (256, 1, inference.PrecisionType.Bfloat16), {}) in calls
    assert ("exp_disable_mixed_precision_ops", ({"fft_r2c", "fft_c2r", "fft_c2c"},), {}) in calls
    calls.clear()
    shapes = P.trt_shapes(info["inputs"], batch_size=16, window_days=28)
    assert shapes["weather_unique"][0][0] == 1 and shapes["weather_unique"][2][0] == 16 * 28
    assert shapes["day_index"] == ([1, 28], [16, 28], [16, 28]) and shapes["tab"][2] == [16, info["inputs"][2]["shape"][1]]
    P.create_predictor(out, "gpu", precision="fp16", tensorrt=shapes)
    trt = next(c for c in calls if c[0] == "enable_tensorrt_engine")[2]
    assert trt["precision_mode"] == inference.PrecisionType.Half and trt["max_batch_size"] == 16
    assert not trt["use_calib_mode"] and ("enable_use_gpu", (256, 0), {}) in calls
    dyn = next(c for c in calls if c[0] == "set_trt_dynamic_shape_info")[1]
    assert dyn == tuple({k: v[i] for k, v in shapes.items()} for i in (0, 2, 1))     # min, max, opt
    with pytest.raises(InputError, match="--tensorrt runs in fp32 or fp16, not bf16"):
        P.create_predictor(out, "gpu", precision="bf16", tensorrt=shapes)


def test_bad_inputs_get_clear_errors(exported, tmp_path):
    cfg, out, _ = exported
    m = ExportedModel(out, device="cpu")
    ds = OnsetDataset(cfg, "test")
    b = WeatherCollator(ds.store)([ds[0], ds[1]])
    good = {k: b[k] for k in ("weather_unique", "day_index", "tab", "tab_mask")}
    with pytest.raises(InputError, match="input tab: expected dtype float32, got float64"):
        m.run({**good, "tab": good["tab"].astype(np.float64)})
    with pytest.raises(InputError, match=r"input day_index: expected shape \['N', 28\], got \[2, 27\]"):
        m.run({**good, "day_index": good["day_index"][:, 1:]})
    with pytest.raises(InputError, match="batch 1 differs"):
        m.run({**good, "tab_mask": good["tab_mask"][:1]})
    with pytest.raises(InputError, match="the model takes"):
        m.run({k: v for k, v in good.items() if k != "tab_mask"})
    # a table with columns that are not UK Biobank fields
    table = tmp_path / "t.csv"
    scoring_table(cfg, "test", str(table), limit=3)
    frame = pd.read_csv(table, dtype=str)
    frame["age_years"] = "60"
    frame.to_csv(table, index=False)
    era5 = os.path.join(_work(cfg), "era5.zarr")
    with pytest.raises(DataError, match="unknown column\\(s\\) 'age_years'; expected eid, index_date"):
        infer_table(out, str(table), era5=era5, output=str(tmp_path / "r.csv"))
    assert not os.path.exists(tmp_path / "r.csv")
    s = infer_table(out, str(table), era5=era5, output=str(tmp_path / "r.csv"), allow_unknown_columns=True)
    assert s["scored"] == 3
    with pytest.raises(DataError, match="no index_date column"):
        frame.drop(columns=["index_date", "age_years"]).to_csv(tmp_path / "nodate.csv", index=False)
        infer_table(out, str(tmp_path / "nodate.csv"), era5=era5, output=str(tmp_path / "x.csv"))
    with pytest.raises(InputError, match="pass --era5"):
        infer_table(out, str(table), output=str(tmp_path / "x.csv"), allow_unknown_columns=True)


def test_outputs_that_would_replace_an_input_or_a_run_are_refused_and_change_nothing(exported, trained, tmp_path):
    cfg, out, _ = exported
    root, _ = trained
    # export: a directory that is not an export (here a copy of the training run), the run itself,
    # a parent of the run, the data's work directory
    run_copy = tmp_path / "run_copy"
    shutil.copytree(f"{root}/r", run_copy)
    before = sorted(p.name for p in run_copy.rglob("*"))
    with pytest.raises(InputError, match="exists and is not a ppeye export"):
        export_model(cfg, out_dir=str(run_copy))
    assert sorted(p.name for p in run_copy.rglob("*")) == before
    for target, what in ((f"{root}/r", "overlaps"), (root, "overlaps"), (_work(cfg), "overlaps")):
        with pytest.raises(InputError, match=what):
            export_model(cfg, out_dir=target)
    # infer: --output equal to --table, or inside the model or the weather store
    table = tmp_path / "t.csv"
    scoring_table(cfg, "test", str(table), limit=3)
    content = table.read_bytes()
    era5 = os.path.join(_work(cfg), "era5.zarr")
    with pytest.raises(InputError, match="would overwrite the input table"):
        infer_table(out, str(table), era5=era5, output=str(table))
    assert table.read_bytes() == content
    with pytest.raises(InputError, match="inside --model_dir"):
        infer_table(out, str(table), era5=era5, output=os.path.join(out, "risks.csv"))
    with pytest.raises(InputError, match="inside --era5"):
        infer_table(out, str(table), era5=era5, output=os.path.join(era5, "risks.csv"))
    explain_table = tmp_path / "t_explain.npz"                   # <output>_explain.npz would be the table
    explain_table.write_bytes(content)
    with pytest.raises(InputError, match="would overwrite the input table"):
        infer_table(out, str(explain_table), era5=era5, output=str(tmp_path / "t.csv"))


def test_every_file_of_the_bundle_is_verified_before_any_is_read(exported, tmp_path):
    cfg, out, info = exported
    from ppeye.deploy.predictor import bundle_files

    assert set(info["files"]) == set(bundle_files(out)) and "features/imputer.joblib" in info["files"]
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    ExportedModel(str(copy), device="cpu")
    joblib_file = copy / "features" / "imputer.joblib"
    original = joblib_file.read_bytes()
    joblib_file.write_bytes(b"\x80\x04crafted")                    # not unpickled: refused by its hash
    with pytest.raises(InputError, match="features/imputer.joblib is not the file this export wrote"):
        ExportedModel(str(copy), device="cpu")
    joblib_file.write_bytes(original)
    (copy / "features" / "extra.joblib").write_bytes(b"x")
    with pytest.raises(InputError, match="features/extra.joblib not written by this export"):
        ExportedModel(str(copy), device="cpu")


def test_participant_level_content_is_listed_and_can_be_refused(trained, tmp_path):
    from ppeye.deploy.export import participant_level_content

    root, overrides = trained
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r", "retrieval.enabled=true"])
    info = export_model(cfg, out_dir=str(tmp_path / "with_retrieval"))
    listed = info["participant_level_content"]
    assert any(line.startswith("retrieval/labels.npy: the outcome labels of") for line in listed)
    assert yaml.safe_load(open(tmp_path / "with_retrieval" / "infer_cfg.yml"))["participant_level_content"] == listed
    with pytest.raises(InputError, match="export.participant_level is refuse, but .* retrieval/labels.npy"):
        export_model(ppeye.load_config(DEMO, overrides + [f"weights={root}/r", "retrieval.enabled=true",
                                                           "export.participant_level=refuse"]),
                     out_dir=str(tmp_path / "refused"))
    assert not (tmp_path / "refused").exists()

    class Knn:                                                     # what KNNImputer keeps
        _fit_X = np.zeros((7, 3))

    class Pipe:
        imputer = Knn()

    assert participant_level_content(None, Pipe()) == [
        "features/imputer.joblib: 7 training participants' patient-feature rows (the Knn keeps them)"]


def test_an_export_from_another_version_or_config_is_refused(exported, tmp_path):
    cfg, out, _ = exported
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with pytest.raises(InputError, match="exported from config 'r'"):
        ExportedModel(str(copy), device="cpu", expect_fingerprint="0123456789abcdef")
    info = yaml.safe_load(open(copy / "infer_cfg.yml"))
    info["format_version"] = 0
    yaml.safe_dump(info, open(copy / "infer_cfg.yml", "w"))
    with pytest.raises(InputError, match="export format 0 but this ppeye reads format 2"):
        ExportedModel(str(copy), device="cpu")
    shutil.copytree(out, tmp_path / "mixed")
    with open(tmp_path / "mixed" / "model.pdiparams", "ab") as f:
        f.write(b"\0")
    with pytest.raises(InputError, match="mixes files of different exports"):
        ExportedModel(str(tmp_path / "mixed"), device="cpu")
    with pytest.raises(InputError, match="not an export directory"):
        ExportedModel(str(tmp_path), device="cpu")


def test_weights_that_do_not_fit_the_config_fail_before_anything_is_written(trained, tmp_path):
    root, overrides = trained
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r", "model.width=24"])
    with pytest.raises(CheckpointError, match="does not fit this model"):
        export_model(cfg, out_dir=str(tmp_path / "m"))
    assert not os.path.exists(tmp_path / "m")


def test_a_negative_control_model_is_not_exported(trained, tmp_path):
    root, overrides = trained
    cfg = ppeye.load_config(DEMO, overrides + ["data.window_shift_days=365"])
    with pytest.raises(InputError, match="data.window_shift_days is 365"):
        export_model(cfg, weights=f"{root}/r", out_dir=str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()
