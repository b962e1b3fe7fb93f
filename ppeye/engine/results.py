"""Figures over seeds: the comparison repeated with N training seeds on the same splits, then
summarised (``tools/compare.py --seeds N``, ``make results``).

One trained model is one draw: the same data and recipe with another seed (initialisation,
dropout, data order) can land elsewhere, and on a held-out centre it did, by more than the
interval of one run. So every neural figure is reported as a distribution over seeds.

``SeedRuns(cfg, out_dir, seeds).run()`` runs :class:`~ppeye.engine.compare.Comparison` once per
seed into ``<out_dir>/seed_<s>/`` (each a complete comparison: the model and every baseline
trained with ``seed: s`` and evaluated), then writes:

- ``seeds.csv``: per seed, split, contender and disease (and macro), the ROC-AUC with its
  interval and the model's AUC minus the contender's with its interval, as each run measured;
- ``results.csv`` / ``results.md``: per split, contender and disease, the ROC-AUC's mean, sd,
  min and max over seeds and its pooled interval (Rubin's rules: the runs' intervals from
  resampling people plus the spread between seeds, :func:`ppeye.metrics.pooling.over_seeds`); the
  same for the model minus each contender, with the number of seeds in which the model led; and
  per split what the weather branch adds (the model vs its patient-only baseline, pooled);
- ``results.json``: the same with the machine (platform, CPU count, threads, processes,
  Paddle version) and the wall time of every seed.

Resumable: a seed whose ``compare.json`` exists is read, not rerun; a seed interrupted midway
is run again from its start. ``seeds.json`` holds the fingerprint of the config (everything but
paths, logging and the seed) and those settings; a directory holding another config's seeds is
refused, naming the settings that differ. The day
encoder of ``pretrained`` (``tools/pretrain_days.py``) is shared by every seed: it does not
change with the head's seed, and the spread reported is that of everything trained after it.
"""
import copy
import json
import os
import platform
import time

import numpy as np

from ..core.config import config_differences
from ..core.errors import InputError
from ..core.io import atomic_write, digest, write_csv
from ..core.launch import process_count
from ..core.logger import get_logger
from ..core.paddle_env import import_paddle
from ..metrics import DISEASES
from ..metrics.pooling import over_seeds, se_from_interval
from .compare import Comparison
from .verdicts import REFERENCE, verdict

NOT_COMPUTATION = ("output_dir", "run_name", "seed", "weights", "log_iter", "use_vdl", "vdl_log_dir", "num_threads",
                   "device", "export", "explain", "simulate")
# nested settings that only change what is said or drawn (the decision curves' risks: not a ROC-AUC),
# or how the raw files are fetched (the CDS download), not what is computed from them
NOT_COMPUTATION_KEYS = (("ukb", "warn_unreadable_share"), ("evaluation", "decision_curve_risks"),
                        ("data", "download"))
# options added after seeds were run, at the value that does what their absence did: left out of
# the fingerprint at that value, so earlier seed directories of the same computation still count
ABSENT_MEANS = {("ukb", "validation"): "random", ("model", "backbone", "norm"): "batch", ("data", "window_shift_days"): 0,
                ("data", "store_packing"): "float32"}
SEED_COLUMNS = ["seed", "split", "contender", "disease", "roc_auc", "ci_low", "ci_high", "model_minus_contender",
                "diff_ci_low", "diff_ci_high"]
COLUMNS = ["split", "contender", "disease", "seeds", "roc_auc_mean", "roc_auc_sd", "roc_auc_min", "roc_auc_max",
           "roc_auc_ci_low", "roc_auc_ci_high", "diff_mean", "diff_sd", "diff_min", "diff_max", "diff_ci_low",
           "diff_ci_high", "seeds_model_ahead"]


def parse_seeds(spec, base):
    """``"3"`` -> 3 seeds from ``base`` (base, base+1, base+2); ``"0,1,2"`` -> those seeds."""
    text = str(spec).strip()
    try:
        seeds = [int(s) for s in text.split(",")] if "," in text else list(range(base, base + int(text)))
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or ("," not in text and int(text) < 1):
        raise InputError(f"--seeds takes a number of seeds (e.g. 3) or distinct seeds (e.g. 0,1,2), got {spec!r}")
    return seeds


def machine(processes="auto"):
    """What the figures were measured on: platform, CPUs, training processes and threads per
    process, Paddle version. Trainings under the launcher run each process with one thread on CPU."""
    count = process_count(processes)
    threads = "1" if count > 1 else os.environ.get("OMP_NUM_THREADS")     # the launcher's processes: 1 each
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "training_processes": count, "omp_num_threads": threads,
            "paddle": import_paddle().__version__, "python": platform.python_version()}


def computation(cfg):
    """The config's settings that change what a seed computes: everything but NOT_COMPUTATION."""
    data = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    out = {k: v for k, v in data.items() if k not in NOT_COMPUTATION}
    for section, key in NOT_COMPUTATION_KEYS:
        if isinstance(out.get(section), dict) and key in out[section]:
            out[section] = {k: v for k, v in out[section].items() if k != key}
    for (*sections, key), value in ABSENT_MEANS.items():
        out = _without(out, sections, key, value)
    return out


def _without(data, sections, key, value):
    """``data`` (nested dicts, copied where changed) without ``key`` under ``sections`` when it
    holds ``value``."""
    if not isinstance(data, dict):
        return data
    if not sections:
        return {k: v for k, v in data.items() if k != key} if key in data and data[key] == value else data
    head, *rest = sections
    if head not in data:
        return data
    return {**data, head: _without(data[head], rest, key, value)}


def settings_that_act(data):
    """``data`` without the settings that change nothing: a section whose ``enabled`` is false
    (its other keys are not read) and a leaf that is false or null (off, or unset). So a new
    option added to the configs switched off, or a switched-off section, does not make earlier
    runs of the same computation count as another config's."""
    if not isinstance(data, dict):
        return data
    if data.get("enabled") is False:
        return None
    out = {}
    for key, value in data.items():
        value = settings_that_act(value)
        if value is not None and value is not False and value != {}:
            out[key] = value
    return out


def canonical(data):
    """Numbers by value: ``30.0`` and ``30`` are one setting (a config that writes a whole number
    as a float does not make another computation).

    >>> canonical({"a": 30.0, "b": [0.5, 2.0], "c": True})
    {'a': 30, 'b': [0.5, 2], 'c': True}
    """
    if isinstance(data, dict):
        return {k: canonical(v) for k, v in data.items()}
    if isinstance(data, list):
        return [canonical(v) for v in data]
    if isinstance(data, float) and data.is_integer():
        return int(data)
    return data


def fingerprint(cfg):
    """The computation's identity: the settings that act (:func:`settings_that_act`), numbers by
    value. A config or the ``config`` a ``seeds.json`` saved (then judged by today's rules)."""
    return digest(settings_that_act(canonical(computation(cfg))))


def legacy_fingerprint(cfg):
    """The fingerprint as ppeye wrote it before ``settings_that_act`` (every setting counted):
    directories written then are still recognised."""
    return digest(computation(cfg))


class SeedRuns:
    """``SeedRuns(cfg, out_dir, seeds, baselines, processes, splits).run()``: one comparison per
    seed, then the summary over seeds; returns the summary rows."""

    def __init__(self, cfg, out_dir, seeds, baselines=None, processes="auto", splits=None, log=None):
        if cfg.get("weights"):
            raise InputError("--seeds trains the model once per seed: drop -o weights=... (it would be ignored)")
        self.cfg, self.out_dir, self.seeds = cfg, out_dir, list(seeds)
        self.baselines, self.processes, self.splits = baselines, processes, splits
        self.log = log or get_logger("ppeye.results")

    def _claim(self):
        """Record the config's fingerprint, or refuse a directory of another config's seeds."""
        path = os.path.join(self.out_dir, "seeds.json")
        mine = fingerprint(self.cfg)
        if os.path.isfile(path):
            saved = json.load(open(path))
            theirs = saved.get("fingerprint")
            same = theirs in (mine, legacy_fingerprint(self.cfg)) or (
                isinstance(saved.get("config"), dict) and fingerprint(saved["config"]) == mine)
            if not same:
                what = ""
                if isinstance(saved.get("config"), dict):
                    diff = config_differences(
                        settings_that_act(canonical(computation(saved["config"]))),
                        settings_that_act(canonical(json.loads(json.dumps(computation(self.cfg), default=str)))))
                    what = ("; the settings that differ (theirs -> this config): " + "; ".join(diff[:12])
                            + (f"; and {len(diff) - 12} more" if len(diff) > 12 else "")) if diff else ""
                raise InputError(f"{self.out_dir} holds seeds of another config (fingerprint {theirs}, this config "
                                 f"{mine}){what}: choose another --output_dir, or remove it to start again")
        os.makedirs(self.out_dir, exist_ok=True)
        with atomic_write(path) as f:
            json.dump({"fingerprint": mine, "baselines": self.baselines,
                       "config": json.loads(json.dumps(computation(self.cfg), default=str))}, f, indent=1)

    def run(self):
        self._claim()
        get_logger("ppeye.results", output_dir=self.out_dir)
        timings = {}
        for seed in self.seeds:
            seed_dir = os.path.join(self.out_dir, f"seed_{seed}")
            if os.path.isfile(os.path.join(seed_dir, "compare.json")):
                self.log.info(f"seed {seed}: done before ({seed_dir}/compare.json), read")
                continue
            t0 = time.time()
            cfg = copy.deepcopy(self.cfg)
            cfg["seed"] = seed
            self.log.info(f"seed {seed} ({self.seeds.index(seed) + 1} of {len(self.seeds)}): the comparison in {seed_dir}")
            Comparison(cfg, seed_dir, self.baselines, self.processes, splits=self.splits, log=self.log).run()
            timings[seed] = time.time() - t0
            with atomic_write(os.path.join(seed_dir, "seconds.json")) as f:
                json.dump({"seconds": timings[seed]}, f)
        return summarise(self.out_dir, self.seeds, float((self.cfg.get("evaluation") or {}).get("ci_level", 0.95)),
                         self.log, self.processes)


def _seed_rows(out_dir, seeds):
    rows = []
    for seed in seeds:
        saved = json.load(open(os.path.join(out_dir, f"seed_{seed}", "compare.json")))
        rows += [{"seed": seed} | {k: (np.nan if r.get(k) is None else r[k]) for k in SEED_COLUMNS[1:]}
                 for r in saved["rows"]]
    return rows


def summarise(out_dir, seeds, level=0.95, log=None, processes="auto"):
    """``seeds.csv``, ``results.csv``, ``results.md`` and ``results.json`` from the seeds' comparisons
    under ``out_dir``; returns the summary rows."""
    log = log or get_logger("ppeye.results")
    per_seed = _seed_rows(out_dir, seeds)
    keys = list(dict.fromkeys((r["split"], r["contender"], r["disease"]) for r in per_seed))
    rows = []
    for split, contender, disease in keys:
        runs = [r for r in per_seed if (r["split"], r["contender"], r["disease"]) == (split, contender, disease)]
        auc = over_seeds([r["roc_auc"] for r in runs], se_from_interval([r["ci_low"] for r in runs],
                                                                        [r["ci_high"] for r in runs], level), level)
        row = {"split": split, "contender": contender, "disease": disease, "seeds": auc["seeds"]}
        row |= {f"roc_auc_{k}": auc[k] for k in ("mean", "sd", "min", "max", "ci_low", "ci_high")}
        if contender != REFERENCE:
            diffs = [r["model_minus_contender"] for r in runs]
            d = over_seeds(diffs, se_from_interval([r["diff_ci_low"] for r in runs],
                                                   [r["diff_ci_high"] for r in runs], level), level)
            row |= {f"diff_{k}": d[k] for k in ("mean", "sd", "min", "max", "ci_low", "ci_high")}
            row["seeds_model_ahead"] = int(np.sum(np.asarray(diffs, float) > 0))
        rows.append(row)
    write_csv(os.path.join(out_dir, "seeds.csv"), per_seed, SEED_COLUMNS)
    write_csv(os.path.join(out_dir, "results.csv"), rows, COLUMNS)
    seconds = {}
    for seed in seeds:
        path = os.path.join(out_dir, f"seed_{seed}", "seconds.json")
        seconds[seed] = json.load(open(path))["seconds"] if os.path.isfile(path) else None
    info = {"seeds": seeds, "machine": machine(processes), "seconds": seconds, "ci_level": level}
    with atomic_write(os.path.join(out_dir, "results.json")) as f:
        json.dump(info | {"rows": [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
                                   for r in rows]}, f, indent=1, default=float)
    with atomic_write(os.path.join(out_dir, "results.md")) as f:
        f.write(markdown(rows, info))
    for r in rows:
        if r["disease"] == "macro" and r["contender"] in (REFERENCE, "patient_only"):
            log.info(f"{r['split']}: {r['contender']:<13} macro ROC-AUC {_spread(r, 'roc_auc')}"
                     + ("" if r["contender"] == REFERENCE else f"; model minus it {_spread(r, 'diff', sign=True)}"))
    return rows


def _f(v, sign=False):
    return "" if v is None or not np.isfinite(v) else (f"{v:+.3f}" if sign else f"{v:.3f}")


def _spread(r, what, sign=False):
    sd = f" ± {_f(r[f'{what}_sd'])}" if np.isfinite(r[f"{what}_sd"]) else ""
    return (f"{_f(r[f'{what}_mean'], sign)}{sd} (min {_f(r[f'{what}_min'], sign)}, max {_f(r[f'{what}_max'], sign)}; "
            f"pooled [{_f(r[f'{what}_ci_low'], sign)}, {_f(r[f'{what}_ci_high'], sign)}])")


def markdown(rows, info):
    """Per split: the macro ROC-AUC of each contender over seeds, and the model minus each."""
    m = info["machine"]
    secs = [s for s in info["seconds"].values() if s]
    lines = ["# ppeye results over seeds", "",
             f"Seeds {', '.join(map(str, info['seeds']))}; {m['platform']}, {m['cpu_count']} CPUs, trained in "
             f"{m['training_processes']} process(es) of {m['omp_num_threads']} thread(s), Paddle {m['paddle']}"
             + (f"; {np.mean(secs) / 60:.0f} min per seed" if secs else "") + ".",
             "Each cell: mean ± sd over seeds (min, max; pooled interval by Rubin's rules: the runs' "
             f"{info['ci_level']:.0%} intervals over people plus the spread between seeds).", ""]
    for split in dict.fromkeys(r["split"] for r in rows):
        at = [r for r in rows if r["split"] == split and r["disease"] == "macro"]
        lines += [f"## {split}", "", "| contender | macro ROC-AUC | model minus contender | seeds model ahead |",
                  "|---|---|---|---|"]
        for r in at:
            diff = "" if r["contender"] == REFERENCE else _spread(r, "diff", sign=True)
            ahead = "" if r["contender"] == REFERENCE else f"{r['seeds_model_ahead']} of {r['seeds']}"
            lines.append(f"| {r['contender']} | {_spread(r, 'roc_auc')} | {diff} | {ahead} |")
        per = [r for r in rows if r["split"] == split and r["contender"] == REFERENCE and r["disease"] in DISEASES]
        lines += ["", "The model per disease: " + ", ".join(f"{r['disease']} {_f(r['roc_auc_mean'])} ± "
                                                            f"{_f(r['roc_auc_sd'])}" for r in per) + "."]
        po = next((r for r in at if r["contender"] == "patient_only"), None)
        if po is not None and np.isfinite(po["diff_mean"]):
            kind, sentence = verdict(po["diff_mean"], po["diff_ci_low"], po["diff_ci_high"])
            lines.append(f"On {split}, pooled over seeds, " + (f"**{sentence}**" if kind == "below" else sentence) + ".")
        lines.append("")
    return "\n".join(lines)
