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
               "optimizer.learning_rate=0.003", "model.backbone.coords=false", "model.day_reconstruction.enabled=false"]


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
    # run records: counts per split match the cohort; meta has versions, data hashes and every setting
    import pandas as pd

    from ppeye.core.io import sha256

    cohort = pd.read_parquet(os.path.join(trainer.cfg["data"]["work_dir"], "cohort.parquet"))
    split = pd.read_csv(run / "split.csv").set_index("split")
    assert split.loc["all", "n"] == len(cohort) and split.loc["train", "n"] == (cohort.split == "train").sum()
    assert split.loc["train", "cataract"] == cohort.loc[cohort.split == "train", "label_cataract"].sum()
    meta = pd.read_csv(run / "meta.csv").set_index("key")["value"]
    assert meta["config.train.epochs"] == "2" and meta["seed"] == str(trainer.cfg["seed"])
    assert meta["data.sha256.cohort.parquet"] == sha256(os.path.join(trainer.cfg["data"]["work_dir"], "cohort.parquet"))
    assert meta["version.paddle"] and len(meta["config_fingerprint"]) == 16
    assert "eid" not in open(run / "meta.csv").read() and "eid" not in open(run / "split.csv").read()


def test_resume_with_a_different_config_or_model_is_refused(work, tmp_path):
    Trainer(config(work, tmp_path, ["train.epochs=1"])).train()
    run = tmp_path / "r"
    records = {name: (run / name).read_bytes() for name in ("config.yaml", "meta.csv")}
    other = Trainer(config(work, tmp_path, ["train.epochs=2", "optimizer.learning_rate=0.1"]))
    with pytest.raises(CheckpointError, match="different config"):
        other.train(resume=str(run))
    # the refusal came before anything was written: the run resumes with its own config again
    assert {name: (run / name).read_bytes() for name in records} == records
    same = Trainer(config(work, tmp_path, ["train.epochs=1"]))
    same.world = 2                      # as if launched on 2 processes: the shares and schedule would change
    with pytest.raises(CheckpointError, match=r"trained on 1 process\(es\), this resume has 2.*--nproc_per_node 1"):
        same.train(resume=str(run))
    assert {name: (run / name).read_bytes() for name in records} == records
    wider = ppeye.build_model(config(work, tmp_path, ["model.width=32"]))
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_weights(wider, str(tmp_path / "r"))


def test_a_second_training_in_a_run_directory_in_use_is_refused_and_changes_nothing(work, tmp_path):
    import json
    import socket
    import subprocess
    import sys

    from ppeye.core.errors import InputError

    Trainer(config(work, tmp_path, ["train.epochs=1"])).train()
    run = tmp_path / "r"
    before = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != "log.txt"}
    assert not (run / ".ppeye.lock").exists()                     # released after the run
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])   # a training still running
    try:
        (run / ".ppeye.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": other.pid,
                                                     "what": "training", "started": "now"}))
        with pytest.raises(InputError, match=f"in use by another training \\(process {other.pid}"):
            Trainer(config(work, tmp_path, ["train.epochs=1"])).train()
    finally:
        other.kill()
        other.wait()
    after = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name not in ("log.txt", ".ppeye.lock")}
    assert after == before                                        # its checkpoints and records untouched


class Warnings:
    """Collects what the ppeye logger warns (it does not propagate to pytest's caplog)."""

    def __enter__(self):
        import logging

        self.lines, self.logger = [], logging.getLogger("ppeye")
        self.handler = logging.Handler(logging.WARNING)
        self.handler.emit = lambda record: self.lines.append(record.getMessage())
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)

    @property
    def text(self):
        return "\n".join(self.lines)


def test_a_damaged_checkpoint_is_named_and_a_run_falls_back_to_the_newest_intact_one(work, tmp_path):
    import shutil

    trainer = Trainer(config(work, tmp_path, ["train.epochs=2"]))
    trainer.train()
    ckpts = tmp_path / "r" / "checkpoints"
    assert json.load(open(ckpts / "latest.json"))["checkpoint"] == "epoch_0001"
    assert set(json.load(open(ckpts / "epoch_0001" / "checksums.json"))) == {"model.pdparams", "optimizer.pdopt",
                                                                             "state.json"}
    pristine = tmp_path / "pristine"
    shutil.copytree(ckpts, pristine)
    model = ppeye.build_model(trainer.cfg)
    damages = {"truncated": lambda b: b[: len(b) // 2], "empty": lambda b: b"",
               "bit-flipped": lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:]}
    for what, change in damages.items():
        shutil.rmtree(ckpts)
        shutil.copytree(pristine, ckpts)
        target = ckpts / "epoch_0001" / "model.pdparams"
        target.write_bytes(change(target.read_bytes()))
        with pytest.raises(CheckpointError, match="epoch_0001/model.pdparams (does not match its checksum|is missing)"):
            load_weights(model, str(ckpts / "epoch_0001"))                     # named explicitly: refused
        with Warnings() as caught:
            got = load_weights(model, str(tmp_path / "r"), ("latest",))        # a resume: the newest intact one
        assert got.endswith("epoch_0000"), what
        assert "epoch_0001/model.pdparams does not match its checksum" in caught.text
        assert "using the newest intact checkpoint, epoch_0000" in caught.text
    # a damaged pointer: the newest intact checkpoint, said so
    shutil.rmtree(ckpts)
    shutil.copytree(pristine, ckpts)
    (ckpts / "latest.json").write_text('{"checkpoint": "epoch_00')
    with Warnings() as caught:
        assert resolve(str(tmp_path / "r"), ("latest",)).endswith("epoch_0001")
    assert "latest.json is damaged" in caught.text
    # a resume from the run continues after the intact epoch
    (ckpts / "epoch_0001" / "state.json").write_text("{")
    Trainer(config(work, tmp_path, ["train.epochs=2"])).train(resume=str(tmp_path / "r"))
    assert json.load(open(ckpts / "latest.json"))["checkpoint"] == "epoch_0001"
    assert json.load(open(ckpts / "epoch_0001" / "state.json"))["epoch"] == 1


def test_a_nan_loss_stops_with_the_last_checkpoint_intact(work, tmp_path):
    trainer = Trainer(config(work, tmp_path, ["train.epochs=2"]))
    criterion, calls = trainer.criterion, []

    def nan_in_the_second_epoch(logits, labels):
        calls.append(1)
        loss = criterion(logits, labels)
        return loss * float("nan") if len(calls) > len(trainer.loader) else loss

    trainer.criterion = nan_in_the_second_epoch
    with pytest.raises(ppeye.core.errors.PpeyeError, match="the loss is nan; training stopped"):
        trainer.train()
    ckpts = tmp_path / "r" / "checkpoints"
    assert json.load(open(ckpts / "latest.json")) == {"checkpoint": "epoch_0000"}
    assert sorted(p for p in os.listdir(ckpts) if p.startswith("epoch_")) == ["epoch_0000"]
    load_weights(ppeye.build_model(trainer.cfg), str(tmp_path / "r"))


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


def test_early_stopping_counts_epochs_without_improvement():
    from ppeye.engine.optim import EarlyStopping

    es = EarlyStopping(patience=2)
    assert es.update(0.6) == (True, False)
    assert es.update(0.5) == (False, False)
    assert es.update(float("nan")) == (False, True)           # a NaN score is no improvement
    es = EarlyStopping(patience=1, enabled=False)
    assert es.update(0.6) == (True, False) and es.update(0.5) == (False, False)
    assert EarlyStopping().update(None) == (False, False)      # no validation, no decision


def test_schedules_warmup_cosine_step_and_plateau(work, tmp_path):
    from ppeye.engine.optim import build_optimizer

    model = paddle.nn.Linear(2, 2)
    cfg = config(work, tmp_path, ["train.epochs=4", "optimizer.learning_rate=0.1", "scheduler.min_lr=0.0"])
    _, sched = build_optimizer(cfg, model, steps_per_epoch=10)
    lrs = []
    for _ in range(40):
        lrs.append(sched.last_lr)
        sched.step()
    assert lrs[0] == 0.0 and lrs[10] == pytest.approx(0.1)            # one warmup epoch
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] < 0.01
    cfg = config(work, tmp_path, ["train.epochs=4", "optimizer.learning_rate=0.1", "scheduler.type=Plateau",
                                  "+scheduler.patience=1", "+scheduler.factor=0.5", "train.eval=true"])
    _, sched = build_optimizer(cfg, model, steps_per_epoch=10)
    for score in (0.6, 0.7, 0.7, 0.7):                                 # mode max: stalls after 0.7
        sched.step(score)
    assert sched.last_lr == pytest.approx(0.05)
    with pytest.raises(ppeye.core.errors.ConfigError, match="WarmupCosine, Step, Plateau or Constant"):
        build_optimizer(config(work, tmp_path, ["scheduler.type=Cyclic"]), model, 10)


def test_accumulating_two_half_batches_equals_one_batch_step(work, tmp_path):
    """accum_steps=2 at batch 32 makes the same updates as batch 64: same people per update
    (ungrouped batches in one shuffled order), mean losses, and a last group holding a single
    short batch is not halved. A patient-only model without dropout or gate noise has no
    batch-dependent randomness (and no BatchNorm), so the weights must agree."""
    overrides = ["train.epochs=1", "model.weather_branch=false", "model.tabular.dropout=0.0",
                 "model.fusion.dropout=0.0", "loader.group_by_site=false", "optimizer.type=SGD",
                 "optimizer.learning_rate=0.05", "scheduler.type=Constant", "optimizer.grad_clip=null",
                 "model.moe.gate_noise=false"]
    one = Trainer(config(work, tmp_path / "a", overrides))
    two = Trainer(config(work, tmp_path / "b", overrides + ["train.accum_steps=2", "loader.batch_size=32"]))
    assert len(one.train_set) % 64 <= 32          # the last update is one short batch in both runs
    assert two.steps_per_epoch == one.steps_per_epoch
    one.train()
    two.train()
    a, b = weights(one.model), weights(two.model)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_visualdl_logs_scalars_moe_histograms_and_hparams(work, tmp_path):
    from visualdl import LogReader

    cfg = config(work, tmp_path, ["train.epochs=1", "train.eval=true", "use_vdl=true", "log_iter=1",
                                  "model.moe.enabled=true", "model.tabular.moe.enabled=true"])
    trainer = Trainer(cfg)
    trainer.train()
    vdl = tmp_path / "r" / "vdl"
    logs = [p for p in os.listdir(vdl) if p.startswith("vdlrecords")]
    assert logs
    reader = LogReader(file_path=str(vdl / logs[0]))
    tags = reader.get_tags()
    scalars = set(tags.get("scalar", []))
    assert {"train/loss", "train/lr", "epoch/train_loss", "val_macro/macro_roc_auc",
            "val_disease/glaucoma_roc_auc"} <= scalars
    assert any(t.startswith("moe/tabular/") for t in scalars) and "train/moe_aux_loss" in scalars
    assert any("expert_usage" in t for t in tags.get("histogram", []))
    # how spread each attention is over its keys (0: one key, 1: even), per step, as a histogram and its mean
    assert "attention/fusion.patient_to_weather/entropy_of_rows" in tags.get("histogram", [])
    ent = reader.get_data("scalar", "attention/fusion.patient_to_weather/entropy")
    assert len(ent) == len(trainer.loader) and all(0 <= r.value <= 1 for r in ent)
    if cfg["model"]["temporal"]["transformer"].get("enabled", True):
        assert "attention/temporal.0/entropy_of_rows" in tags.get("histogram", [])
    loss = reader.get_data("scalar", "train/loss")
    assert len(loss) == len(trainer.loader) and all(np.isfinite(r.value) for r in loss)
    speed = reader.get_data("scalar", "train/samples_per_s")          # every step but the epoch's first
    assert len(speed) == len(trainer.loader) - 1 and all(r.value > 0 for r in speed)
    (record,) = reader.get_data("hyper_parameters", "hparam")
    names = [h.name for h in record.hparam.hparamInfos]
    assert "model_width" in names and "optimizer_learning_rate" in names and not any("." in n for n in names)
    assert [m.name for m in record.hparam.metricInfos][0].startswith("hparams/val_macro")


def test_a_new_run_in_an_old_run_directory_sets_the_old_checkpoints_aside(work, tmp_path):
    Trainer(config(work, tmp_path, ["train.epochs=1"])).train()
    model = ppeye.build_model(config(work, tmp_path))
    load_weights(model, str(tmp_path / "r"))
    first = weights(model)
    Trainer(config(work, tmp_path, ["train.epochs=1", "seed=7"])).train()
    run = tmp_path / "r"
    assert (run / "previous_checkpoints" / "epoch_0000" / "model.pdparams").exists()
    kept = ppeye.build_model(config(work, tmp_path))
    load_weights(kept, str(run / "previous_checkpoints"))
    assert all(np.array_equal(v, first[k]) for k, v in weights(kept).items())
    new = ppeye.build_model(config(work, tmp_path))
    load_weights(new, str(run))
    assert not all(np.array_equal(v, first[k]) for k, v in weights(new).items())


def test_a_numeric_run_name_is_a_directory_name(work, tmp_path):
    trainer = Trainer(config(work, tmp_path, ["run_name=7"]), callbacks=[])      # YAML reads 7 as an int
    assert trainer.run_dir == os.path.join(str(tmp_path), "7") and os.path.isdir(trainer.run_dir)


def test_a_training_step_reads_back_only_its_loss(work, tmp_path, monkeypatch):
    """Host syncs serialise a GPU's launch queue: a step (forward, loss, backward, update) and its
    report to the hooks copy one number to the host, the loss (for the log and the NaN policy);
    the MoE statistics and attention maps stay on the device until a hook asks (VisualDL, on its
    log_iter steps). Measured on CPU tensors, where the input range check adds its two reads."""
    from ppeye.engine.callbacks import step_report
    from ppeye.engine.predict import to_tensors

    trainer = Trainer(config(work, tmp_path, ["train.epochs=1", "model.moe.enabled=true",
                                              "model.tabular.moe.enabled=true"]))
    batch = to_tensors(next(iter(trainer.loader)))
    trainer.train_mode()
    reads = {"item": 0, "numpy": 0}
    for name in reads:
        original = getattr(paddle.Tensor, name)

        def counted(self, *a, _name=name, _original=original, **k):
            reads[_name] += 1
            return _original(self, *a, **k)

        monkeypatch.setattr(paddle.Tensor, name, counted)
    value, ex = trainer.train_step(batch)
    info = step_report(0, 1, 1, value, value, 1e-3, 64, ex)
    assert ex["routing"] and info["routing"] and info["attention"]                # MoE on, maps passed on
    assert reads == {"item": 1 + 2, "numpy": 0}, reads       # the loss + day_index min/max (CPU tensors only)


def test_sync_batch_norm_converts_every_batchnorm_on_gpus_and_is_refused_across_cpu_processes(work, tmp_path):
    from ppeye.core.device import sync_batchnorm
    from ppeye.core.errors import ConfigError
    from ppeye.core.paddle_env import import_paddle

    paddle = import_paddle()
    cfg = config(work, tmp_path, ["model.backbone.norm=sync_batch"])
    Trainer(cfg)                                                        # one process: it is plain BatchNorm
    model = ppeye.build_model(cfg)
    with pytest.raises(ConfigError, match="sync_batch over 2 CPU processes"):
        sync_batchnorm(model, "cpu", 2)
    before = {k: list(v.shape) for k, v in model.state_dict().items()}
    params = {id(p) for p in model.parameters()}
    norms = sum(isinstance(layer, paddle.nn.layer.norm._BatchNormBase) for layer in model.sublayers())
    assert sync_batchnorm(model, "gpu", 1) is model                    # one rank: nothing to synchronise
    converted = sync_batchnorm(model, "gpu:0", 2)                      # (the conversion itself needs no GPU)
    assert norms > 0 and sum(isinstance(layer, paddle.nn.SyncBatchNorm) for layer in converted.sublayers()) == norms
    assert {k: list(v.shape) for k, v in converted.state_dict().items()} == before   # checkpoints load either way
    assert {id(p) for p in converted.parameters()} == params          # the same parameters, not copies


def test_group_norm_has_no_batch_statistics_so_one_person_is_scored_alike_in_any_batch():
    from ppeye.core.paddle_env import import_paddle
    from ppeye.modeling.backbones.resnet3d import ResNet3D

    paddle = import_paddle()
    paddle.seed(0)
    net = ResNet3D(2, depth=10, base_width=4, norm="group")
    assert not [n for n, _ in net.named_buffers() if "mean" in n or "variance" in n]
    assert {layer._num_groups for layer in net.sublayers() if isinstance(layer, paddle.nn.GroupNorm)} == {1, 2, 4}
    x = paddle.randn([6, 2, 4, 8, 8])
    net.train()                                                         # even in training mode
    np.testing.assert_allclose(net(x[:1]).numpy(), net(x)[:1].numpy(), rtol=1e-4, atol=1e-5)
