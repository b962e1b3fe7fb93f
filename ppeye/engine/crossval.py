"""Internal-external cross-validation by centre (``tools/compare.py --cv centres``).

People of one centre share weather days, so a random split lets a model remember the training
weather; a held-out centre measures transfer. One held-out centre is one draw, so every centre
of ``data.sites`` is held out in turn. Fold ``<centre>`` is the config with
``ukb.external_centres: [<centre>]`` and its own work directory
``<out_dir>/fold_<centre>/work`` (the cohort split and the imputation fitted on the fold's training
people; ``era5.zarr`` is the config's, linked, since the weather does not depend on the split),
compared over seeds (:class:`~ppeye.engine.results.SeedRuns`) in ``<out_dir>/fold_<centre>/``.

Then, on each fold's held-out centre (the ``external`` split):

- ``cv_folds.csv``: per fold, contender and disease (and macro), n, cases, the ROC-AUC over seeds
  (mean and pooled interval) and the model minus the contender (mean and pooled interval);
- ``cv_pooled.csv``: per contender and disease, the random-effects (DerSimonian-Laird) pooled
  ROC-AUC and pooled model-minus-contender difference over the centres, with intervals, tau^2,
  Cochran's Q (p) and I^2 (:func:`ppeye.metrics.pooling.random_effects`);
- ``cv.md``: both as tables, and in words whether the model beats its patient-only baseline on
  unseen centres.

The ``pretrained`` day encoder, when the config has one, is shared by every fold (it was trained
on the weather alone, no label; the log names the centres whose weather it saw). Folds are
resumable as the seeds are: a fold whose seeds are done is read, not rerun.
"""
import copy
import os

import numpy as np

from ..core.errors import ConfigError
from ..core.io import atomic_write, write_csv
from ..core.logger import get_logger
from ..data.ukb.centres import resolve_sites
from ..data.ukb.cohort import build_cohort
from ..data.ukb.impute import impute_cohort
from ..metrics import DISEASES
from ..metrics.pooling import random_effects, se_from_interval
from .verdicts import REFERENCE, verdict
from .results import SeedRuns

FOLD_COLUMNS = ["centre", "contender", "disease", "n_seeds", "roc_auc", "ci_low", "ci_high", "diff", "diff_ci_low",
                "diff_ci_high"]
POOLED_COLUMNS = ["contender", "disease", "centres", "roc_auc", "roc_auc_ci_low", "roc_auc_ci_high", "roc_auc_tau2",
                  "roc_auc_i2", "diff", "diff_ci_low", "diff_ci_high", "diff_tau2", "diff_q", "diff_q_p", "diff_i2",
                  "centres_model_ahead"]


def fold_config(cfg, centre, work_dir):
    """``cfg`` with ``centre`` held out whole and the fold's own work directory."""
    fold = copy.deepcopy(cfg)
    fold["ukb"]["external_centres"] = [centre]
    fold["data"]["work_dir"] = work_dir
    return fold


def prepare_fold(cfg, fold_cfg, log):
    """The fold's cohort and imputation (the weather store linked from the config's work dir)."""
    work = fold_cfg["data"]["work_dir"]
    store = os.path.abspath(os.path.join(cfg["data"]["work_dir"], "era5.zarr"))
    if not os.path.isdir(store):
        raise ConfigError(f"{store} does not exist: run tools/preprocess.py --stage era5 first")
    os.makedirs(work, exist_ok=True)
    link = os.path.join(work, "era5.zarr")
    if not os.path.lexists(link):
        os.symlink(store, link)
    if not os.path.isfile(os.path.join(work, "cohort_imputed.parquet")):
        build_cohort(fold_cfg, log=log)
        impute_cohort(fold_cfg)


class CentreFolds:
    """``CentreFolds(cfg, out_dir, seeds, baselines, processes).run()``: every centre held out in
    turn, then the pooled comparison; returns ``(fold_rows, pooled_rows)``."""

    def __init__(self, cfg, out_dir, seeds, baselines=None, processes="auto", log=None):
        self.centres = [c.name for c in resolve_sites(cfg["data"]["sites"])]
        if len(self.centres) < 2:
            raise ConfigError(f"cross-validation by centre needs at least 2 centres in data.sites, got {self.centres}")
        if cfg["ukb"].get("external_centres"):
            get_logger("ppeye.cv").info(f"--cv centres replaces ukb.external_centres {cfg['ukb']['external_centres']} "
                                        f"with each centre in turn")
        self.cfg, self.out_dir, self.seeds = cfg, out_dir, list(seeds)
        self.baselines, self.processes = baselines, processes
        self.log = log or get_logger("ppeye.cv")

    def run(self):
        os.makedirs(self.out_dir, exist_ok=True)
        get_logger("ppeye.cv", output_dir=self.out_dir)
        if self.cfg.get("pretrained"):
            self.log.info(f"every fold starts from the day encoder {self.cfg['pretrained']} (trained on the weather "
                          f"alone; it saw the weather of the centres its own config trained on)")
        fold_rows = []
        for k, centre in enumerate(self.centres, 1):
            fold_dir = os.path.join(self.out_dir, f"fold_{centre}")
            fold_cfg = fold_config(self.cfg, centre, os.path.join(fold_dir, "work"))
            self.log.info(f"fold {k} of {len(self.centres)}: {centre} held out ({fold_dir})")
            prepare_fold(self.cfg, fold_cfg, self.log)
            rows = SeedRuns(fold_cfg, fold_dir, self.seeds, self.baselines, self.processes, splits=["external"],
                            log=self.log).run()
            fold_rows += [fold_row(centre, r) for r in rows if r["split"] == "external"]
        level = float((self.cfg.get("evaluation") or {}).get("ci_level", 0.95))
        pooled = pool_folds(fold_rows, level)
        write_csv(os.path.join(self.out_dir, "cv_folds.csv"), fold_rows, FOLD_COLUMNS)
        write_csv(os.path.join(self.out_dir, "cv_pooled.csv"), pooled, POOLED_COLUMNS)
        with atomic_write(os.path.join(self.out_dir, "cv.md")) as f:
            f.write(markdown(fold_rows, pooled, self.seeds, level))
        for r in pooled:
            if r["disease"] == "macro" and r["contender"] != REFERENCE:
                self.log.info(f"unseen centres, pooled: model minus {r['contender']} {r['diff']:+.3f} "
                              f"[{r['diff_ci_low']:+.3f}, {r['diff_ci_high']:+.3f}], I^2 {r['diff_i2']:.2f}")
        return fold_rows, pooled


def fold_row(centre, r):
    """A fold's summary row (:mod:`ppeye.engine.results`) as a ``cv_folds.csv`` row."""
    return {"centre": centre, "contender": r["contender"], "disease": r["disease"], "n_seeds": r["seeds"],
            "roc_auc": r["roc_auc_mean"], "ci_low": r["roc_auc_ci_low"], "ci_high": r["roc_auc_ci_high"],
            "diff": r.get("diff_mean", np.nan), "diff_ci_low": r.get("diff_ci_low", np.nan),
            "diff_ci_high": r.get("diff_ci_high", np.nan)}


def pool_folds(fold_rows, level=0.95):
    """Random-effects pooling over the centres, per contender and disease (``cv_pooled.csv`` rows).
    A fold where a disease has no interval (one class at that centre) is left out of its pooling."""
    out = []
    for contender, disease in dict.fromkeys((r["contender"], r["disease"]) for r in fold_rows):
        at = [r for r in fold_rows if (r["contender"], r["disease"]) == (contender, disease)]
        auc = random_effects([r["roc_auc"] for r in at],
                             se_from_interval([r["ci_low"] for r in at], [r["ci_high"] for r in at], level), level)
        row = {"contender": contender, "disease": disease, "centres": auc["k"], "roc_auc": auc["pooled"],
               "roc_auc_ci_low": auc["ci_low"], "roc_auc_ci_high": auc["ci_high"], "roc_auc_tau2": auc["tau2"],
               "roc_auc_i2": auc["i2"]}
        if contender != REFERENCE:
            d = random_effects([r["diff"] for r in at], se_from_interval([r["diff_ci_low"] for r in at],
                                                                         [r["diff_ci_high"] for r in at], level), level)
            row |= {"diff": d["pooled"], "diff_ci_low": d["ci_low"], "diff_ci_high": d["ci_high"], "diff_tau2": d["tau2"],
                    "diff_q": d["q"], "diff_q_p": d["q_p"], "diff_i2": d["i2"],
                    "centres_model_ahead": int(np.sum(np.asarray([r["diff"] for r in at], float) > 0))}
        out.append(row)
    return out


def _f(v, sign=False):
    return "" if v is None or not np.isfinite(v) else (f"{v:+.3f}" if sign else f"{v:.3f}")


def markdown(fold_rows, pooled, seeds, level):
    centres = list(dict.fromkeys(r["centre"] for r in fold_rows))
    names = list(dict.fromkeys(r["contender"] for r in fold_rows))
    at = {(r["centre"], r["contender"]): r for r in fold_rows if r["disease"] == "macro"}
    lines = ["# Internal-external cross-validation by centre", "",
             f"Each centre held out in turn; seeds {', '.join(map(str, seeds))}; macro ROC-AUC on the held-out centre "
             f"(mean over seeds [pooled {level:.0%} interval]).", "",
             "| held-out centre | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for c in centres:
        lines.append(f"| {c} | " + " | ".join(
            f"{_f(at[c, n]['roc_auc'])} [{_f(at[c, n]['ci_low'])}, {_f(at[c, n]['ci_high'])}]" if (c, n) in at else ""
            for n in names) + " |")
    lines += ["", "Pooled over centres (random effects, DerSimonian-Laird):", "",
              "| contender | macro ROC-AUC [CI] | model minus contender [CI] | I^2 of the difference | centres model ahead |",
              "|---|---|---|---|---|"]
    for r in (r for r in pooled if r["disease"] == "macro"):
        diff = "" if r["contender"] == REFERENCE else f"{_f(r['diff'], True)} [{_f(r['diff_ci_low'], True)}, " \
                                                      f"{_f(r['diff_ci_high'], True)}]"
        i2 = "" if r["contender"] == REFERENCE else _f(r["diff_i2"])
        ahead = "" if r["contender"] == REFERENCE else f"{r['centres_model_ahead']} of {r['centres']}"
        lines.append(f"| {r['contender']} | {_f(r['roc_auc'])} [{_f(r['roc_auc_ci_low'])}, {_f(r['roc_auc_ci_high'])}] "
                     f"| {diff} | {i2} | {ahead} |")
    po = next((r for r in pooled if r["disease"] == "macro" and r["contender"] == "patient_only"), None)
    if po is not None and np.isfinite(po["diff"]):
        kind, sentence = verdict(po["diff"], po["diff_ci_low"], po["diff_ci_high"])
        lines += ["", "On unseen centres, pooled: " + (f"**{sentence}**" if kind == "below" else sentence) + "."]
    per = [r for r in pooled if r["contender"] == REFERENCE and r["disease"] in DISEASES]
    lines += ["", "The model per disease, pooled: " + ", ".join(f"{r['disease']} {_f(r['roc_auc'])}" for r in per) + ".",
              ""]
    return "\n".join(lines)
