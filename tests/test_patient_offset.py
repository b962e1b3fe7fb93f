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


def test_a_model_with_a_patient_offset_exports_and_paddle_inference_gives_its_risks(work, tmp_path):
    Trainer(config(work, tmp_path, OFFSET + ["train.epochs=1", "train.eval=true", "retrieval.enabled=false"])).train()
    run = tmp_path / "r"
    cfg = ppeye.load_config(str(run / "config.yaml"), [f"weights={run}"])
    info = export_model(cfg, out_dir=str(tmp_path / "m"))
    # the traced network (the frozen offset layer in it) run by Paddle Inference, against the dygraph model
    assert info["self_check"]["max_abs_diff"] < 1e-4
    model = ppeye.build_model(cfg)
    load_weights(model, str(run))
    assert np.abs(model.patient_offset.weight.numpy()).sum() > 0     # the fitted regression, not zeros


def test_a_weather_only_model_cannot_have_a_patient_offset_and_its_baseline_drops_it():
    from ppeye.engine.compare import NEURAL, patient_only_overrides, weather_only_overrides

    cfg = ppeye.load_config(DEMO, OFFSET + ["pretrained=null"])
    with pytest.raises(InputError, match="patient_offset needs the patient features"):
        ppeye.build_model(ppeye.load_config(DEMO, OFFSET + NEURAL["weather_only"]))
    assert "model.patient_offset.enabled=false" in weather_only_overrides(cfg)
    assert "model.patient_offset.enabled=false" not in patient_only_overrides(cfg)   # patient-only keeps it
    model = ppeye.build_model(ppeye.load_config(DEMO, OFFSET + NEURAL["weather_only"] + weather_only_overrides(cfg)))
    assert model.patient_offset is None
