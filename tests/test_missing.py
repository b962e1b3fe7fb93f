"""Missing modalities: presence flags, missing tokens, modality dropout, cross-modal
reconstruction, modality weights; people kept without weather; evaluation per pattern."""

import numpy as np
import pytest

import ppeye
from conftest import DEMO, PIPE, TINY
from test_trainer import SMALL_MODEL
from ppeye.core.errors import ConfigError, InputError
from ppeye.core.paddle_env import import_paddle
from ppeye.engine.evaluator import missingness_patterns
from ppeye.modeling import OnsetNet

paddle = import_paddle()
SHAPES = {"T": 6, "C": 2, "D": 2, "H": 4, "W": 4, "F": 5}
NET = dict(width=8, backbone={"depth": 10, "base_width": 2, "stem_stride": 1, "strides": [1, 2, 1, 1]},
           temporal={"transformer": {"heads": 2, "layers": 1, "dropout": 0.0}, "afno": {"num_blocks": 2}},
           tabular={"k": 2, "hidden": 8, "dropout": 0.0}, fusion={"heads": 2, "dropout": 0.0}, moe={"enabled": False})


def net(**missing):
    paddle.seed(0)
    section = {"enabled": True, "blocks": [[0, 1], [3]], **missing}
    return OnsetNet(SHAPES, missing=section, **NET)


def inputs(b=4, seed=0):
    rng = np.random.default_rng(seed)
    weather = paddle.to_tensor(rng.normal(size=(b * SHAPES["T"], 2, 2, 4, 4)).astype("float32"))
    day_index = paddle.arange(b * SHAPES["T"], dtype="int64").reshape([b, SHAPES["T"]])
    tab = paddle.to_tensor(rng.normal(size=(b, 5)).astype("float32"))
    return weather, day_index, tab


def test_with_the_lag_head_absent_weather_adds_nothing_through_it():
    paddle.seed(0)
    model = OnsetNet(SHAPES, missing={"enabled": True, "blocks": [[0, 1], [3]]},
                     **{**NET, "fusion": {**NET["fusion"], "lag_head": True}})
    w = model.lag_head.lag_weights
    w.set_value(paddle.to_tensor(np.random.default_rng(1).normal(0, 0.5, w.shape).astype("float32")))
    model.eval()
    weather, day_index, tab = inputs()
    mask, absent = paddle.ones([4, 5]), paddle.to_tensor([1.0, 0.0, 1.0, 0.0])
    with paddle.no_grad():
        without = model(weather, day_index, tab, mask, weather_present=absent).numpy()
        other_weather = model(weather * 3 + 1, day_index, tab, mask, weather_present=absent).numpy()
    np.testing.assert_allclose(other_weather[[1, 3]], without[[1, 3]], atol=1e-6)   # the absent input is unused
    assert np.abs(other_weather[[0, 2]] - without[[0, 2]]).max() > 1e-4             # the present one is


def test_presence_flags_per_modality_and_block():
    model = net()
    mask = paddle.to_tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], "float32")
    flags = model.missing.flags(paddle.to_tensor([1.0, 0.0, 1.0, 1.0]), mask).numpy()
    #                   weather, patient, block {0, 1}, block {3}
    np.testing.assert_array_equal(flags, [[1, 1, 1, 1], [0, 1, 0, 1], [1, 1, 1, 0], [1, 0, 0, 0]])


def test_an_absent_modality_changes_the_output_and_its_input_no_longer_matters():
    model = net()
    model.eval()
    weather, day_index, tab = inputs()
    mask = paddle.ones([4, 5])
    present, absent = paddle.ones([4]), paddle.to_tensor([1.0, 0.0, 1.0, 0.0])
    with paddle.no_grad():
        full = model(weather, day_index, tab, mask, weather_present=present).numpy()
        without = model(weather, day_index, tab, mask, weather_present=absent).numpy()
        other_weather = model(weather * 3 + 1, day_index, tab, mask, weather_present=absent).numpy()
        no_patient = model(weather, day_index, tab, paddle.zeros([4, 5]), weather_present=present).numpy()
        other_tab = model(weather, day_index, tab * 2 - 1, paddle.zeros([4, 5]), weather_present=present).numpy()
    assert np.isfinite(without).all()
    np.testing.assert_allclose(without[[0, 2]], full[[0, 2]], atol=1e-6)   # people with weather: unchanged
    assert np.abs(without[[1, 3]] - full[[1, 3]]).max() > 1e-4             # without: a different prediction
    np.testing.assert_allclose(other_weather[[1, 3]], without[[1, 3]], atol=1e-6)   # the absent input is unused
    assert np.abs(no_patient - full).max() > 1e-4
    # with no feature observed the patient tokens are the missing embedding (+ reconstruction):
    # the (imputed) values no longer matter except through TabM's mask input, which is zero too
    np.testing.assert_allclose(other_tab, no_patient, atol=1e-5)


def test_modality_dropout_only_in_training_and_never_both():
    model = net(modality_dropout={"weather": 1.0, "patient": 1.0})
    flags = model.missing.flags(paddle.ones([64]), paddle.ones([64, 5]))
    model.train()
    w, p = model.missing.drop(flags)
    assert w.numpy().sum() == 0 and p.numpy().sum() == 64       # both asked for: the patient is kept
    model = net(modality_dropout={"weather": 0.5})
    model.train()
    paddle.seed(1)
    w, p = model.missing.drop(flags)
    assert 16 < w.numpy().sum() < 48 and p.numpy().sum() == 64
    model.eval()
    w, p = model.missing.drop(flags)
    assert w.numpy().sum() == 64 and p.numpy().sum() == 64


def test_modality_weights_are_reported_per_person_and_sum_to_one():
    model = net()
    model.eval()
    weather, day_index, tab = inputs()
    _, ex = model(weather, day_index, tab, paddle.ones([4, 5]), return_explain=True)
    w = ex["modality_weights"].numpy()
    assert w.shape == (4, 2) and np.allclose(w.sum(1), 1) and (w > 0).all()
    assert ex["presence"].shape == [4, 4]
    assert net(weighting=False).missing.gate is None


def test_the_cross_modal_imputer_learns_to_reconstruct():
    model = net(modality_dropout={"weather": 0.3, "patient": 0.3})
    model.train()
    weather, day_index, tab = inputs(b=8, seed=2)
    params = [p for n, p in model.named_parameters() if n.startswith("missing.to_")]
    opt = paddle.optimizer.Adam(0.01, parameters=params)
    losses = []
    for _ in range(30):
        paddle.seed(0)
        _, ex = model(weather, day_index, tab, paddle.ones([8, 5]), return_explain=True)
        loss = ex["reconstruction_loss"]
        loss.backward()
        opt.step()
        opt.clear_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    # the reconstruction loss, times its weight (the config's default 0.1), is part of the training loss
    assert model.missing.reconstruct_weight == 0.1
    assert ex["aux_loss"].item() >= 0.1 * loss.item() - 1e-7


def test_bad_missing_settings_are_clear_errors():
    with pytest.raises(InputError, match=r"modality_dropout.weather must be a probability in \[0, 1\], got 1.5"):
        net(modality_dropout={"weather": 1.5})
    with pytest.raises(InputError, match="modality_dropout: unknown key 'text'.*its keys: weather, patient"):
        net(modality_dropout={"text": 0.1})
    with pytest.raises(InputError, match="needs both branches"):
        OnsetNet(SHAPES, missing={"enabled": True}, patient_branch=False, **NET)
    with pytest.raises(InputError, match="feature indices \\[9\\] outside 0..4"):
        net(blocks=[[9]])


def test_missingness_patterns_name_what_is_missing():
    mask = np.array([[1, 1, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0]])
    names = missingness_patterns([1, 1, 0, 0], mask, [[0, 1]])
    assert list(names) == ["complete", "block 0 missing", "weather missing",
                           "weather missing + block 0 missing + all features missing"]


# a small model trained 6 epochs with modality dropout 0.3 / 0.3 and the cross-modal imputer
DROPOUT_RUN = SMALL_MODEL + [
    "run_name=r", "model.missing.enabled=true", "model.missing.modality_dropout={weather: 0.3, patient: 0.3}",
    "model.missing.reconstruct_weight=0.1", "train.epochs=6", "loader.batch_size=16", "model.tabular.hidden=32",
    "model.tabular.k=4", "evaluation.bootstrap=0", "model.moe.enabled=false"]


@pytest.fixture(scope="module")
def kept_without_weather(tiny_work, tmp_path_factory):
    """A run on the tiny data with a window so long that many people have no complete window."""
    from ppeye.engine import Trainer

    out = tmp_path_factory.mktemp("missing")
    overrides = TINY + PIPE + tiny_work + DROPOUT_RUN + [
        f"output_dir={out}", "data.window_days=40", "data.incomplete_weather=include"]
    cfg = ppeye.load_config(DEMO, overrides)
    trainer = Trainer(cfg, callbacks=[])
    trainer.train()
    return out, overrides, trainer


def test_people_without_weather_are_kept_trained_on_and_scored_by_pattern(kept_without_weather):
    from ppeye.engine.evaluator import Evaluator

    out, overrides, trainer = kept_without_weather
    ds = trainer.train_set
    assert 0 < (ds.weather_present == 0).sum() < len(ds) and sum(ds.excluded.values()) == 0
    assert sum(ds.without_weather.values()) == (ds.weather_present == 0).sum()
    cfg = ppeye.load_config(DEMO, overrides)
    summary = Evaluator(cfg, weights=str(out / "r")).run(["val", "test"])
    test = summary["splits"]["test"]
    patterns = {r["pattern"]: r for r in test["missingness"]}
    assert "complete" in patterns and any("weather missing" in p for p in patterns)
    assert sum(r["n"] for r in test["missingness"]) == test["n"]["value"]
    for modality in ("weather", "patient"):
        dropped = summary["splits"][f"test_without_{modality}"]
        assert dropped["n"]["value"] == test["n"]["value"]
        assert 0 <= dropped["macro_roc_auc"]["value"] <= 1
    # No floor on the scores: over seeds 42, 0-3 at 1 and 2 threads this run scored test macro
    # ROC-AUC 0.51-0.66 (0.52-0.66 without the weather): a floor of 0.55 held for seed 42 only
    assert (out / "r" / "eval" / "test_missingness.csv").exists()
    # per-person modality weights and presence flags, for analysis
    from ppeye.data.dataset import OnsetDataset
    from ppeye.engine.features import extract_people

    extract_people(cfg, str(out / "people"), weights=str(out / "r"), splits=["test"])
    z = np.load(out / "people" / "test.npz")
    test_set = OnsetDataset(cfg, "test")
    np.testing.assert_array_equal(z["presence"][:, 0], test_set.weather_present)
    assert z["modality_weights"].shape == (len(test_set), 2) and np.allclose(z["modality_weights"].sum(1), 1)


def test_the_dropped_modalities_come_from_the_same_pass_with_the_numbers_of_separate_passes(kept_without_weather):
    """The evaluation scores each split without the weather and without the patient features in
    the pass that predicts it (the ResNet runs once per batch); each variant equals a pass of its
    own on the volumes, bit for bit."""
    from ppeye.data.dataset import OnsetDataset
    from ppeye.engine.predict import make_loader, predict, to_tensors

    out, overrides, trainer = kept_without_weather
    cfg, model = ppeye.load_config(DEMO, overrides), trainer.model
    ds = OnsetDataset(cfg, "test")
    both = predict(model, ds, cfg, also_without=("weather", "patient"))
    np.testing.assert_array_equal(both.probs, predict(model, ds, cfg).probs)
    assert set(both.without) == {"weather", "patient"} and predict(model, ds, cfg).without is None
    model.eval()
    for modality, key in (("weather", "weather_present"), ("patient", "tab_mask")):
        loader = make_loader(ds, cfg)
        order = [i for batch in loader.ppeye_sampler for i in batch]
        separate = np.full((len(ds), 4), np.nan)
        with paddle.no_grad():
            probs = []
            for batch in loader:
                b = to_tensors(batch)
                assert len(b["weather_unique"].shape) == 5                 # volumes, through the ResNet
                b[key] = paddle.zeros_like(b[key])
                probs.append(paddle.nn.functional.sigmoid(model(b)).numpy())
        separate[order] = np.concatenate(probs)
        np.testing.assert_array_equal(both.without[modality], separate)
        assert not np.allclose(both.without[modality], both.probs)       # the drop changes the predictions
    with pytest.raises(ValueError, match="must be one of weather, patient, got 'climate'"):
        predict(model, ds, cfg, also_without=("climate",))
    from ppeye.engine.evaluator import Evaluator

    bad = ppeye.load_config(DEMO, overrides + ["evaluation.drop_modality=[weather, climate]"])
    with pytest.raises(ConfigError, match="evaluation.drop_modality lists 'climate': each entry must be one of "):
        Evaluator(bad, weights=str(out / "r"), out_dir=str(out / "bad_eval")).run(["val"])


def test_people_without_weather_need_a_model_that_handles_it(tiny_work, tmp_path):
    from ppeye.engine import Trainer

    cfg = ppeye.load_config(DEMO, TINY + PIPE + tiny_work + SMALL_MODEL + [
        f"output_dir={tmp_path}", "data.window_days=40", "data.incomplete_weather=include"])
    with pytest.raises(ConfigError, match="no usable weather window .* set model.missing.enabled=true"):
        Trainer(cfg, callbacks=[])
    with pytest.raises(Exception, match="incomplete_weather must be exclude or include"):
        from ppeye.data.dataset import OnsetDataset

        OnsetDataset(ppeye.load_config(DEMO, TINY + PIPE + tiny_work + ["data.incomplete_weather=drop"]), "train")


def test_exported_model_scores_people_without_weather(kept_without_weather, tmp_path):
    import os

    import pandas as pd

    from ppeye.data.dataset import OnsetDataset
    from ppeye.deploy.export import export_model
    from ppeye.deploy.infer import infer_table
    from ppeye.deploy.sample import scoring_table
    from ppeye.engine.predict import predict

    out, overrides, trainer = kept_without_weather
    cfg = ppeye.load_config(DEMO, overrides)
    info = export_model(cfg, weights=str(out / "r"), out_dir=str(tmp_path / "m"))
    assert [i["name"] for i in info["inputs"]][-1] == "weather_present"
    scoring_table(cfg, "test", str(tmp_path / "t.csv"))
    work = cfg["data"]["work_dir"]
    summary = infer_table(str(tmp_path / "m"), str(tmp_path / "t.csv"), era5=os.path.join(work, "era5.zarr"),
                          output=str(tmp_path / "r.csv"), batch_size=16)
    ds = OnsetDataset(cfg, "test")
    lacking = int((ds.weather_present == 0).sum())
    assert summary["scored"] == len(ds) and summary["scored_without_weather"] == {"window_not_covered": lacking}
    risks = pd.read_csv(tmp_path / "r.csv")
    assert (risks["status"] == "ok_without_weather:window_not_covered").sum() == lacking > 0
    cols = [c for c in risks.columns if c.startswith("uncalibrated_model_risk_")] or [
        c for c in risks.columns if c.startswith("uncalibrated_risk_")]
    expected = predict(trainer.model, ds, cfg).probs
    np.testing.assert_allclose(risks[cols].to_numpy(), expected, atol=2e-5)
