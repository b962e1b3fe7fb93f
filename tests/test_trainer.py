"""The trainer on a tiny converted synthetic dataset: a run, checkpoints, resume, errors."""
import json
import os

import numpy as np
import pytest

import ppeye
from conftest import DEMO, PIPE, TINY
from ppeye.core.paddle_env import import_paddle
from ppeye.engine import Trainer
from ppeye.engine.checkpoint import CheckpointError, load_weights, resolve
from ppeye.metrics import choose_thresholds, multilabel_metrics

paddle = import_paddle()
SMALL_MODEL = ["model.width=16", "model.backbone.base_width=2", "model.backbone.stem_stride=[1, 2, 2]",
               "model.temporal.transformer.heads=2", "model.temporal.transformer.layers=1",
               "model.temporal.afno.num_blocks=2", "model.tabular.k=2", "model.tabular.hidden=8",
               "model.fusion.heads=2", "loader.num_workers=0", "loader.batch_size=64", "log_iter=0",
               "optimizer.learning_rate=0.003"]


@pytest.fixture(scope="module")
def work(tiny_work):
    return tiny_work


def config(work, tmp_path, extra=()):
    return ppeye.load_config(DEMO, TINY + PIPE + work + SMALL_MODEL +
                             [f"output_dir={tmp_path}", "run_name=r"] + list(extra))


def weights(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_four_epochs_equal_two_then_a_resume_of_two(work, tmp_path):
    full = Trainer(config(work, tmp_path / "a", ["train.epochs=4"]))
    full.train()
    first_half = Trainer(config(work, tmp_path / "b", ["train.epochs=4"]))
    history = first_half.train(stop_after=2)          # as a run killed after its second epoch
    assert [r["epoch"] for r in history] == [1, 2]
    resumed = Trainer(config(work, tmp_path / "b", ["train.epochs=4"]))
    resumed.train(resume=str(tmp_path / "b" / "r"))
    a, b = weights(full.model), weights(resumed.model)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_a_run_writes_config_metrics_and_loadable_checkpoints(work, tmp_path):
    trainer = Trainer(config(work, tmp_path, ["train.epochs=2", "train.eval=true"]))
    history = trainer.train()
    run = tmp_path / "r"
    assert (run / "config.yaml").exists() and (run / "metrics.csv").exists()
    assert len(history) == 2 and 0 <= history[-1]["val_macro_roc_auc"] <= 1
    best_epoch = int(np.nanargmax([r["val_macro_roc_auc"] for r in history]))
    assert os.path.basename(resolve(str(run))) == f"epoch_{best_epoch:04d}"     # a run resolves to its best
    model = ppeye.build_model(trainer.cfg)
    load_weights(model, str(run / "checkpoints" / "epoch_0001"))               # the last epoch
    for k, v in weights(trainer.model).items():
        np.testing.assert_array_equal(weights(model)[k], v)


def test_resume_with_a_different_config_or_model_is_refused(work, tmp_path):
    Trainer(config(work, tmp_path, ["train.epochs=1"])).train()
    other = Trainer(config(work, tmp_path, ["train.epochs=2", "optimizer.learning_rate=0.1"]))
    with pytest.raises(CheckpointError, match="different config"):
        other.train(resume=str(tmp_path / "r"))
    wider = ppeye.build_model(config(work, tmp_path, ["model.width=32"]))
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_weights(wider, str(tmp_path / "r"))


def test_a_nan_loss_stops_with_the_last_checkpoint_intact(work, tmp_path):
    trainer = Trainer(config(work, tmp_path, ["train.epochs=1"]))
    trainer.train()
    before = json.load(open(tmp_path / "r" / "checkpoints" / "latest.json"))
    again = Trainer(config(work, tmp_path, ["train.epochs=2"]))
    again.criterion = lambda logits, labels: paddle.to_tensor(float("nan")) + logits.sum() * 0
    with pytest.raises(ppeye.core.errors.PpeyeError, match="the loss is nan; training stopped"):
        again.train()
    assert json.load(open(tmp_path / "r" / "checkpoints" / "latest.json")) == before
    load_weights(ppeye.build_model(again.cfg), str(tmp_path / "r"))


def test_metrics_and_the_f1_threshold_rule():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (200, 4)).astype(float)
    p = np.clip(y * 0.6 + rng.random((200, 4)) * 0.5, 0, 1)
    m = multilabel_metrics(y, p)
    from sklearn.metrics import roc_auc_score

    assert m["glaucoma_roc_auc"] == pytest.approx(roc_auc_score(y[:, 0], p[:, 0]))
    assert m["macro_roc_auc"] == pytest.approx(np.mean([roc_auc_score(y[:, j], p[:, j]) for j in range(4)]))
    t = choose_thresholds(y, p)
    f1_at = multilabel_metrics(y, p, t)["glaucoma_f1"]
    for other in (0.3, 0.5, 0.7):
        assert f1_at >= multilabel_metrics(y, p, [other] * 4)["glaucoma_f1"] - 1e-12
    y[:, 3] = 0
    m = multilabel_metrics(y, p)
    assert np.isnan(m["dr_roc_auc"]) and m["macro_diseases"] == 3
