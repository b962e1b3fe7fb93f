"""tools/sweep.py's engine: trial plans, validation before training, scores, best_hparams.yaml, reruns."""
import json
import os

import pandas as pd
import pytest
import yaml

import ppeye
from conftest import DEMO
from ppeye.core.errors import ConfigError


def test_grid_is_every_combination_and_random_draws_inside_the_ranges():
    from ppeye.engine.sweep import plan_trials

    grid = plan_trials({"method": "grid", "params": {"a.b": [1, 2, 3], "c": ["x", "y"]}})
    assert len(grid) == 6 and {(t["a.b"], t["c"]) for t in grid} == {(i, s) for i in (1, 2, 3) for s in "xy"}
    spec = {"method": "random", "trials": 50,
            "params": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}, "k": {"low": 2, "high": 5}, "d": [0.1, 0.3]}}
    trials = plan_trials(spec, seed=3)
    assert trials == plan_trials(spec, seed=3) and trials != plan_trials(spec, seed=4)
    assert all(1e-4 <= t["lr"] <= 1e-2 and isinstance(t["k"], int) and 2 <= t["k"] <= 5 and t["d"] in (0.1, 0.3)
               for t in trials)
    assert {t["k"] for t in trials} == {2, 3, 4, 5}
    assert all(float(f"{t['lr']:.4g}") == t["lr"] for t in trials)   # readable values in trials.csv
    lrs = sorted(t["lr"] for t in trials)                      # log-uniform: about half below the geometric mean
    assert 15 <= sum(lr < 1e-3 for lr in lrs) <= 35


@pytest.mark.parametrize("spec, message", [
    ({"params": {}}, "sweep.params is empty"),
    ({"method": "grid", "params": {"lr": {"low": 0.1, "high": 1}}}, "needs sweep.method random"),
    ({"method": "random", "trials": 2, "params": {"lr": {"low": 1, "high": 0.1}}}, "low <= high"),
    ({"method": "random", "trials": 2, "params": {"lr": {"low": 0, "high": 1, "log": True}}}, "needs low > 0"),
    ({"method": "random", "trials": 0, "params": {"lr": [1]}}, "sweep.trials must be a positive integer"),
    ({"method": "bayes", "params": {"lr": [1]}}, "grid or random, got 'bayes'"),
    ({"params": {"lr": []}}, "sweep.params.lr: the list of values is empty"),
])
def test_bad_sweep_sections_are_refused(spec, message):
    from ppeye.engine.sweep import plan_trials

    with pytest.raises(ConfigError, match=message):
        plan_trials(spec)


def test_a_trial_with_an_unknown_key_fails_before_anything_trains(trained, tmp_path):
    from ppeye.engine.sweep import Sweep

    _, overrides = trained
    cfg = ppeye.load_config(DEMO, overrides + [
        "sweep.params={optimizer.learning_rate: [0.01], model.widht: [8]}"])
    with pytest.raises(ConfigError, match=r"sweep trial 0: .*model.widht.*Did you mean: model.width"):
        Sweep(cfg, str(tmp_path / "s"))
    assert not (tmp_path / "s").exists()


def test_a_sweep_scores_every_trial_records_the_best_and_a_rerun_keeps_finished_trials(trained, tmp_path):
    from ppeye.engine.sweep import Sweep

    _, overrides = trained
    base = overrides + [f"output_dir={tmp_path}", "train.epochs=2", "retrieval.enabled=false"]
    out = str(tmp_path / "sweep")
    cfg = ppeye.load_config(DEMO, base + ["sweep.params={optimizer.learning_rate: [0.003, 0.02]}"])
    best = Sweep(cfg, out, processes="inline").run()
    trials = pd.read_csv(os.path.join(out, "trials.csv"))
    assert list(trials.trial) == ["trial_000", "trial_001"] and (trials.status == "done").all()
    for _, row in trials.iterrows():
        history = json.load(open(os.path.join(row["run_dir"], "metrics.json")))
        at = max(history, key=lambda r: r["val_macro_roc_auc"])  # the best checkpoint: best validation AUC
        assert row["score"] == pytest.approx(at["val_macro_roc_auc"]) and row["best_epoch"] == at["epoch"]
        saved = ppeye.load_config(os.path.join(row["run_dir"], "config.yaml"))
        assert saved["optimizer"]["learning_rate"] == float(row["param:optimizer.learning_rate"])
    record = yaml.safe_load(open(os.path.join(out, "best_hparams.yaml")))
    assert record == best and record["score"] == pytest.approx(trials.score.max())
    assert record["trial"] == trials.trial[trials.score.idxmax()] and record["metric"] == "val_macro_roc_auc"
    assert record["overrides"] == [f"optimizer.learning_rate={record['params']['optimizer.learning_rate']}"]
    # a third setting: the two finished trials are kept, the new one trains in a child process
    mtime = os.path.getmtime(os.path.join(out, "trial_000", "metrics.json"))
    cfg = ppeye.load_config(DEMO, base + ["sweep.params={optimizer.learning_rate: [0.003, 0.02, 0.001]}"])
    Sweep(cfg, out, processes=1).run()
    trials = pd.read_csv(os.path.join(out, "trials.csv"))
    assert len(trials) == 3 and (trials.status == "done").all()
    assert os.path.getmtime(os.path.join(out, "trial_000", "metrics.json")) == mtime
    assert os.path.isfile(os.path.join(out, "trial_002.yaml"))                    # the child's config


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(trained, tmp_path):
    from ppeye.engine.sweep import Sweep

    _, overrides = trained
    out = tmp_path / "sweep"
    cfg = ppeye.load_config(DEMO, overrides + [f"output_dir={tmp_path}", "train.epochs=1", "retrieval.enabled=false",
                                               "sweep.params={model.backbone.pool: [avg, square]}"])
    record = Sweep(cfg, str(out), processes=1).run()
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials.status) == ["done", "failed"] and record["trial"] == "trial_000"
    assert "training trial_001 failed (exit 2): see " in trials.error[1] and "log.txt" in trials.error[1]


def test_child_trainings_choose_their_own_threads_unless_the_user_set_them(monkeypatch):
    from ppeye.core.paddle_env import SET_BY_PPEYE, child_environment

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv(SET_BY_PPEYE, "1")                 # ppeye chose 2 for this process
    env = child_environment()
    assert "OMP_NUM_THREADS" not in env and SET_BY_PPEYE not in env
    monkeypatch.delenv(SET_BY_PPEYE)                      # the user's own setting is passed on
    assert child_environment()["OMP_NUM_THREADS"] == "2"
