"""Evaluate trained weights on the validation and test splits and the held-out ones the cohort has
(``external``: unseen centres; ``period`` / ``period_2``: index dates after ``ukb.temporal_split``).

Thresholds for F1/precision/recall/Hamming loss are chosen on the validation split (per
disease, the F1-maximising probability) and applied unchanged to every split. For each split
the evaluator writes, under ``<run>/eval/`` (or ``output``):

- ``<split>_metrics.json`` / ``.csv``: every metric with its bootstrap interval;
- ``<split>_calibration.csv``: reliability bins per disease;
- ``<split>_roc.png``, ``<split>_pr.png``, ``<split>_calibration.png``;
- ``<split>_predictions.npz``: labels, probabilities and export row numbers (no ids), stamped
  with the SHA-256 of the weights and the fingerprint of the settings (``predict.prediction_identity``), so
  ``tools/export.py`` can take the validation split's from here instead of predicting it again;
- ``<split>_clinical.csv``: per disease ROC-AUC (DeLong interval), sensitivity at fixed
  specificities and specificity at fixed sensitivities (``evaluation.specificities`` /
  ``sensitivities``), Brier score, calibration intercept and slope (bootstrap intervals);
- ``<split>_confusion_matrix.csv``: per disease at the validation-chosen threshold;
- ``<split>_decision_curve.csv`` / ``.png``: net benefit vs treat-all / treat-none over
  ``evaluation.decision_thresholds`` [first, last, step], from the risks recalibrated on the
  validation split as ``evaluation.decision_curve_risks`` says (logistic by default; the figure's
  title and the CSV's ``risks`` column name it);
- ``<split>_subgroups.csv`` / ``.png``: ROC-AUC per subgroup (sex, age band, centre, season of
  the index date, missingness pattern) with DeLong intervals and a forest plot; a group whose
  interval excludes the overall AUC is flagged (``differs``);
- ``summary.json``: thresholds, the rule, the weights, and each split's headline numbers.

With a retrieval index saved in the run (``retrieval.enabled``), every split is also scored
with the retrieval blend and the files get a ``_retrieval`` twin; with
``evaluation.post_hoc_calibration`` (temperature | isotonic, fitted on the validation split's
predictions) a ``_calibrated`` twin (thresholds chosen again on calibrated validation).

Missing modalities: ``<split>_missingness.csv`` gives the metrics per missingness pattern
(complete cases, weather missing, each block of patient features missing, and their
combinations). With ``model.missing``, ``evaluation.drop_modality`` (default: weather and
patient) scores each split again as if that modality were missing for everyone
(``<split>_without_weather``, ``<split>_without_patient``).
"""
import json
import os
import re

import numpy as np

from .. import build_model, feature_blocks
from ..core.device import select_device
from ..core.errors import ConfigError, DataError, InputError
from ..core.io import atomic_write, save_npz, write_csv
from ..core.logger import get_logger
from ..core.paddle_env import import_paddle
from ..data.attributes import person_attributes
from ..data.dataset import OnsetDataset, shared_window_days
from ..metrics import (DISEASES, THRESHOLD_RULE, bootstrap_metrics, calibration_table, choose_thresholds,
                       multilabel_metrics)
from ..metrics.clinical import PostHocCalibrator, clinical_report, confusion_rows, net_benefit
from ..metrics.plots import decision_curve_figure, save_curves, save_figure
from ..metrics.subgroups import COLUMNS, forest_figure, subgroup_table
from ..retrieval import RetrievalIndex
from .checkpoint import load_weights, resolve, run_dir_of
from .predict import DROPPABLE, predict, prediction_identity

paddle = import_paddle()
SPLITS = ("val", "test", "external", "period", "period_2")
HELD_OUT = ("external", "period", "period_2")   # splits that exist only with ukb.external_centres / temporal_split
def split_available(cfg, split):
    """Whether the cohort has anyone in ``split`` (the external split exists only with
    ``ukb.external_centres``, the period splits only with ``ukb.temporal_split``)."""
    import pandas as pd

    path = os.path.join(cfg["data"]["work_dir"], "cohort.parquet")
    if not os.path.isfile(path):
        raise DataError(f"{path} does not exist: run tools/preprocess.py --stage ukb")
    return bool((pd.read_parquet(path, columns=["split"])["split"] == split).any())


def missingness_patterns(weather_present, tab_mask, blocks):
    """Per person, "complete" or what is missing ("weather missing", "block 1 missing", joined by
    " + "): weather absent, or every feature of a block unobserved."""
    parts = [np.where(np.asarray(weather_present) == 0, "weather missing", "")]
    observed = np.asarray(tab_mask) > 0
    for j, cols in enumerate(blocks):
        parts.append(np.where(~observed[:, cols].any(axis=1), f"block {j} missing", ""))
    if len(observed) and observed.shape[1]:
        parts.append(np.where(~observed.any(axis=1), "all features missing", ""))
    joined = [" + ".join(p for p in row if p) or "complete" for row in zip(*parts)]
    return np.asarray(joined, dtype=object)


def decision_grid(ec):
    """The decision-curve threshold probabilities of ``evaluation.decision_thresholds``."""
    spec = ec.get("decision_thresholds", (0.01, 0.5, 0.01))
    try:
        first, last, step = (float(v) for v in spec)
    except (TypeError, ValueError):
        first = last = step = float("nan")
    if not (0 < first <= last < 1 and step > 0):
        raise InputError(f"evaluation.decision_thresholds must be [first, last, step] with 0 < first <= last < 1 "
                         f"and step > 0, got {spec}")
    return np.round(np.arange(first, last + step / 2, step), 10)


def checkpoint_epoch(path):
    """The epoch, counted from 1 as the training log and VisualDL's ``epoch/`` curves count it, of
    a checkpoint directory ``epoch_NNNN`` (numbered from 0); 0 for weights without one. The step
    at which an evaluation is logged to VisualDL.

    >>> checkpoint_epoch("output/demo/checkpoints/epoch_0007"), checkpoint_epoch(None)
    (8, 0)
    """
    m = re.search(r"epoch_(\d+)", os.path.basename(os.path.normpath(path))) if path else None
    return int(m.group(1)) + 1 if m else 0


def decision_recalibration(ec, val_labels, val_probs):
    """The recalibration decision curves are drawn with (``evaluation.decision_curve_risks``, fitted
    on the validation split's risks of the same source): ``(calibrator or None, words for the
    figure and CSV)``. A net benefit at threshold t assumes risks that mean what they say; a model
    trained with class weights gives risks far above the prevalence, whose curve then lies on
    treat-all."""
    method = ec.get("decision_curve_risks", "logistic")
    if not method:
        return None, "risks as the model gives them (uncalibrated)"
    return (PostHocCalibrator(method).fit(val_labels, val_probs),
            f"risks recalibrated on the validation split ({method})")


class Reporter:
    """The files of one scored split (metrics with intervals, clinical statistics, curves,
    predictions, subgroups) for any source of probabilities: the model (:class:`Evaluator`) or a
    baseline (:mod:`ppeye.engine.compare`)."""

    def __init__(self, cfg, out_dir, log=None, vdl=None):
        self.cfg, self.out_dir, self.vdl = cfg, out_dir, vdl
        self.log = log or get_logger("ppeye.eval")

    def report_predictions(self, scored, source, extra=None):
        """``scored``: {split: (dataset, probabilities [N, 4])} with a "val" entry. Thresholds are
        chosen on val (:data:`THRESHOLD_RULE`) and every split gets its files, subgroups and
        missingness table; ``summary.json`` records ``source`` and ``extra``. Returns the summary."""
        ec = self.cfg.get("evaluation") or {}
        decision_grid(ec)
        if "val" not in scored:
            raise InputError(f"{source}: the validation split is needed to choose thresholds")
        os.makedirs(self.out_dir, exist_ok=True)
        blocks = feature_blocks(self.cfg)
        val_ds, val_probs = scored["val"]
        thresholds = choose_thresholds(val_ds.labels, val_probs)
        summary = {"source": source, "threshold_rule": THRESHOLD_RULE,
                   "thresholds": {"model": dict(zip(DISEASES, thresholds))}, "splits": {}} | (extra or {})
        decision = decision_recalibration(ec, val_ds.labels.astype(np.float64), val_probs)
        for split, (ds, probs) in scored.items():
            labels = ds.labels.astype(np.float64)
            summary["splits"][split] = self._report(split, ds, labels, probs, thresholds, ec, decision)
            summary["splits"][split] |= self._groups(split, ds, labels, probs, blocks, ec)
        with atomic_write(os.path.join(self.out_dir, "summary.json")) as f:
            json.dump(summary, f, indent=1)
        return summary

    def _groups(self, split, ds, labels, probs, blocks, ec):
        """``<split>_missingness.csv``, ``<split>_subgroups.csv`` / ``.png`` and
        ``<split>_leakage.csv``; their summary entries."""
        patterns = missingness_patterns(ds.weather_present, ds.tab_mask, blocks)
        return {"missingness": self._patterns(split, patterns, labels, probs),
                "subgroups_differing": self._subgroups(split, ds, patterns, labels, probs, ec),
                "leakage": self._leakage(split, ds, labels, probs, ec)}

    def _leakage(self, split, ds, labels, probs, ec):
        """``<split>_leakage.csv``: the split's people by how much of their window's (site, day)
        pairs lie in some training person's window (none / some / all days), each group's size,
        cases, macro ROC-AUC with its bootstrap interval and per-disease ROC-AUC; returns the rows.
        A random split within centres puts nearly everyone in "all days"; an unseen centre puts
        everyone in "no day"; a held-out period, its first weeks in "some"."""
        if getattr(self, "_train_set", None) is None:
            self._train_set = OnsetDataset(self.cfg, "train", log=self.log)
        shared = shared_window_days(self._train_set, ds)
        groups = {"no day shared with training": (shared == 0) & (ds.weather_present > 0),
                  "some days shared": (shared > 0) & (shared < ds.T),
                  "all days shared": shared == ds.T,
                  "no weather": ds.weather_present == 0}
        level = float(ec.get("ci_level", 0.95))
        rows = []
        for name, at in groups.items():
            row = {"group": name, "n": int(at.sum()), "cases": int(labels[at].any(axis=1).sum())}
            if at.sum() >= 2:
                m = bootstrap_metrics(labels[at], probs[at], n_boot=int(ec.get("bootstrap", 1000)), level=level,
                                      seed=int(self.cfg.get("seed", 0)))
                row |= {"macro_roc_auc": m["macro_roc_auc"]["value"], "ci_low": m["macro_roc_auc"]["ci_low"],
                        "ci_high": m["macro_roc_auc"]["ci_high"]} | {
                    f"{d}_roc_auc": m[f"{d}_roc_auc"]["value"] for d in DISEASES}
            rows.append(row)
        rows = [r for r in rows if r["n"] or r["group"] != "no weather"]
        self.log.info(f"{split}: windows vs the training people's site-days: " + "; ".join(
            f"{r['group']} n={r['n']}" + (f" macro ROC-AUC {r['macro_roc_auc']:.3f}" if "macro_roc_auc" in r else "")
            for r in rows))
        write_csv(os.path.join(self.out_dir, f"{split}_leakage.csv"), rows,
                  ["group", "n", "cases", "macro_roc_auc", "ci_low", "ci_high", *[f"{d}_roc_auc" for d in DISEASES]])
        return rows

    def _patterns(self, split, names, labels, probs):
        """Metrics per missingness pattern (``names``, one per person; ``<split>_missingness.csv``);
        returns the rows."""
        rows = []
        for pattern in sorted(set(names), key=lambda p: (p != "complete", p)):
            at = names == pattern
            m = multilabel_metrics(labels[at], probs[at])
            rows.append({"pattern": pattern, "n": int(at.sum()), "positives": int(labels[at].sum()),
                         "macro_roc_auc": m["macro_roc_auc"], "macro_pr_auc": m["macro_pr_auc"],
                         "macro_brier": m["macro_brier"]})
        write_csv(os.path.join(self.out_dir, f"{split}_missingness.csv"), rows,
                  ["pattern", "n", "positives", "macro_roc_auc", "macro_pr_auc", "macro_brier"])
        return rows

    def _clinical(self, name, labels, probs, thresholds, ec, level, decision=(None, "uncalibrated risks")):
        """``<name>_clinical.csv``, ``_confusion_matrix.csv``, ``_decision_curve.csv`` / ``.png`` (the
        curves from ``decision``'s recalibrated risks, named in both)."""
        out = self.out_dir
        rows = clinical_report(labels, probs, DISEASES, tuple(ec.get("specificities", (0.90, 0.95))),
                               tuple(ec.get("sensitivities", (0.90, 0.95))), n_boot=int(ec.get("bootstrap", 1000)),
                               level=level, seed=int(self.cfg.get("seed", 0)))
        write_csv(os.path.join(out, f"{name}_clinical.csv"), rows, ["disease", "metric", "value", "ci_low", "ci_high"])
        write_csv(os.path.join(out, f"{name}_confusion_matrix.csv"), confusion_rows(labels, probs, thresholds, DISEASES),
                  ["disease", "threshold", "tp", "fp", "tn", "fn", "sensitivity", "specificity", "ppv", "npv"])
        grid = decision_grid(ec)
        calibrator, risks = decision
        dc_probs = probs if calibrator is None else calibrator.transform(probs)
        curves, table = {}, []
        for j, d in enumerate(DISEASES):
            if 0 < labels[:, j].sum() < len(labels):
                c = curves[d] = net_benefit(labels[:, j], dc_probs[:, j], grid)
                table += [{"disease": d, "threshold": float(t), "model": float(m), "treat_all": float(a), "treat_none": 0.0,
                           "risks": risks} for t, m, a in zip(c["threshold"], c["model"], c["treat_all"])]
        write_csv(os.path.join(out, f"{name}_decision_curve.csv"), table,
                  ["disease", "threshold", "model", "treat_all", "treat_none", "risks"])
        save_figure(decision_curve_figure(curves, f"{name}: decision curves (n={len(labels)}), {risks}"),
                    os.path.join(out, f"{name}_decision_curve.png"))

    def _subgroups(self, split, ds, patterns, labels, probs, ec):
        """``<split>_subgroups.csv`` / ``.png``: AUC per group of each attribute; returns the flagged rows."""
        attrs = person_attributes(self.cfg, ds.cohort_pos)
        attrs["missingness"] = patterns
        level = float(ec.get("ci_level", 0.95))
        rows = subgroup_table(labels, probs, attrs, level=level, min_cases=int(ec.get("subgroup_min_cases", 5)))
        write_csv(os.path.join(self.out_dir, f"{split}_subgroups.csv"), rows, COLUMNS)
        save_figure(forest_figure(rows, f"{split}: ROC-AUC by subgroup ({level:.0%} DeLong intervals)"),
                    os.path.join(self.out_dir, f"{split}_subgroups.png"))
        flagged = [r for r in rows if r["differs"]]
        for r in flagged:
            self.log.info(f"{split}: subgroup {r['attribute']}={r['group']} {r['disease']} ROC-AUC {r['roc_auc']:.3f} "
                          f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] excludes the overall {r['overall_roc_auc']:.3f}")
        return [{k: r[k] for k in ("attribute", "group", "disease", "roc_auc", "overall_roc_auc")} for r in flagged]

    def _report(self, name, ds, labels, probs, thresholds, ec, decision=(None, "uncalibrated risks")):
        level = float(ec.get("ci_level", 0.95))
        m = bootstrap_metrics(labels, probs, thresholds, n_boot=int(ec.get("bootstrap", 1000)), level=level,
                              seed=int(self.cfg.get("seed", 0)))
        cal = calibration_table(labels, probs, int(ec.get("calibration_bins", 10)),
                                ec.get("calibration_strategy", "quantile"))
        out = self.out_dir
        with atomic_write(os.path.join(out, f"{name}_metrics.json")) as f:
            json.dump({"split": name, "ci_level": level, "excluded": ds.excluded, "metrics": m}, f, indent=1)
        write_csv(os.path.join(out, f"{name}_metrics.csv"),
                   [{"metric": k, **v} for k, v in m.items()], ["metric", "value", "ci_low", "ci_high", "replicates"])
        write_csv(os.path.join(out, f"{name}_calibration.csv"), cal,
                   ["disease", "bin", "mean_predicted", "observed_rate", "count"])
        save_npz(os.path.join(out, f"{name}_predictions.npz"), labels=labels, probs=probs, rows=ds.rows,
                 **{k: np.array(v) for k, v in (getattr(self, "identity", None) or {}).items()})
        self._clinical(name, labels, probs, thresholds, ec, level, decision)
        images = {}
        for kind in ("roc", "pr", "calibration"):
            images[kind] = save_curves(kind, labels, probs, os.path.join(out, f"{name}_{kind}.png"),
                                       f"{name} (n={len(labels)})", calibration=cal, image=self.vdl is not None)
        if self.vdl is not None:
            self.vdl.eval_report(name, labels, probs, m, images, step=checkpoint_epoch(getattr(self, "checkpoint", None)))
        head = m["macro_roc_auc"]
        ci = "" if head["ci_low"] is None else f" [{head['ci_low']:.3f}, {head['ci_high']:.3f}]"
        per = ", ".join(f"{d} {m[f'{d}_roc_auc']['value']:.3f}" for d in DISEASES)
        self.log.info(f"{name}: n={len(labels)}, macro ROC-AUC {head['value']:.3f}{ci}, PR-AUC "
                      f"{m['macro_pr_auc']['value']:.3f}, Brier {m['macro_brier']['value']:.4f} ({per})")
        return {k: m[k] for k in ("n", "macro_roc_auc", "macro_pr_auc", "micro_roc_auc", "macro_f1",
                                   "macro_brier", "hamming_loss")} | {f"{d}_roc_auc": m[f"{d}_roc_auc"] for d in DISEASES}


class Evaluator(Reporter):
    """``Evaluator(cfg, weights).run(splits)``: metrics, intervals, curves, files."""

    def __init__(self, cfg, weights=None, model=None, out_dir=None, log=None, vdl=None):
        self.cfg = cfg
        weights = weights or cfg.get("weights")
        if model is None and not weights:
            raise InputError("no weights to evaluate: pass -o weights=<run directory or checkpoint>")
        self.log = log or get_logger("ppeye.eval")
        select_device(cfg.get("device", "auto"))
        self.identity = None                  # only weights loaded here are known to be the model's
        if model is None:
            model = build_model(cfg)
            self.checkpoint = load_weights(model, weights)
            self.identity = prediction_identity(cfg, self.checkpoint)
        else:
            self.checkpoint = resolve(weights) if weights else None
        self.model = model
        run = run_dir_of(self.checkpoint) if self.checkpoint else cfg["output_dir"]
        self.out_dir = out_dir or os.path.join(run, "eval")
        self.run_dir = run
        self.vdl = vdl
        self.retrieval = None
        rc = cfg.get("retrieval") or {}
        if rc.get("enabled"):
            index_dir = os.path.join(run, "retrieval")
            if os.path.isdir(index_dir):
                self.retrieval = RetrievalIndex.load(index_dir)
            else:
                self.log.warning(f"retrieval.enabled but {index_dir} does not exist (built at the end of "
                                 f"training): evaluating the model alone")

    def _predict(self, split):
        ds = OnsetDataset(self.cfg, split)
        pred = predict(self.model, ds, self.cfg, with_embeddings=self.retrieval is not None,
                       also_without=self._dropped())
        return ds, pred

    def _dropped(self):
        """The modalities each split is also scored without (``evaluation.drop_modality``, for a
        model with ``model.missing``), predicted in the same pass as the split itself."""
        if getattr(self.model, "missing", None) is None:
            return ()
        wanted = tuple((self.cfg.get("evaluation") or {}).get("drop_modality", DROPPABLE) or ())
        unknown = [m for m in wanted if m not in DROPPABLE]
        if unknown:
            raise ConfigError(f"evaluation.drop_modality lists {', '.join(map(repr, unknown))}: each entry must be "
                              f"one of {', '.join(DROPPABLE)}")
        return wanted

    def run(self, splits="all"):
        ec = self.cfg.get("evaluation") or {}
        wanted = list(SPLITS) if splits == "all" else [splits] if isinstance(splits, str) else list(splits)
        for s in wanted:
            if s not in SPLITS:
                raise InputError(f"unknown split {s!r}: choose from {', '.join(SPLITS)} or all")
        decision_grid(ec)                     # bad settings fail before anything is written

        blocks = feature_blocks(self.cfg)
        os.makedirs(self.out_dir, exist_ok=True)
        val_ds, val_pred = self._predict("val")
        thresholds = choose_thresholds(val_pred.labels, val_pred.probs)
        variants = {"model": (thresholds, None)}
        decision = {"model": decision_recalibration(ec, val_pred.labels, val_pred.probs)}
        if self.retrieval is not None:
            blended = self.retrieval.blend(val_pred.probs, val_pred.embeddings)
            variants["retrieval"] = (choose_thresholds(val_pred.labels, blended), self.retrieval.params)
            decision["retrieval"] = decision_recalibration(ec, val_pred.labels, blended)
        method = ec.get("post_hoc_calibration")
        if method:
            calibrator = PostHocCalibrator(method).fit(val_pred.labels, val_pred.probs)
            variants["calibrated"] = (choose_thresholds(val_pred.labels, calibrator.transform(val_pred.probs)),
                                      calibrator)
            decision["calibrated"] = (None, f"risks calibrated on the validation split ({method})")
        summary = {"weights": self.checkpoint, "threshold_rule": THRESHOLD_RULE,
                   "decision_curve_risks": decision["model"][1],
                   "thresholds": {"model": dict(zip(DISEASES, thresholds))}, "splits": {}}
        if self.retrieval is not None:
            summary["thresholds"]["retrieval"] = dict(zip(DISEASES, variants["retrieval"][0]))
            summary["retrieval"] = self.retrieval.params
        if method:
            summary["thresholds"]["calibrated"] = dict(zip(DISEASES, variants["calibrated"][0]))
            summary["post_hoc_calibration"] = {"method": method, "fitted_on": "val"} | (
                {"temperature": dict(zip(DISEASES, calibrator.params))} if method == "temperature" else {})
        for split in wanted:
            if split == "val":
                ds, pred = val_ds, val_pred
            elif split in HELD_OUT and splits == "all" and not split_available(self.cfg, split):
                continue
            else:
                ds, pred = self._predict(split)
            for variant, (thr, extra) in variants.items():
                if variant == "model":
                    probs = pred.probs
                elif variant == "calibrated":
                    probs = extra.transform(pred.probs)
                else:
                    probs = self.retrieval.blend(pred.probs, pred.embeddings)
                name = split if variant == "model" else f"{split}_{variant}"
                summary["splits"][name] = self._report(name, ds, pred.labels, probs, thr, ec, decision[variant])
            summary["splits"][split] |= self._groups(split, ds, pred.labels, pred.probs, blocks, ec)
            for modality in self._dropped():
                name = f"{split}_without_{modality}"
                summary["splits"][name] = self._report(name, ds, pred.labels, pred.without[modality], thresholds, ec,
                                                       (None, f"uncalibrated risks without the {modality}"))
        with atomic_write(os.path.join(self.out_dir, "summary.json")) as f:
            json.dump(summary, f, indent=1)
        return summary
