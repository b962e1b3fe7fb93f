"""model.patient_offset: the model starts as the logistic baseline, keeps it frozen, saves it,
and the one-branch baselines drop or keep it as they must."""
import numpy as np
import pytest

import ppeye
from conftest import DEMO
from ppeye.baselines import fit_logistic
from ppeye.core.errors import InputError
from ppeye.deploy.export import export_model
from ppeye.engine import Trainer
from ppeye.engine.checkpoint import load_weights
from test_trainer import config, weights

OFFSET = ["model.patient_offset.enabled=true"]
WEATHER = OFFSET + ["model.patient_offset.weather.enabled=true", "model.patient_offset.weather.lag_edges=[3, 10]",
                    "train.epochs=1", "train.two_stage.frozen_epochs=1", "train.eval=true", "retrieval.enabled=false"]


@pytest.fixture(scope="module")
def work(tiny_work):
    return tiny_work


def test_the_model_starts_as_the_logistic_baseline_and_trains_a_residual_on_it(work, tmp_path):
    trainer = Trainer(config(work, tmp_path, OFFSET + ["train.epochs=1", "train.eval=true", "model.fusion.branch_heads=true"]))
    assert trainer.model.patient_head is not None and trainer.model.weather_head is not None
    train, val = trainer.train_set, trainer.val_set
    grid = trainer.cfg["model"]["patient_offset"]["c_grid"]
    baseline = fit_logistic(train.tab.astype(np.float64), train.labels, val.tab.astype(np.float64), val.labels, c_grid=grid)
    expected = baseline.predict(val.tab)
    # before any step the network adds exactly nothing: the model's risks are the regression's
    np.testing.assert_allclose(trainer.predict(val).probs, expected, rtol=1e-4, atol=1e-5)
    frozen = {k: v for k, v in weights(trainer.model).items() if k.startswith("patient_offset.")}
    assert set(frozen) == {"patient_offset.weight", "patient_offset.bias"} and np.abs(frozen["patient_offset.weight"]).sum() > 0
    trainer.train()
    after = weights(trainer.model)
    for k, v in frozen.items():                          # frozen through training
        np.testing.assert_array_equal(after[k], v)
    for head in ("classifier", "patient_head", "weather_head"):                 # the residual learned something
        assert np.abs(after[f"{head}.weight"]).sum() > 0, head
    assert not np.allclose(trainer.predict(val).probs, expected, atol=1e-4)
    # the offset is part of the checkpoint: a model built from the config and loaded equals the trained one
    model = ppeye.build_model(trainer.cfg)
    load_weights(model, str(tmp_path / "r" / "checkpoints" / "epoch_0000"))
    for k, v in weights(model).items():
        np.testing.assert_array_equal(v, after[k], err_msg=k)


@pytest.mark.parametrize("weather", [False, True], ids=["patient", "patient_and_weather"])
def test_a_model_with_a_patient_offset_exports_and_paddle_inference_gives_its_risks(work, tmp_path, weather):
    extra = WEATHER if weather else OFFSET + ["train.epochs=1", "train.eval=true", "retrieval.enabled=false"]
    Trainer(config(work, tmp_path, extra)).train()
    run = tmp_path / "r"
    cfg = ppeye.load_config(str(run / "config.yaml"), [f"weights={run}"])
    info = export_model(cfg, out_dir=str(tmp_path / "m"))
    # the traced network (the frozen offset layer in it) run by Paddle Inference, against the dygraph model
    assert info["self_check"]["max_abs_diff"] < 1e-4
    model = ppeye.build_model(cfg)
    load_weights(model, str(run))
    assert np.abs(model.patient_offset.weight.numpy()).sum() > 0     # the fitted regression, not zeros
    if weather:
        assert np.abs(model.weather_offset.linear.weight.numpy()).sum() > 0


def test_a_weather_only_model_cannot_have_a_patient_offset_and_its_baseline_drops_it():
    from ppeye.engine.compare import NEURAL, patient_only_overrides, weather_only_overrides

    cfg = ppeye.load_config(DEMO, OFFSET + ["pretrained=null"])
    with pytest.raises(InputError, match="patient_offset needs the patient features"):
        ppeye.build_model(ppeye.load_config(DEMO, OFFSET + NEURAL["weather_only"]))
    assert "model.patient_offset.enabled=false" in weather_only_overrides(cfg)
    assert "model.patient_offset.enabled=false" not in patient_only_overrides(cfg)   # patient-only keeps it
    weather = ppeye.load_config(DEMO, OFFSET + ["model.patient_offset.weather.enabled=true", "pretrained=null"])
    assert "model.patient_offset.weather.enabled=false" in patient_only_overrides(weather)    # but not its weather columns
    assert "model.patient_offset.weather.enabled=false" not in patient_only_overrides(cfg)
    ppeye.build_model(ppeye.load_config(DEMO, OFFSET + ["model.patient_offset.weather.enabled=true", "pretrained=null"]
                                        + NEURAL["patient_only"] + patient_only_overrides(weather)))
    model = ppeye.build_model(ppeye.load_config(DEMO, OFFSET + NEURAL["weather_only"] + weather_only_overrides(cfg)))
    assert model.patient_offset is None



def window_bin_means(model, ds, bins):
    """The weather columns computed person by person from their own window (no shared days)."""
    out = []
    model.backbone.eval()                 # frozen: its BatchNorm's running statistics
    with paddle_no_grad():
        for i in range(len(ds)):
            days = np.arange(ds.start[i], ds.start[i] + ds.T)
            pooled = model.backbone(paddle_tensor(ds.store.read(int(ds.site[i]), days))).numpy()
            lag = ds.T - np.arange(ds.T)
            out.append(np.concatenate([pooled[(lag >= a) & (lag <= b)].mean(0) for a, b in bins]))
    return np.stack(out)


def paddle_no_grad():
    import paddle
    return paddle.no_grad()


def paddle_tensor(x):
    import paddle
    return paddle.to_tensor(x)


def test_the_weather_offset_is_a_lag_binned_regression_on_the_frozen_resnet_and_the_model_starts_from_it(work, tmp_path):
    trainer = Trainer(config(work, tmp_path, WEATHER))
    model, val = trainer.model, trainer.val_set
    layer = model.weather_offset
    assert layer.bins == [(1, 3), (4, 10), (11, 28)]
    # the fitted columns are each window's bin means of the ResNet's pooled day features
    from ppeye.engine.offset import lag_bin_features
    x_val = lag_bin_features(model, val)
    np.testing.assert_allclose(x_val[:20], window_bin_means(model, val.subset(np.arange(20)), layer.bins), rtol=1e-4, atol=1e-5)

    model.backbone.eval()                 # a day-feature cache holds the frozen ResNet's outputs: same columns
    with paddle_no_grad():
        rows = {s: model.backbone(paddle_tensor(val.store.read(s, np.arange(val.store.n_days)))).numpy()
                for s in np.unique(val.site).tolist()}

    class Rows:
        def read_features(self, site, days):           # FeatureCache.read_features
            return rows[site][days]
    model.backbone.train()
    np.testing.assert_allclose(lag_bin_features(model, val, cache=Rows()), x_val, rtol=1e-5, atol=1e-6)
    assert model.backbone.training          # the fit leaves the ResNet's mode as it found it
    # before any step the network adds nothing: the logits are the regression's on both kinds of column
    w_p, b_p = model.patient_offset.weight.numpy(), model.patient_offset.bias.numpy()
    w_w, b_w = layer.linear.weight.numpy(), layer.linear.bias.numpy()
    assert np.abs(w_w).sum() > 0
    logits = val.tab @ w_p + b_p + x_val @ w_w + b_w
    probs = trainer.predict(val).probs
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits)), rtol=1e-4, atol=1e-5)
    # and its validation ROC-AUC per disease is the one the fit chose its C and penalty by
    from ppeye.engine.offset import fit_patient_offset
    from sklearn.metrics import roc_auc_score as roc_auc
    chosen = fit_patient_offset(model, trainer.train_set, val, trainer.seed, trainer.log)
    for j, (d, v) in enumerate(chosen.items()):
        assert v["weather_penalty"] in (1.0, 10.0, 100.0)
        assert abs(roc_auc(val.labels[:, j], probs[:, j]) - v["val_roc_auc"]) < 1e-3, d
    frozen = {k: v for k, v in weights(model).items() if k.startswith(("patient_offset.", "weather_offset.linear."))}
    trainer.train()
    after = weights(trainer.model)
    for k, v in frozen.items():                          # frozen through training
        np.testing.assert_array_equal(after[k], v, err_msg=k)


def test_the_weather_offset_gives_people_without_weather_nothing_and_needs_a_frozen_resnet(work, tmp_path):
    from ppeye.core.errors import ConfigError
    from ppeye.modeling.layers.weather_offset import WeatherOffset, lag_bins

    layer = WeatherOffset(3, 10, [2, 5], 4)
    layer.linear.weight.set_value(paddle_tensor(np.ones((9, 4), np.float32)))
    layer.linear.bias.set_value(paddle_tensor(np.full(4, 0.5, np.float32)))
    pooled = paddle_tensor(np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32))
    index = paddle_tensor(np.arange(20).reshape(2, 10).astype(np.int64))
    out = layer(pooled, index, paddle_tensor(np.array([1.0, 0.0], np.float32))).numpy()
    assert np.abs(out[0]).sum() > 0 and np.all(out[1] == 0)
    for bad in ([5, 2], [0, 3], [3, 10], [2.5], "7"):
        with pytest.raises(InputError, match="weather.lag_edges"):
            lag_bins(bad, 10)
    assert lag_bins([], 10) == [(1, 10)]
    with pytest.raises(ConfigError, match="frozen_epochs = train.epochs"):
        Trainer(config(work, tmp_path, WEATHER + ["train.epochs=2"]))
    with pytest.raises(InputError, match="needs the weather branch"):
        ppeye.build_model(ppeye.load_config(DEMO, WEATHER + ["model.weather_branch=false", "pretrained=null"]))
