"""The day decoder's targets and the day-encoder pretraining on the tiny dataset."""
import csv
import os

import numpy as np
import pytest

import ppeye
from conftest import DEMO, PIPE, TINY, recohort
from ppeye.core.errors import ConfigError, InputError
from ppeye.core.paddle_env import import_paddle
from ppeye.data.dataset import OnsetDataset
from ppeye.engine import Trainer
from ppeye.engine.checkpoint import MODEL_FILE, load_pretrained, resolve
from ppeye.engine.compare import patient_only_overrides
from ppeye.engine.day_pretrain import DayEncoder, centre_days, evaluate, fit_day_decoder, pretrain_days, read_keys
from ppeye.modeling.layers.day_decoder import DayDecoder
from test_trainer import SMALL_MODEL

paddle = import_paddle()
DAYS = ["model.day_reconstruction.enabled=true", "model.day_reconstruction.target=deviation",
        "model.day_reconstruction.standardise=true", "model.day_reconstruction.grid=[1, 2, 2]",
        "day_pretrain.epochs=4", "day_pretrain.batch_size=16", "day_pretrain.learning_rate=0.01", "day_pretrain.fit_days=100"]


def config(work, tmp_path, extra=()):
    return ppeye.load_config(DEMO, TINY + PIPE + work + SMALL_MODEL + DAYS +
                             [f"output_dir={tmp_path}", "run_name=r"] + list(extra))


def test_the_deviation_target_is_each_variables_pooled_pattern_and_standardises_to_unit_variance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2, 4, 4, 4)).astype("float32")
    x[:, 1] += 7.0                                   # a box-wide offset the deviation removes
    x[:, 0, :, :2, :2] += 3.0 * rng.normal(size=(40, 1, 1, 1)).astype("float32")   # one quadrant varies more
    dec = DayDecoder(8, 2, [1, 2, 2], "deviation", standardise=True)
    coarse = dec.coarse(paddle.to_tensor(x)).numpy().reshape(40, 2, 4)
    pooled = x.reshape(40, 2, 1, 4, 2, 2, 2, 2).mean(axis=(3, 5, 7)).reshape(40, 2, 4)
    np.testing.assert_allclose(coarse, pooled - pooled.mean(2, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(coarse.sum(2), 0.0, atol=1e-5)
    assert not dec.fitted
    dec.fit(x)
    assert dec.fitted
    t = dec.target(paddle.to_tensor(x)).numpy()
    np.testing.assert_allclose(t.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(t.std(0), 1.0, atol=1e-4)
    # the statistics are saved with a standardising decoder only
    assert {"target_mean", "target_std"} <= set(dec.state_dict())
    assert set(DayDecoder(8, 2, [1, 2, 2]).state_dict()) == {"weight", "bias"}
    with pytest.raises(InputError, match="target must be one of \\['volume', 'deviation', 'deviation_and_mean'\\], "
                                         "got 'anomaly'"):
        DayDecoder(8, 2, [1, 2, 2], "anomaly")


def test_the_deviation_and_mean_target_keeps_the_box_mean_the_deviation_drops():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 2, 4, 4, 4)).astype("float32")
    x += 2.0 * rng.normal(size=(40, 2, 1, 1, 1)).astype("float32")     # box-wide levels that vary by day
    dev = DayDecoder(8, 2, [2, 2, 2], "deviation", standardise=True)
    both = DayDecoder(8, 2, [2, 2, 2], "deviation_and_mean", standardise=True)
    assert both.weight.shape == [8, 2 * (8 + 2)] and both.per_variable == 10
    c = both.coarse(paddle.to_tensor(x)).numpy().reshape(40, 2, 10)
    pooled = x.reshape(40, 2, 2, 2, 2, 2, 2, 2).mean(axis=(3, 5, 7)).reshape(40, 2, 2, 4)   # [N, C, hours, cells]
    # per variable: its deviations (as the deviation target), then the box mean of each pooled hour
    np.testing.assert_allclose(c[:, :, :8], dev.coarse(paddle.to_tensor(x)).numpy().reshape(40, 2, 8), atol=1e-5)
    np.testing.assert_allclose(c[:, :, 8:], pooled.mean(3), atol=1e-5)
    both.fit(x)
    t = both.target(paddle.to_tensor(x)).numpy()
    np.testing.assert_allclose(t.std(0), 1.0, atol=1e-4)
    assert not both.constant.any()


def test_a_target_that_does_not_vary_is_constant_not_standardised_and_gets_no_r2(monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 2, 2, 4, 4)).astype("float32")
    # channel 1 varies from day to day but is the same in every cell: its deviations from the box
    # mean are float rounding (the case that printed R^2 = -3e12)
    x[:, 1] = (5.0 + rng.normal(size=(30, 1, 1, 1))).astype("float32")
    dec = DayDecoder(8, 2, [1, 2, 2], "deviation", standardise=True)
    varying = dec.varying(x)
    assert varying[:4].all() and not varying[4:].any()
    dec.fit(x)
    assert list(dec.constant) == [False] * 4 + [True] * 4
    t = dec.target(paddle.to_tensor(x)).numpy()
    np.testing.assert_array_equal(t[:, 4:], 0.0)                      # not noise blown up to unit variance
    np.testing.assert_allclose(t[:, :4].std(0), 1.0, atol=1e-4)

    # evaluate scores channel 0 and calls channel 1 constant
    class Encoder(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.day_decoder = dec

        def embed(self, v):
            return paddle.zeros([v.shape[0], 8])

    monkeypatch.setattr("ppeye.engine.day_pretrain.read_keys", lambda store, keys: x[np.asarray(keys)])
    mse, r2 = evaluate(Encoder(), None, np.arange(30), 2, 16, varying)
    assert r2[1] is None and np.isfinite(r2[0]) and abs(r2[0]) < 1.0
    with pytest.raises(InputError, match="at least 2 days"):
        dec.varying(x[:1])


def test_day_pretraining_learns_the_held_out_days_and_an_onset_run_starts_from_it(tiny_work, tmp_path):
    cfg = config(tiny_work, tmp_path)
    run = pretrain_days(cfg)
    assert run == str(tmp_path / "r_days")
    rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
    variables = ["t2m", "tp", "ssrd", "d2m"]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert all(f"heldout_r2_{v}" in rows[0] for v in variables)
    state = paddle.load(os.path.join(resolve(run), MODEL_FILE))
    assert {k.split(".")[0] for k in state} == {"backbone", "day_proj", "day_decoder"}
    assert "day_decoder.target_std" in state

    # a patient-only baseline of a config starting from it drops it and the frozen stage
    assert patient_only_overrides(config(tiny_work, tmp_path, [f"pretrained={run}", "train.two_stage.frozen_epochs=1"])) \
        == ["train.two_stage.frozen_epochs=0", "pretrained=null"]

    # the pretrained encoder reconstructs held-out days better than the same model untrained
    fresh = ppeye.build_model(cfg)
    train_set = OnsetDataset(cfg, "train")
    ds_store, positions = train_set.store, np.unique(train_set.site)
    keys = centre_days(ds_store, positions)
    held = keys[(keys % ds_store.n_days) % 5 == 0]
    fit_day_decoder(fresh, ds_store, positions, 100, cfg["seed"])
    before, _ = evaluate(DayEncoder(fresh), ds_store, held, 4, 32)
    load_pretrained(fresh, run)
    after, r2 = evaluate(DayEncoder(fresh), ds_store, held, 4, 32)
    best = min(rows, key=lambda r: float(r["heldout_mse"]))      # the checkpoint a run resolves to
    assert after < 0.95 * before and float(rows[0]["heldout_mse"]) > after
    np.testing.assert_allclose(after, float(best["heldout_mse"]), rtol=1e-4)
    np.testing.assert_allclose(r2, [float(best[f"heldout_r2_{v}"]) for v in variables], rtol=1e-3, atol=1e-4)

    # an onset run from it: the ResNet, projection, decoder and its statistics as pretrained
    trainer = Trainer(config(tiny_work, tmp_path, [f"pretrained={run}", "train.epochs=1",
                                                   "train.two_stage.frozen_epochs=1"]))
    own = trainer.model.state_dict()
    for k in state:
        np.testing.assert_array_equal(own[k].numpy(), state[k].numpy())
    trainer.train()
    after_training = trainer.model.state_dict()
    for k in (k for k in state if k.startswith("backbone.") and "_mean" not in k and "_variance" not in k):
        np.testing.assert_array_equal(after_training[k].numpy(), state[k].numpy())   # frozen


def test_an_onset_run_fits_its_standardising_decoder_and_reads_days_in_key_order(tiny_work, tmp_path):
    trainer = Trainer(config(tiny_work, tmp_path))
    dec = trainer.model.day_decoder
    assert dec.fitted and float(dec.target_std.numpy().min()) > 0
    store = trainer.train_set.store
    keys = np.array([3 * store.n_days + 40, 0 * store.n_days + 41, 0 * store.n_days + 40]) % (store.n_days * len(store.sites))
    got = read_keys(store, keys)
    for row, key in zip(got, keys):
        np.testing.assert_array_equal(row, store.read(int(key // store.n_days), [int(key % store.n_days)])[0])


def test_day_pretraining_refuses_configs_it_cannot_train(tiny_work, tmp_path):
    cases = [(["model.day_reconstruction.enabled=false"], "set model.day_reconstruction.enabled: true"),
             (["model.weather_branch=false"], "model.weather_branch is false"),
             (["+day_pretrain.passes=3"], "day_pretrain: unknown key\\(s\\) \\['passes'\\]"),
             (["day_pretrain.learning_rate=0"], "day_pretrain.learning_rate must be a number > 0"),
             (["day_pretrain.batch_size=100000"], "too few for day_pretrain.batch_size 100000")]
    for extra, match in cases:
        with pytest.raises(ConfigError, match=match):
            pretrain_days(config(tiny_work, tmp_path, extra))
    with pytest.raises(ConfigError, match="pretrained: .*nowhere does not exist; make it first .*tools/pretrain_days.py"):
        Trainer(config(tiny_work, tmp_path, [f"pretrained={tmp_path}/nowhere"]))


def test_with_a_temporal_split_the_day_encoder_never_sees_the_held_out_periods_weather(tiny_work, tmp_path,
                                                                                        monkeypatch):
    import ppeye.engine.day_pretrain as dp

    split = ["ukb.temporal_split=2019-05-01"]
    cfg = config(recohort(tiny_work, tmp_path / "work", split), tmp_path, split + ["day_pretrain.epochs=1"])
    store = OnsetDataset(cfg, "train").store
    end = dp.training_days_end(cfg, store)
    assert str(store.dates[end]) == "2019-05-01" and dp.training_days_end(config(tiny_work, tmp_path), store) is None
    read = []
    real = dp.read_keys
    monkeypatch.setattr(dp, "read_keys", lambda st, keys: read.append(np.asarray(keys)) or real(st, keys))
    pretrain_days(cfg)
    days = np.concatenate(read) % store.n_days
    assert days.max() < end and days.min() < end - 30           # everything before, a good stretch of it


def test_day_pretraining_trains_without_the_coarse_summary_and_a_run_with_it_starts_from_it(tiny_work, tmp_path):
    summary = ["model.backbone.summary.enabled=true"]
    run = pretrain_days(config(tiny_work, tmp_path, summary + ["day_pretrain.epochs=1"]))
    state = paddle.load(os.path.join(resolve(run), MODEL_FILE))
    assert {k.split(".")[0] for k in state} == {"backbone", "day_proj", "day_decoder"}   # no summary_proj
    assert "model.backbone.summary is off here" in open(os.path.join(run, "log.txt")).read()
    trainer = Trainer(config(tiny_work, tmp_path, summary + [f"pretrained={run}", "train.epochs=1",
                                                             "train.two_stage.frozen_epochs=1"]))
    own = trainer.model.state_dict()
    for k in state:
        np.testing.assert_array_equal(own[k].numpy(), state[k].numpy())
    assert own["summary_proj.weight"].shape[0] == trainer.model.backbone.summary_width
    np.testing.assert_array_equal(own["summary_proj.weight"].numpy(), 0.0)
    with pytest.raises(ConfigError, match="summary off"):
        DayEncoder(trainer.model)
