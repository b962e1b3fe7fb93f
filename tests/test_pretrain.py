"""Contrastive weather-patient pretraining: the loss, the pooling, the retrieval metrics, a
pretraining run on the tiny data and fine-tuning from it."""
import numpy as np
import pytest

import ppeye
from conftest import DEMO, PIPE, ROOT, TINY
from test_trainer import SMALL_MODEL
from ppeye.core.errors import ConfigError, InputError
from ppeye.core.paddle_env import import_paddle
from ppeye.engine import Trainer
from ppeye.engine.checkpoint import CheckpointError, load_pretrained
from ppeye.engine.pretrain import topk_accuracy
from ppeye.modeling import ContrastivePretrainer, InfoNCE
from ppeye.modeling.outputs import EXPLAIN_KEYS

paddle = import_paddle()
PRETRAIN = ROOT + "/configs/demo_pretrain.yaml"
SHAPES = {"T": 6, "C": 2, "D": 2, "H": 4, "W": 4, "F": 5}
NET = dict(width=8, backbone={"depth": 10, "base_width": 2, "stem_stride": 1, "strides": [1, 2, 1, 1]},
           temporal={"transformer": {"heads": 2, "layers": 1, "dropout": 0.0}, "afno": {"num_blocks": 2}},
           tabular={"k": 2, "hidden": 8, "dropout": 0.0}, fusion={"heads": 2}, moe={"enabled": False})


def numpy_info_nce(logits):
    def ce(x):
        x = x - x.max(1, keepdims=True)
        return -(np.diag(x) - np.log(np.exp(x).sum(1))).mean()
    return 0.5 * (ce(logits) + ce(logits.T))


def test_info_nce_equals_a_numpy_reference_and_is_lowest_for_aligned_pairs():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 6)).astype("float32") * 3
    got = InfoNCE()({"similarity": paddle.to_tensor(logits)}).item()
    assert got == pytest.approx(numpy_info_nce(logits.astype(np.float64)), rel=1e-5)
    z = rng.normal(size=(6, 4))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    aligned = 10 * z @ z.T
    shuffled = 10 * z @ z[rng.permutation(6)].T
    assert numpy_info_nce(aligned) < numpy_info_nce(shuffled)
    assert InfoNCE()({"similarity": paddle.to_tensor(aligned.astype("float32"))}).item() == pytest.approx(
        numpy_info_nce(aligned), rel=1e-5)


@pytest.mark.parametrize("pool", ["mean", "max", "cls"])
def test_pretrainer_gives_unit_projections_and_square_similarities(pool):
    paddle.seed(0)
    model = ContrastivePretrainer(SHAPES, pretrain={"pool": pool, "proj_dim": 3, "heads": 2}, **NET)
    assert model.fusion is None and model.classifier is None
    b = 4
    weather = paddle.randn([b * 6, 2, 2, 4, 4])
    day_index = paddle.arange(b * 6, dtype="int64").reshape([b, 6])
    logits, ex = model(weather, day_index, paddle.randn([b, 5]), paddle.ones([b, 5]), return_explain=True)
    assert logits.shape == [b, b]
    for key in ("patient_projection", "weather_projection"):
        np.testing.assert_allclose(np.linalg.norm(ex[key].numpy(), axis=1), 1, atol=1e-5)
    loss = InfoNCE()(ex)
    loss.backward()
    assert model.logit_scale.grad is not None and float(np.abs(model.backbone.stem[0].weight.grad.numpy()).sum()) > 0
    assert ex["logit_scale"].item() == pytest.approx(1 / 0.07, rel=1e-5)
    assert set(ex) <= EXPLAIN_KEYS, sorted(set(ex) - EXPLAIN_KEYS)


def test_bad_pretraining_settings_are_clear_errors():
    with pytest.raises(InputError, match="pool must be one of"):
        ContrastivePretrainer(SHAPES, pretrain={"pool": "attention"}, **NET)
    with pytest.raises(InputError, match=r"unknown keys \['tau'\]"):
        ContrastivePretrainer(SHAPES, pretrain={"tau": 0.1}, **NET)
    with pytest.raises(InputError, match="needs both branches"):
        ContrastivePretrainer(SHAPES, **dict(NET, patient_branch=False))


def test_topk_accuracy_counts_people_who_share_a_window_as_right_answers():
    q = np.eye(4, dtype=np.float32)
    items = np.eye(4, dtype=np.float32)[[1, 0, 2, 3]]      # people 0 and 1 swapped
    assert topk_accuracy(q, items, [0, 1, 2, 3], ks=(1, 2)) == {1: 0.5, 2: 1.0}
    assert topk_accuracy(q, items, [7, 7, 2, 3], ks=(1,)) == {1: 1.0}     # 0 and 1 share a window


@pytest.fixture(scope="module")
def pretrained(tiny_work, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    overrides = TINY + PIPE + tiny_work + SMALL_MODEL + [f"output_dir={out}", "run_name=p", "train.epochs=2",
                                                        "train.eval=true", "loader.batch_size=32"]
    trainer = Trainer(ppeye.load_config(PRETRAIN, overrides), callbacks=[])
    return out, trainer, trainer.train()


def test_pretraining_run_reports_retrieval_and_learns_the_pairs(pretrained):
    out, trainer, history = pretrained
    assert len(trainer.train_set) > 500 and not trainer.cfg["loader"]["group_by_site"]
    last = history[-1]
    for key in ("val_p2w_top1", "val_p2w_top5", "val_w2p_top1", "val_w2p_top5", "val_retrieval_top1"):
        assert 0 <= last[key] <= 1
    assert last["val_p2w_top5"] >= last["val_p2w_top1"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert (out / "p" / "checkpoints" / "best.json").exists()


def test_an_onset_model_starts_from_the_pretrained_encoders(pretrained, tiny_work, tmp_path):
    out, trainer, _ = pretrained
    base = TINY + PIPE + tiny_work + SMALL_MODEL + [f"output_dir={tmp_path}"]
    cfg = ppeye.load_config(DEMO, base + [f"pretrained={out}/p", "train.epochs=1", "data.label_fraction=0.1"])
    onset = Trainer(cfg, callbacks=[])
    assert len(onset.train_set) == round(0.1 * len(trainer.train_set))
    from ppeye.engine.checkpoint import load_weights

    source = ppeye.build_model(ppeye.load_config(PRETRAIN, base))
    load_weights(source, f"{out}/p")
    mine, theirs = onset.model.state_dict(), source.state_dict()
    for key in ("backbone.stem.0.weight", "day_proj.weight", "tabular.layers.0.weight", "positions.table"):
        np.testing.assert_array_equal(mine[key].numpy(), theirs[key].numpy(), err_msg=key)
    onset.train()
    wider = ppeye.build_model(ppeye.load_config(DEMO, base + ["model.width=24"]))
    with pytest.raises(CheckpointError, match="shared parameters differ in shape .*day_proj"):
        load_pretrained(wider, f"{out}/p")
    with pytest.raises(ConfigError, match=r"data.label_fraction must be a number in \(0, 1\], got 0"):
        ppeye.load_config(DEMO, base + ["data.label_fraction=0"])          # at load, before any data is read


def test_a_cache_of_the_pretrained_resnet_serves_runs_that_start_from_it(pretrained, tiny_work, tmp_path):
    from ppeye.core.errors import DataError
    from ppeye.engine.features import extract_day_features

    out, _, _ = pretrained
    base = TINY + PIPE + tiny_work + SMALL_MODEL + [f"output_dir={tmp_path}", "train.epochs=1"]
    cache = str(tmp_path / "days.zarr")
    extract_day_features(ppeye.load_config(DEMO, base + [f"pretrained={out}/p"]), cache)
    stage = ["train.two_stage.frozen_epochs=1", f"train.two_stage.cache={cache}"]
    Trainer(ppeye.load_config(DEMO, base + stage + [f"pretrained={out}/p"]), callbacks=[])
    with pytest.raises(DataError, match="stale.*backbone weights"):
        Trainer(ppeye.load_config(DEMO, base + stage), callbacks=[])     # a run from scratch: another ResNet


def test_pretraining_can_read_a_day_feature_cache(tiny_work, tmp_path):
    from ppeye.engine.features import extract_day_features

    base = TINY + PIPE + tiny_work + SMALL_MODEL + [f"output_dir={tmp_path}", "run_name=p", "train.epochs=1",
                                                    "train.eval=true", "loader.batch_size=32"]
    cache = str(tmp_path / "days.zarr")
    extract_day_features(ppeye.load_config(PRETRAIN, base), cache)
    trainer = Trainer(ppeye.load_config(PRETRAIN, base + ["train.two_stage.frozen_epochs=1",
                                                          f"train.two_stage.cache={cache}"]), callbacks=[])
    history = trainer.train()
    assert trainer.loader is trainer.loaders[True] and 0 <= history[0]["val_retrieval_top1"] <= 1
