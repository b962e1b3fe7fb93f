"""Hyper-parameter search driven by the config's ``sweep`` section (``tools/sweep.py``).

::

    sweep:
      method: random            # grid (every combination) | random (``trials`` draws)
      trials: 8
      metric: null              # a validation metric to maximise (null: train.early_stop.metric)
      params:
        optimizer.learning_rate: {low: 0.0001, high: 0.003, log: true}
        model.width: [32, 64]

A parameter is a dotted config key with a list of values (grid: all of them; random: one drawn
uniformly) or, for random search, a range ``{low, high, log}`` (integers when both ends are
integers and ``log`` is false; drawn numbers keep 4 significant digits). Every trial is a run
directory ``<out>/trial_NNN`` (``tools/sweep.py``: ``--output_dir``, default
``<output_dir>/<run_name>_sweep``, or ``<output_dir>/<run_name>`` for a run name ending in
``sweep``) trained with validation every epoch; its score is the validation metric at the
epoch of its best checkpoint (the weights the run delivers).
``trials.csv`` is rewritten after every trial, so a rerun skips the trials already finished
with the same settings; ``best_hparams.yaml`` records the best trial's settings, score and run.
A trial that fails is recorded with its error and the sweep goes on; every trial's settings
are checked against the config before the first one trains.
"""
import itertools
import json
import os

import numpy as np
import yaml

from ..core.config import apply_overrides
from ..core.errors import ConfigError, PpeyeError
from ..core.io import atomic_write, write_csv
from ..core.logger import get_logger
from .runs import train_variant

FIELDS = ["trial", "status", "score", "best_epoch", "run_dir", "overrides", "error"]


def _yaml_value(value):
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("\n...").strip()


def _draw(key, spec, rng):
    if isinstance(spec, (list, tuple)):
        return spec[int(rng.integers(len(spec)))]
    low, high, log = spec["low"], spec["high"], bool(spec.get("log", False))
    if not log and isinstance(low, int) and isinstance(high, int):
        return int(rng.integers(low, high + 1))
    value = np.exp(rng.uniform(np.log(low), np.log(high))) if log else rng.uniform(low, high)
    return min(max(float(f"{value:.4g}"), low), high)       # 4 significant digits: readable, still inside


def plan_trials(sc, seed=0):
    """The trials' settings ``[{key: value}]`` of a ``sweep`` section."""
    params = sc.get("params") or {}
    if not isinstance(params, dict) or not params:
        raise ConfigError("sweep.params is empty: give dotted config keys with a list of values or "
                          "{low, high, log}, e.g. sweep.params={optimizer.learning_rate: [0.001, 0.0003]}")
    method = sc.get("method", "grid")
    for key, spec in params.items():
        if isinstance(spec, (list, tuple)):
            if not spec:
                raise ConfigError(f"sweep.params.{key}: the list of values is empty")
        elif isinstance(spec, dict):
            if method != "random":
                raise ConfigError(f"sweep.params.{key}: a range {{low, high}} needs sweep.method random "
                                  f"(grid search takes a list of values)")
            if set(spec) - {"low", "high", "log"} or not {"low", "high"} <= set(spec):
                raise ConfigError(f"sweep.params.{key}: a range has the keys low, high and optionally log, "
                                  f"got {sorted(spec)}")
            low, high = spec["low"], spec["high"]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low > high:
                raise ConfigError(f"sweep.params.{key}: low and high must be numbers with low <= high, "
                                  f"got {low} and {high}")
            if spec.get("log") and low <= 0:
                raise ConfigError(f"sweep.params.{key}: a log range needs low > 0, got {low}")
        else:
            raise ConfigError(f"sweep.params.{key}: expected a list of values or {{low, high, log}}, got {spec!r}")
    if method == "grid":
        keys = list(params)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(params[k] for k in keys))]
    if method == "random":
        trials = sc.get("trials")
        if not isinstance(trials, int) or trials < 1:
            raise ConfigError(f"sweep.trials must be a positive integer for random search, got {trials!r}")
        rng = np.random.default_rng(seed)
        return [{k: _draw(k, spec, rng) for k, spec in params.items()} for _ in range(trials)]
    raise ConfigError(f"sweep.method must be grid or random, got {method!r}")


def trial_score(run_dir, metric):
    """(validation ``metric`` at the best checkpoint's epoch, that epoch counted from 1 as in
    metrics.json; checkpoint ``epoch_NNNN`` counts from 0)."""
    best = json.load(open(os.path.join(run_dir, "checkpoints", "best.json")))["checkpoint"]
    epoch = int(best.rsplit("_", 1)[1]) + 1
    history = json.load(open(os.path.join(run_dir, "metrics.json")))
    row = next((r for r in history if int(r.get("epoch", -1)) == epoch), None)
    key = f"val_{metric}"
    if row is None or row.get(key) is None:
        raise PpeyeError(f"{run_dir}/metrics.json has no {key} for epoch {epoch} (is {metric!r} a validation "
                         f"metric, e.g. macro_roc_auc, macro_pr_auc?)")
    return float(row[key]), epoch


class Sweep:
    """``Sweep(cfg, out_dir).run()`` -> the best trial's row."""

    def __init__(self, cfg, out_dir, processes="auto", log=None):
        self.cfg, self.out_dir, self.processes = cfg, out_dir, processes
        sc = cfg.get("sweep") or {}
        self.metric = sc.get("metric") or cfg["train"].get("early_stop", {}).get("metric", "macro_roc_auc")
        self.trials = plan_trials(sc, int(cfg.get("seed", 0)))
        import copy

        for k, settings in enumerate(self.trials):            # every trial's keys exist and have the right type
            try:
                apply_overrides(copy.deepcopy(cfg), self.overrides(settings))
            except ConfigError as e:
                raise ConfigError(f"sweep trial {k}: {e}") from None
        self.log = log or get_logger("ppeye.sweep", output_dir=out_dir)

    @staticmethod
    def overrides(settings):
        return [f"{k}={_yaml_value(v)}" for k, v in settings.items()]

    def _done(self):
        path = os.path.join(self.out_dir, "trials.csv")
        if not os.path.isfile(path):
            return {}
        import csv

        return {(r["trial"], r["overrides"]): r for r in csv.DictReader(open(path)) if r["status"] == "done"}

    def run(self):
        os.makedirs(self.out_dir, exist_ok=True)
        done = self._done()
        rows = []
        self.log.info(f"sweep: {len(self.trials)} trials, maximising validation {self.metric} -> {self.out_dir}")
        for k, settings in enumerate(self.trials):
            name = f"trial_{k:03d}"
            text = " ".join(self.overrides(settings))
            row = {"trial": name, "overrides": text, "run_dir": os.path.join(self.out_dir, name), "error": ""}
            if (name, text) in done:
                row |= {key: done[name, text][key] for key in ("status", "score", "best_epoch")}
                self.log.info(f"{name}: finished before ({self.metric} {float(row['score']):.4f}), kept")
            else:
                self.log.info(f"{name}: {text}")
                try:
                    run_dir, _ = train_variant(self.cfg, self.out_dir, name, self.overrides(settings),
                                               processes=self.processes, log=self.log)
                    score, epoch = trial_score(run_dir, self.metric)
                    row |= {"status": "done", "score": score, "best_epoch": epoch}
                    self.log.info(f"{name}: validation {self.metric} {score:.4f} (epoch {epoch})")
                except PpeyeError as e:
                    row |= {"status": "failed", "score": "", "best_epoch": "", "error": str(e)}
                    self.log.warning(f"{name} failed: {e}")
            rows.append(row | {f"param:{key}": _yaml_value(v) for key, v in settings.items()})
            write_csv(os.path.join(self.out_dir, "trials.csv"), rows, FIELDS + [f"param:{p}" for p in settings])
        finished = [r for r in rows if r["status"] == "done"]
        if not finished:
            raise PpeyeError(f"every sweep trial failed: see {self.out_dir}/trials.csv")
        best = max(finished, key=lambda r: float(r["score"]))
        k = int(best["trial"].split("_")[1])
        record = {"metric": f"val_{self.metric}", "score": float(best["score"]), "trial": best["trial"],
                  "best_epoch": int(best["best_epoch"]), "run_dir": os.path.abspath(best["run_dir"]),
                  "params": {key: v for key, v in self.trials[k].items()},
                  "overrides": self.overrides(self.trials[k]), "trials": len(rows), "finished": len(finished)}
        with atomic_write(os.path.join(self.out_dir, "best_hparams.yaml")) as f:
            yaml.safe_dump(record, f, sort_keys=False)
        self.log.info(f"best: {best['trial']} validation {self.metric} {record['score']:.4f} with "
                      f"{' '.join(record['overrides'])} -> {self.out_dir}/best_hparams.yaml")
        return record
