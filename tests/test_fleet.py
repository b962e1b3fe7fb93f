"""Fleet data-parallel training with 2 CPU processes (gloo), launched as a user would: one
frozen-ResNet epoch, then one end-to-end epoch (two-stage training switches stage under fleet)."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ppeye
from conftest import DEMO, PIPE, ROOT, TINY
from test_trainer import SMALL_MODEL
from ppeye.engine import Trainer, load_weights


@pytest.fixture(scope="module")
def fleet_run(tiny_work, tmp_path_factory):
    out = tmp_path_factory.mktemp("fleet")
    overrides = TINY + PIPE + tiny_work + SMALL_MODEL + [
        f"output_dir={out}", "run_name=r", "train.epochs=2", "train.eval=true", "loader.batch_size=32",
        "train.two_stage.frozen_epochs=1"]   # epoch 2 fine-tunes the ResNet: gradients synced after the switch
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", str(out / "logs"),
           os.path.join(ROOT, "tests", "fleet_worker.py"), DEMO, str(out), *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    logs = "".join(open(os.path.join(out, "logs", f)).read()[-3000:] for f in sorted(os.listdir(out / "logs"))
                   if f.startswith("workerlog"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + logs
    return out, overrides


def test_two_processes_end_with_identical_parameters(fleet_run):
    out, _ = fleet_run
    a, b = np.load(out / "params_rank0.npz"), np.load(out / "params_rank1.npz")
    assert json.load(open(out / "history_rank0.json"))["world"] == 2
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_the_launched_processes_logs_hold_no_launcher_noise(fleet_run):
    out, _ = fleet_run
    logs = "".join(open(os.path.join(out, "logs", f)).read() for f in os.listdir(out / "logs")
                   if f.startswith("workerlog"))
    assert "epoch 2/2" in logs                                  # the runs' own lines are there
    for noise in ("Modified FLAGS detected", "is not in group", "Successfully connected", "create libuv server"):
        assert noise not in logs, noise


def test_gathered_validation_metrics_equal_a_single_process_evaluation(fleet_run):
    out, overrides = fleet_run
    h0 = json.load(open(out / "history_rank0.json"))["history"]
    h1 = json.load(open(out / "history_rank1.json"))["history"]
    assert [r["val_macro_roc_auc"] for r in h0] == [r["val_macro_roc_auc"] for r in h1]
    # the run's last checkpoint, evaluated by one process over the whole validation split
    cfg = ppeye.load_config(DEMO, overrides + ["train.eval=true", f"output_dir={out}/single"])
    single = Trainer(cfg, callbacks=[])
    load_weights(single.model, str(out / "r" / "checkpoints" / "epoch_0001"))
    m, labels, _ = single.evaluate(single.val_set)
    assert m["n"] == h0[-1]["val_n"] == len(single.val_set)
    for key in ("macro_roc_auc", "macro_pr_auc", "macro_brier", "hamming_loss"):
        assert m[key] == pytest.approx(h0[-1][f"val_{key}"], abs=1e-6), key


def test_only_rank_zero_writes_the_run(fleet_run):
    out, _ = fleet_run
    run = out / "r"
    assert (run / "config.yaml").exists() and (run / "metrics.json").exists()
    ckpts = sorted(p for p in os.listdir(run / "checkpoints") if p.startswith("epoch_"))
    assert ckpts == ["epoch_0000", "epoch_0001"]
    assert json.load(open(run / "checkpoints" / "epoch_0001" / "state.json"))["world_size"] == 2


@pytest.mark.slow                # two launched processes pretraining: make test-slow
def test_day_pretraining_in_two_processes_keeps_the_ranks_equal_and_scores_every_held_out_day(tiny_work, tmp_path):
    from test_day_pretrain import DAYS

    from ppeye.data.dataset import OnsetDataset
    from ppeye.engine.checkpoint import load_pretrained
    from ppeye.engine.day_pretrain import DayEncoder, centre_days, evaluate

    overrides = TINY + PIPE + tiny_work + SMALL_MODEL + DAYS + [f"output_dir={tmp_path}", "run_name=r",
                                                               "day_pretrain.epochs=2"]
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
           str(tmp_path / "logs"), os.path.join(ROOT, "tests", "fleet_worker.py"), "days", DEMO, str(tmp_path),
           *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    logs = "".join(open(tmp_path / "logs" / f).read()[-3000:] for f in sorted(os.listdir(tmp_path / "logs"))
                   if f.startswith("workerlog"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + logs
    assert json.load(open(tmp_path / "days_rank1.json"))["world"] == 2
    a, b = np.load(tmp_path / "days_rank0.npz"), np.load(tmp_path / "days_rank1.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:                       # BatchNorm statistics averaged, gradients all-reduced
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    run = tmp_path / "r_days"
    assert sorted(os.listdir(tmp_path)) == ["days_rank0.json", "days_rank0.npz", "days_rank1.json",
                                            "days_rank1.npz", "logs", "r_days"]          # rank 0 wrote the run
    log = open(run / "log.txt").read()
    assert "each split among 2 processes" in log
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    # the gathered held-out error is the error of every held-out day, scored here by one process
    cfg = ppeye.load_config(DEMO, overrides)
    model = ppeye.build_model(cfg)
    load_pretrained(model, str(run / "checkpoints" / "epoch_0002"))
    train_set = OnsetDataset(cfg, "train")
    keys = centre_days(train_set.store, np.unique(train_set.site))
    held = keys[(keys % train_set.store.n_days) % 5 == 0]
    mse, _ = evaluate(DayEncoder(model), train_set.store, held, 4, 16)
    np.testing.assert_allclose(mse, float(rows[-1]["heldout_mse"]), rtol=1e-5)
