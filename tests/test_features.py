"""Frozen-encoder feature caching and two-stage training on the tiny synthetic data."""
import json
import os

import numpy as np
import pytest

import ppeye
from conftest import DEMO, PIPE, TINY
from test_trainer import SMALL_MODEL, weights
from ppeye.core.errors import ConfigError, DataError, InputError
from ppeye.core.paddle_env import import_paddle
from ppeye.data.store import Era5Store
from ppeye.engine import Trainer
from ppeye.engine.checkpoint import read_state
from ppeye.engine.features import FeatureCache, encoder_identity, extract_day_features, extract_people
from ppeye.engine.predict import to_tensors

paddle = import_paddle()


def config(work, out, extra=()):
    return ppeye.load_config(DEMO, TINY + PIPE + work + SMALL_MODEL + [f"output_dir={out}", "run_name=r"]
                             + list(extra))


@pytest.fixture(scope="module")
def cache(tiny_work, tmp_path_factory):
    """The day features of the SMALL_MODEL's seeded initialisation, extracted once."""
    out = tmp_path_factory.mktemp("cache")
    path = str(out / "days.zarr")
    summary = extract_day_features(config(tiny_work, out), path, batch_size=50)
    return path, summary


def test_the_cache_holds_the_dygraph_resnet_features_of_every_valid_day(tiny_work, cache, tmp_path):
    path, summary = cache
    cfg = config(tiny_work, tmp_path)
    store = Era5Store(os.path.join(cfg["data"]["work_dir"], "era5.zarr"))
    c = FeatureCache(path)
    assert summary["volumes"] == int(store.valid.sum()) and c.shape == (summary["dim"],)
    assert c.sites == store.sites and c.n_days == store.n_days and (c.valid == store.valid).all()
    from ppeye.core.seed import seed_everything

    seed_everything(cfg["seed"])
    model = ppeye.build_model(cfg)
    model.eval()
    assert c.identity == encoder_identity(cfg, model, store)
    # the convolutions' layout changes no number beyond rounding: the cache serves a channels-last run
    seed_everything(cfg["seed"])
    last = config(tiny_work, tmp_path, ["model.backbone.channels_last=true"])
    assert c.identity == encoder_identity(last, ppeye.build_model(last), store)
    days = np.nonzero(store.valid[1])[0][[0, 1, 2, 30, 31, 90]]
    with paddle.no_grad():
        expected = model.backbone(paddle.to_tensor(store.read(1, days))).numpy()
    got = c.read(1, days)
    assert got.shape == (len(days), model.backbone.out_channels)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert np.abs(got).sum() > 0


def test_a_cache_of_other_weights_store_or_backbone_is_refused(tiny_work, cache, tmp_path):
    path, _ = cache
    other_seed = config(tiny_work, tmp_path, ["seed=7", "train.two_stage.frozen_epochs=1",
                                               f"train.two_stage.cache={path}"])
    with pytest.raises(DataError, match="stale.*backbone weights"):
        Trainer(other_seed, callbacks=[])
    other_net = config(tiny_work, tmp_path, ["model.backbone.depth=10", "train.two_stage.frozen_epochs=1",
                                              f"train.two_stage.cache={path}"])
    with pytest.raises(DataError, match="model.backbone settings"):
        Trainer(other_net, callbacks=[])
    cfg = config(tiny_work, tmp_path)
    store = Era5Store(os.path.join(cfg["data"]["work_dir"], "era5.zarr"))
    c = FeatureCache(path)
    changed = dict(c.identity, store_identity="0" * 16, store_normalisation="1" * 16)
    with pytest.raises(DataError, match=r"weather store \(era5.zarr\).*weather normalisation"):
        c.check(changed, store)
    with pytest.raises(DataError, match="not a day-feature cache"):
        FeatureCache(os.path.join(cfg["data"]["work_dir"], "era5.zarr"))


def test_cached_features_train_exactly_like_the_frozen_resnet_on_volumes(tiny_work, cache, tmp_path):
    path, _ = cache
    frozen = ["train.epochs=2", "train.two_stage.frozen_epochs=1"]
    on_volumes = Trainer(config(tiny_work, tmp_path / "a", frozen), callbacks=[])
    from_cache = Trainer(config(tiny_work, tmp_path / "b", frozen + [f"train.two_stage.cache={path}"]), callbacks=[])
    results = []
    start = weights(on_volumes.model)
    for t in (on_volumes, from_cache):
        t.train_mode()
        batch = to_tensors(next(iter(t.loader)))
        paddle.seed(3)   # the same gate noise and dropout in both
        loss, _ = t.forward_loss(batch)
        loss.backward()
        grads = {n: p.grad.numpy().copy() for n, p in t.model.named_parameters() if p.grad is not None}
        results.append((loss.item(), grads, batch["weather_unique"].shape))
        t.optimizer.step()
    after = weights(on_volumes.model)
    for k in start:     # the ResNet run on volumes kept its weights and BatchNorm statistics
        if k.startswith("backbone."):
            np.testing.assert_array_equal(after[k], start[k], err_msg=k)
    (loss_a, grads_a, shape_a), (loss_b, grads_b, shape_b) = results
    assert len(shape_a) == 5 and len(shape_b) == 2           # volumes vs cached features
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    assert not any(n.startswith("backbone.") for n in grads_a)   # the frozen ResNet gets no gradient
    assert grads_a.keys() == grads_b.keys() and "day_proj.weight" in grads_a
    for n in grads_a:
        np.testing.assert_allclose(grads_a[n], grads_b[n], rtol=1e-3, atol=1e-6, err_msg=n)


def test_two_stage_run_freezes_then_fine_tunes_and_resumes_across_the_switch(tiny_work, cache, tmp_path):
    path, _ = cache
    extra = ["train.epochs=4", "train.two_stage.frozen_epochs=2", f"train.two_stage.cache={path}", "train.eval=true"]
    full = Trainer(config(tiny_work, tmp_path / "a", extra), callbacks=[])
    start = weights(full.model)
    history = full.train()
    assert len(history) == 4 and all(np.isfinite(r["val_macro_roc_auc"]) for r in history)
    ckpts = tmp_path / "a" / "r" / "checkpoints"
    states = [json.load(open(ckpts / f"epoch_{e:04d}" / "state.json")) for e in range(1, 4)]
    assert [s["frozen_encoder"] for s in states] == [True, False, False]
    from ppeye.engine.checkpoint import load_weights

    after_frozen = ppeye.build_model(full.cfg)
    load_weights(after_frozen, str(ckpts / "epoch_0001"))
    frozen_w = weights(after_frozen)
    backbone = [k for k in start if k.startswith("backbone.")]
    for k in backbone:     # weights and BatchNorm statistics untouched while frozen
        np.testing.assert_array_equal(frozen_w[k], start[k], err_msg=k)
    assert any(not np.array_equal(frozen_w[k], start[k]) for k in start if k.startswith("day_proj."))
    final = weights(full.model)
    assert any(not np.array_equal(final[k], start[k]) for k in backbone)   # fine-tuned in epochs 3-4

    # killed after the last frozen epoch (the resume switches stage) or after the first
    # fine-tuning epoch (the resume must restore the fine-tuning optimizer): the same result
    for killed_after in (2, 3):
        out = tmp_path / f"b{killed_after}"
        Trainer(config(tiny_work, out, extra), callbacks=[]).train(stop_after=killed_after)
        assert read_state(str(out / "r"))["epoch"] == killed_after - 1    # the latest, not the best
        resumed = Trainer(config(tiny_work, out, extra), callbacks=[])
        resumed.train(resume=str(out / "r"))
        again = weights(resumed.model)
        for k in final:
            np.testing.assert_allclose(again[k], final[k], rtol=1e-4, atol=1e-6, err_msg=f"{killed_after}: {k}")


def test_two_stage_config_errors_name_the_key(tiny_work, cache, tmp_path):
    path, _ = cache
    with pytest.raises(ConfigError, match=r"frozen_epochs must be in \[0, train.epochs=2\], got 3"):
        Trainer(config(tiny_work, tmp_path, ["train.epochs=2", "train.two_stage.frozen_epochs=3"]), callbacks=[])
    with pytest.raises(ConfigError, match="cache is set .* but frozen_epochs is 0"):
        Trainer(config(tiny_work, tmp_path, [f"train.two_stage.cache={path}"]), callbacks=[])
    with pytest.raises(ConfigError, match="weather_branch is false"):
        Trainer(config(tiny_work, tmp_path, ["train.two_stage.frozen_epochs=1", "model.weather_branch=false"]),
                callbacks=[])
    with pytest.raises(DataError, match="cannot open the day-feature cache"):
        Trainer(config(tiny_work, tmp_path, ["train.two_stage.frozen_epochs=1",
                                             f"train.two_stage.cache={tmp_path}/none.zarr"]), callbacks=[])
    with pytest.raises(InputError, match="already exists: pass --overwrite"):   # not replaced by accident
        extract_day_features(config(tiny_work, tmp_path), path)


def test_cached_features_of_the_wrong_width_are_an_input_error(tiny_work, tmp_path):
    model = ppeye.build_model(config(tiny_work, tmp_path))
    tab = paddle.zeros([2, 20])
    with pytest.raises(InputError, match=r"cached day features must be \[U, 16\]"):
        model(paddle.zeros([5, 7]), paddle.zeros([2, 28], "int64"), tab)


def test_per_person_features_of_a_trained_model(trained, tmp_path):
    root, overrides = trained
    cfg = ppeye.load_config(DEMO, overrides)
    written = extract_people(cfg, str(tmp_path / "people"), weights=str(root / "r"), splits=["val", "test"])
    for split, n in written.items():
        z = np.load(tmp_path / "people" / f"{split}.npz")
        assert z["row"].shape == (n,) and z["probs"].shape == (n, 4) and z["labels"].shape == (n, 4)
        for key in ("embedding", "weather_embedding", "patient_embedding"):
            assert z[key].shape == (n, cfg["model"]["width"]) and np.isfinite(z[key]).all()
        assert ((z["probs"] > 0) & (z["probs"] < 1)).all()
    with pytest.raises(InputError, match=r"splits \['holdout'\] are not in the cohort"):
        extract_people(cfg, str(tmp_path / "p2"), weights=str(root / "r"), splits=["holdout"])


def test_a_cache_with_the_coarse_summary_holds_each_days_cell_means_and_trains_like_the_volumes(tiny_work, tmp_path):
    summary = ["model.backbone.summary.enabled=true", "model.backbone.summary.grid=[1, 2, 2]"]
    cfg = config(tiny_work, tmp_path, summary)
    path = str(tmp_path / "days.zarr")
    extract_day_features(cfg, path, batch_size=50)
    store = Era5Store(os.path.join(cfg["data"]["work_dir"], "era5.zarr"))
    c = FeatureCache(path)
    model = ppeye.build_model(cfg)
    p, width = model.backbone.features, model.backbone.summary_width
    assert c.shape == (p + width,) and width == store.shape[0] * 4
    days = np.nonzero(store.valid[0])[0][:5]
    v = store.read(0, days)                                  # [n, C, D, H, W], H = W = 4 here
    n, C, D, H, W = v.shape
    means = v.reshape(n, C, D, 2, H // 2, 2, W // 2).mean(axis=(2, 4, 6)).reshape(n, -1)
    np.testing.assert_allclose(c.read(0, days)[:, p:], means, rtol=1e-4, atol=1e-5)
    # a cache of the plain backbone is refused by a run with the summary (and the other way)
    plain = str(tmp_path / "plain.zarr")
    extract_day_features(config(tiny_work, tmp_path), plain, batch_size=50)
    with pytest.raises(DataError, match="backbone_config"):
        Trainer(config(tiny_work, tmp_path / "x", summary + ["train.two_stage.frozen_epochs=1",
                                                            f"train.two_stage.cache={plain}"]), callbacks=[])
    frozen = summary + ["train.epochs=1", "train.two_stage.frozen_epochs=1"]
    losses = []
    for extra in ([], [f"train.two_stage.cache={path}"]):
        t = Trainer(config(tiny_work, tmp_path / f"r{len(extra)}", frozen + extra), callbacks=[])
        w = t.model.summary_proj.weight
        w.set_value(paddle.full(w.shape, 0.05))             # so that the summary counts
        t.train_mode()
        batch = to_tensors(next(iter(t.loader)))
        paddle.seed(3)
        losses.append(t.forward_loss(batch)[0].item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_a_cache_run_says_the_day_reconstruction_loss_is_left_out(tiny_work, cache, tmp_path, capsys):
    path, _ = cache
    frozen = ["train.epochs=1", "train.two_stage.frozen_epochs=1", f"train.two_stage.cache={path}"]
    Trainer(config(tiny_work, tmp_path / "a", frozen), callbacks=[])
    assert "left out of those epochs" not in capsys.readouterr().out
    Trainer(config(tiny_work, tmp_path / "b", frozen + ["model.day_reconstruction.enabled=true"]), callbacks=[])
    assert "model.day_reconstruction is on, but the frozen epochs read cached day features" in capsys.readouterr().out


def test_the_day_decoders_targets_from_a_pooled_volume_are_its_targets_from_the_volume():
    from ppeye.modeling.layers.day_decoder import DayDecoder

    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3, 4, 4, 6)).astype("float32")
    for kind in ("volume", "deviation", "deviation_and_mean"):
        dec = DayDecoder(8, 3, [2, 2, 3], kind, standardise=True)
        dec.fit(x)
        v = paddle.to_tensor(x)
        pooled = dec.pool(v)
        assert list(pooled.shape) == [7, dec.pooled_size] and dec.pooled_size == 3 * 12
        np.testing.assert_array_equal(dec.target_from_pooled(pooled).numpy(), dec.target(v).numpy())


def test_a_cache_of_a_model_with_a_day_decoder_trains_with_its_reconstruction_loss(tiny_work, tmp_path, capsys):
    rec = ["model.day_reconstruction.enabled=true", "model.day_reconstruction.target=deviation",
           "model.day_reconstruction.standardise=true", "model.day_reconstruction.grid=[1, 2, 2]"]
    cfg = config(tiny_work, tmp_path, rec)
    path = str(tmp_path / "days.zarr")
    extract_day_features(cfg, path, batch_size=50)
    store = Era5Store(os.path.join(cfg["data"]["work_dir"], "era5.zarr"))
    c = FeatureCache(path)
    model = ppeye.build_model(cfg)
    p = model.backbone.out_channels
    assert c.shape == (p,) and c.day_pooled_grid == [1, 2, 2]        # plain rows until a decoder asks
    assert c.with_day_targets(model.day_decoder) and c.shape == (p + model.day_decoder.pooled_size,)
    days = np.nonzero(store.valid[0])[0][:5]
    v = store.read(0, days)
    with paddle.no_grad():
        expected = model.day_decoder.pool(paddle.to_tensor(v)).numpy()
    np.testing.assert_array_equal(c.read(0, days)[:, p:], expected)
    np.testing.assert_array_equal(c.read_features(0, days), c.read(0, days)[:, :p])
    # the frozen stage from the cache: the same loss as on the volumes, reconstruction included
    frozen = rec + ["train.epochs=1", "train.two_stage.frozen_epochs=1"]
    results = []
    for extra in ([], [f"train.two_stage.cache={path}"]):
        t = Trainer(config(tiny_work, tmp_path / f"r{len(extra)}", frozen + extra), callbacks=[])
        t.train_mode()
        batch = to_tensors(next(iter(t.loader)))
        paddle.seed(3)
        loss, ex = t.forward_loss(batch)
        results.append((loss.item(), ex["day_reconstruction_loss"].item()))
    assert results[0][1] > 0
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
    assert results[0][1] == pytest.approx(results[1][1], rel=1e-5)
    assert "left out of those epochs" not in capsys.readouterr().out
    # a decoder on another grid cannot use these pooled volumes: the loss is left out, and said so
    Trainer(config(tiny_work, tmp_path / "g", frozen + [f"train.two_stage.cache={path}",
                                                         "model.day_reconstruction.grid=[1, 1, 2]"]), callbacks=[])
    assert "left out of those epochs" in capsys.readouterr().out
