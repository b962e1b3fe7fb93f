"""The model against its baselines on the same people, in one table (``tools/compare.py``).

Contenders (``compare.baselines``):

- ``patient_only``: OnsetNet with ``model.weather_branch: false`` (TabM and the fusion alone);
- ``weather_only``: OnsetNet with ``model.patient_branch: false``;
- ``xgboost``: gradient-boosted trees on the raw patient features (NaN where unobserved);
- ``logistic``: L2 logistic regression on the standardised imputed patient features;
- ``climate``: L2 logistic regression on per-variable window means and anomalies
  (:class:`~ppeye.baselines.ClimateFeatures`);
- ``dlnm``: a distributed-lag non-linear model of one variable's daily anomaly over the window's
  lags (``compare.dlnm``), adjusted for age, sex, season and centre, with its lag-response curves
  (``<out>/dlnm/lag_response.csv`` / ``.png``; :mod:`ppeye.baselines.dlnm`);
- ``late_fusion``: L2 logistic regression on the weather-only model's weather embedding
  concatenated with the patient-only model's patient embedding (per-person features as
  ``tools/extract.py --people`` writes them), so it needs those two runs.

Every contender is fitted on the training split, tuned and thresholded on validation, and
scored by the same :class:`~ppeye.engine.evaluator.Reporter` (all of ``tools/eval.py``'s
files) under ``<out>/<contender>/``. The comparison reads each contender's saved
``<split>_predictions.npz``; contenders scored on other people or other labels are refused.
For each split (test, and external when the cohort has one) ``compare_<split>.csv`` holds, per
contender and disease (and the macro average), the ROC-AUC with its 95% interval (DeLong; the
macro average by paired bootstrap) and the model's AUC minus the contender's with the interval
and p-value of DeLong's test; ``compare.md`` is the same as Markdown tables.
"""
import json
import os

import numpy as np

from ..baselines import ClimateFeatures, dlnm, fit_logistic, fit_xgboost, patient_features
from ..baselines.features import box_slices
from ..baselines.models import C_GRID
from ..core.config import load_yaml
from ..core.errors import DataError, InputError
from ..core.io import atomic_write, write_csv
from ..core.logger import get_logger
from ..data.dataset import OnsetDataset
from ..metrics import DISEASES
from ..metrics.comparison import COLUMNS, compare_table, load_predictions
from ..metrics.plots import save_figure
from .checkpoint import resolve, run_dir_of
from .evaluator import SPLITS, Evaluator, Reporter, split_available
from .features import extract_people
from .runs import train_variant
from .verdicts import REFERENCE, weather_verdicts

NEURAL = {"patient_only": ["model.weather_branch=false"], "weather_only": ["model.patient_branch=false"]}
CLASSICAL = ("xgboost", "logistic", "climate", "dlnm")
BASELINES = (*NEURAL, *CLASSICAL, "late_fusion")


def single_modality_overrides(cfg):
    """What any one-branch variant of ``cfg`` drops: missing-modality handling (``model.missing``
    needs both branches; with one there is no modality to drop)."""
    return ["model.missing.enabled=false"] if (cfg["model"].get("missing") or {}).get("enabled") else []


def weather_only_overrides(cfg):
    """What a weather-only variant of ``cfg`` drops: ``model.missing`` and the patient offset (a
    regression on the patient features it does not have)."""
    out = single_modality_overrides(cfg)
    if (cfg["model"].get("patient_offset") or {}).get("enabled"):
        out.append("model.patient_offset.enabled=false")
    return out


def patient_only_overrides(cfg):
    """What a patient-only variant of ``cfg`` drops: the frozen-ResNet stage and its cache (it has no
    ResNet), a ``pretrained`` day encoder (``tools/pretrain_days.py``: nothing in it for a model
    without the weather branch; a contrastive run's patient encoder is kept), ``model.missing`` and
    the weather columns of the patient offset (its patient columns stay: the baseline is the same
    regression on the patient features with a network residual on it)."""
    out = single_modality_overrides(cfg)
    if ((cfg["model"].get("patient_offset") or {}).get("weather") or {}).get("enabled"):
        out.append("model.patient_offset.weather.enabled=false")
    ts = cfg["train"].get("two_stage") or {}
    if ts.get("frozen_epochs"):
        out.append("train.two_stage.frozen_epochs=0")
    if ts.get("cache"):
        out.append("train.two_stage.cache=null")
    pre = cfg.get("pretrained")
    if pre and os.path.isfile(os.path.join(pre, "config.yaml")):
        if (load_yaml(os.path.join(pre, "config.yaml")).get("model") or {}).get("type") != "ContrastivePretrainer":
            out.append("pretrained=null")
    return out


def _fmt(v, digits=3):
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def markdown(rows, split, reference=REFERENCE):
    """Two Markdown tables: ROC-AUC [95% CI] per contender and disease; the reference minus each
    contender [95% CI] with DeLong's p (macro: paired bootstrap)."""
    names = list(dict.fromkeys(r["contender"] for r in rows))
    cols = [*DISEASES, "macro"]
    at = {(r["contender"], r["disease"]): r for r in rows}
    n = rows[0]["n"] if rows else 0
    lines = [f"### {split} (n = {n})", "", "| contender | " + " | ".join(cols) + " |",
             "|---|" + "---|" * len(cols)]
    for name in names:
        cells = [f"{_fmt(at[name, c]['roc_auc'])} [{_fmt(at[name, c]['ci_low'])}, {_fmt(at[name, c]['ci_high'])}]"
                 for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"{reference} minus contender, {split}: difference [95% CI], p", "",
              "| contender | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name in names:
        if name == reference:
            continue
        cells = []
        for c in cols:
            r = at[name, c]
            d = r["model_minus_contender"]
            p = r["p_value"]
            p = "p < 0.001" if p < 0.001 else f"p {_fmt(p)}"
            cells.append("" if np.isnan(d) else f"{d:+.3f} [{r['diff_ci_low']:+.3f}, {r['diff_ci_high']:+.3f}], {p}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_comparison(eval_dirs, out_dir, splits, level=0.95, n_boot=1000, seed=0, log=None, reference=REFERENCE):
    """``compare_<split>.csv``, ``compare.md`` and ``compare.json`` under ``out_dir`` from the
    contenders' evaluation directories ({name: dir}, ``reference`` among them); returns the rows.
    Every split's predictions are read and checked before anything is written."""
    log = log or get_logger("ppeye.compare")
    tables = {}
    for split in splits:
        preds = {name: load_predictions(d, split) for name, d in eval_dirs.items()}
        tables[split] = compare_table(preds, split, level, n_boot, seed, reference)
    os.makedirs(out_dir, exist_ok=True)
    all_rows, text = [], ["# ppeye comparison", ""]
    for split, rows in tables.items():
        write_csv(os.path.join(out_dir, f"compare_{split}.csv"), rows, COLUMNS)
        text.append(markdown(rows, split, reference))
        all_rows += rows
        for r in rows:
            if r["disease"] == "macro":
                diff = "" if r["contender"] == reference else (
                    f", {reference} minus it {r['model_minus_contender']:+.3f} [{r['diff_ci_low']:+.3f}, "
                    f"{r['diff_ci_high']:+.3f}]")
                log.info(f"{split}: {r['contender']:<13} macro ROC-AUC {r['roc_auc']:.3f} "
                         f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]{diff}")
    verdicts = weather_verdicts(all_rows, reference)
    if verdicts:
        text += ["## What the weather branch adds (macro ROC-AUC, the model minus its patient-only baseline)", ""]
        for split, (kind, sentence) in verdicts.items():
            text.append(f"- {split}: {'**' + sentence + '**' if kind == 'below' else sentence}")
            (log.warning if kind == "below" else log.info)(f"{split}: {sentence}")
        text.append("")
    with atomic_write(os.path.join(out_dir, "compare.md")) as f:
        f.write("\n".join(text))
    with atomic_write(os.path.join(out_dir, "compare.json")) as f:
        json.dump({"contenders": {k: os.path.abspath(v) for k, v in eval_dirs.items()}, "reference": reference,
                   "splits": list(splits),
                   "ci_level": level, "bootstrap": int(n_boot),
                   "weather_branch": {k: {"verdict": v[0], "text": v[1]} for k, v in verdicts.items()},
                   "rows": [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
                            for r in all_rows]}, f, indent=1, default=float)
    return all_rows


class Comparison:
    """``Comparison(cfg, out_dir).run()``: train/fit and evaluate every contender, then compare.

    ``cfg["weights"]`` (a trained run) is the model; without it the model is trained too."""

    def __init__(self, cfg, out_dir, baselines=None, processes="auto", splits=None, log=None):
        cc = cfg.get("compare") or {}
        self.baselines = list(dict.fromkeys(baselines if baselines is not None else cc.get("baselines", BASELINES)))
        unknown = sorted(set(self.baselines) - set(BASELINES))
        if unknown:
            raise InputError(f"unknown baselines {unknown}: choose from {', '.join(BASELINES)}")
        if "late_fusion" in self.baselines:
            for need in NEURAL:        # late fusion stacks the two single-modality models
                if need not in self.baselines:
                    self.baselines.insert(0, need)
        self.cfg, self.cc, self.out_dir, self.processes = cfg, cc, out_dir, processes
        self.log = log or get_logger("ppeye.compare")
        self.seed = int(cfg.get("seed", 0))
        self.splits = splits

        self.c_grid = cc.get("logistic_c", C_GRID)
        if "dlnm" in self.baselines:
            check_dlnm_settings(cc.get("dlnm") or {})

    def run(self):
        present = [s for s in SPLITS if split_available(self.cfg, s)]
        splits = self.splits or [s for s in present if s != "val"]
        absent = sorted(set(splits) - set(present))
        if absent:
            raise InputError(f"splits {absent} are not in the cohort (it has {present})")
        get_logger("ppeye.compare", output_dir=self.out_dir)          # log.txt beside the table
        eval_dirs = {REFERENCE: self._model(splits)}
        runs = {}
        for name in self.baselines:
            if name in NEURAL:
                runs[name], eval_dirs[name] = self._neural(name)
        if any(b in CLASSICAL or b == "late_fusion" for b in self.baselines):
            data = self._datasets()
            for name in self.baselines:
                if name in CLASSICAL:
                    eval_dirs[name] = self._classical(name, data)
                elif name == "late_fusion":
                    eval_dirs[name] = self._late_fusion(data, runs)
        ec = self.cfg.get("evaluation") or {}
        return write_comparison(eval_dirs, self.out_dir, splits, float(ec.get("ci_level", 0.95)),
                                int(ec.get("bootstrap", 1000)), self.seed, self.log)

    def _evaluate(self, cfg, weights, out_dir):
        """Every split, or with ``splits`` given (a fold of ``--cv``) only val and those: the figures
        of those splits are the same either way (thresholds, calibration and the retrieval mix come
        from val), at a fraction of the time."""
        Evaluator(cfg, weights=weights, out_dir=out_dir, log=self.log).run(["val", *self.splits] if self.splits else "all")
        return out_dir

    def _model(self, splits):
        """The reference: the given weights, evaluated (unless the run's eval/ already holds
        these weights' predictions for ``splits``), or a model trained here."""
        weights = self.cfg.get("weights")
        if not weights:
            run_dir, cfg = train_variant(self.cfg, self.out_dir, REFERENCE, processes=self.processes, log=self.log)
            return self._evaluate(cfg, run_dir, os.path.join(run_dir, "eval"))
        ckpt = resolve(weights)
        eval_dir = os.path.join(run_dir_of(ckpt), "eval")
        try:
            saved = json.load(open(os.path.join(eval_dir, "summary.json"))).get("weights")
            done = bool(saved) and os.path.abspath(saved) == os.path.abspath(ckpt) and all(
                os.path.isfile(os.path.join(eval_dir, f"{s}_predictions.npz")) for s in ("val", *splits))
        except (OSError, ValueError):
            done = False
        if done:
            self.log.info(f"model: using the evaluation of {ckpt} in {eval_dir}")
            return eval_dir
        return self._evaluate(self.cfg, weights, eval_dir)

    def _neural(self, name):
        extra = patient_only_overrides(self.cfg) if name == "patient_only" else weather_only_overrides(self.cfg)
        run_dir, cfg = train_variant(self.cfg, self.out_dir, name, NEURAL[name] + ["retrieval.enabled=false"] + extra,
                                     processes=self.processes, log=self.log)
        return (run_dir, cfg), self._evaluate(cfg, run_dir, os.path.join(run_dir, "eval"))

    def _datasets(self):
        names = ["train"] + [s for s in SPLITS if split_available(self.cfg, s) and (not self.splits or s == "val"
                                                                                     or s in self.splits)]
        return {s: OnsetDataset(self.cfg, s, log=self.log) for s in names}

    def _fit_and_report(self, name, inputs, data, fit=None):
        """Fit on train, tune on val (``fit(X_train, Y_train, X_val, Y_val)``; default the L2
        logistic regression), score every split."""
        if fit is None:
            def fit(*a):
                return fit_logistic(*a, c_grid=self.c_grid, seed=self.seed)
        model = fit(inputs["train"], data["train"].labels, inputs["val"], data["val"].labels)
        scored = {s: (data[s], model.predict(inputs[s])) for s in data if s != "train"}
        out = os.path.join(self.out_dir, name, "eval")
        Reporter(self.cfg, out, log=self.log).report_predictions(scored, name, {"fitted": model.params})
        return out

    def _climate(self, data):
        """The daily site means and anomalies (read once for the climate and dlnm baselines)."""
        if getattr(self, "_climate_features", None) is None:
            segments = int(self.cc.get("climate_segments", 4))
            if not 1 <= segments <= data["train"].T:
                raise InputError(f"compare.climate_segments must be between 1 and data.window_days "
                                 f"({data['train'].T}), got {segments}")
            self._climate_features = ClimateFeatures(data["train"].store, self.cfg["data"]["norm_period"], segments,
                                                     log=self.log)
        return self._climate_features

    def _dlnm(self, data):
        dc = dlnm.from_config(self.cfg)
        variable, anomaly, region, shift, settings = (dc[k] for k in ("variable", "anomaly", "region", "shift", "model"))
        climate = self._climate(data) if region is None else ClimateFeatures(
            data["train"].store, self.cfg["data"]["norm_period"], 1, log=self.log, region=region)
        adjust = {s: dlnm.covariates(self.cfg, ds) for s, ds in data.items()}
        root = os.path.join(self.out_dir, "dlnm")
        exposure = {s: climate.lagged(ds, variable, anomaly) for s, ds in data.items()}
        model = dlnm.DistributedLag(*settings).fit(exposure["train"], adjust["train"], data["train"].labels)
        scored = {s: (data[s], model.predict(exposure[s], adjust[s])) for s in data if s != "train"}
        Reporter(self.cfg, os.path.join(root, "eval"), log=self.log).report_predictions(
            scored, "dlnm", {"fitted": model.params | {"variable": variable, "anomaly": anomaly, "region": region}})
        fits = {"weather": model}
        if shift:
            # the negative control: the same model on each person's window moved ``shift`` days earlier
            shifted = climate.lagged(data["train"], variable, anomaly, shift=shift)
            try:
                fits[f"weather {shift} days earlier"] = dlnm.DistributedLag(*settings).fit(
                    shifted, adjust["train"], data["train"].labels)
            except DataError as e:               # the store does not reach that far back for enough people
                self.log.warning(f"dlnm negative control not fitted: {e} {shift} days earlier "
                                 f"(compare.dlnm.negative_control_shift_days)")
                fits[f"weather {shift} days earlier"] = f"not fitted: {e} {shift} days earlier"
        summary = {}
        for label, fitted in fits.items():
            if isinstance(fitted, str):
                summary[label] = fitted
                continue
            stem = "lag_response" if fitted is model else "lag_response_negative_control"
            write_csv(os.path.join(root, f"{stem}.csv"), dlnm.lag_response_rows(fitted),
                      ["disease", "lag", "log_or", "ci_low", "ci_high"])
            save_figure(dlnm.lag_response_figure(fitted, variable), os.path.join(root, f"{stem}.png"))
            summary[label] = {"fitted_on": fitted.params["fitted_on"]}
            for j, d in enumerate(DISEASES):
                r = fitted.lag_response(j)
                lags = r["lag"][(r["low"] > 0) | (r["high"] < 0)]
                summary[label][d] = {"overall_log_or": r["overall"], "ci": [r["overall_low"], r["overall_high"]],
                                     "lags_excluding_0": dlnm.lag_ranges(lags)}
                self.log.info(f"dlnm {d} ({label}): {variable} {'anomaly ' if anomaly else ''}"
                              f"{f'over {region} ' if region else ''}at its {fitted.contrast[1]:g}th vs "
                              f"{fitted.contrast[0]:g}th percentile: overall log OR {r['overall']:+.3f} "
                              f"[{r['overall_low']:+.3f}, {r['overall_high']:+.3f}]; interval excludes 0 at "
                              f"{dlnm.lag_ranges(lags) or 'no lag'}")
        with atomic_write(os.path.join(root, "lag_response.json")) as f:
            json.dump(summary, f, indent=1)
        return os.path.join(root, "eval")

    def _classical(self, name, data):
        if name == "dlnm":
            return self._dlnm(data)
        if name == "climate":
            climate = self._climate(data)
            inputs = {s: climate.transform(ds) for s, ds in data.items()}
        else:
            inputs = {s: patient_features(ds, raw=name == "xgboost") for s, ds in data.items()}
        def xgb(*a):
            return fit_xgboost(*a, params=self.cc.get("xgboost"), seed=self.seed)

        self.log.info(f"{name}: {inputs['train'].shape[1]} features, {len(inputs['train'])} training people")
        return self._fit_and_report(name, inputs, data, xgb if name == "xgboost" else None)

    def _late_fusion(self, data, runs):
        """Logistic regression on [weather embedding of weather_only, patient embedding of patient_only]."""
        parts = {}
        for name, key in (("weather_only", "weather_embedding"), ("patient_only", "patient_embedding")):
            run_dir, cfg = runs[name]
            feat_dir = os.path.join(self.out_dir, "late_fusion", f"features_{name}")
            extract_people(cfg, feat_dir, weights=run_dir, splits=list(data), log=self.log)
            for s, ds in data.items():
                with np.load(os.path.join(feat_dir, f"{s}.npz")) as z:
                    if not np.array_equal(z["row"], ds.rows):
                        raise DataError(f"{feat_dir}/{s}.npz is not in the dataset's order of people")
                    parts.setdefault(s, []).append(z[key])
        inputs = {s: np.concatenate(p, axis=1).astype(np.float64) for s, p in parts.items()}
        return self._fit_and_report("late_fusion", inputs, data)


def check_dlnm_settings(dc):
    """Refuse bad ``compare.dlnm`` settings before anything runs."""
    shift = dc.get("negative_control_shift_days", 365)
    if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
        raise InputError(f"compare.dlnm.negative_control_shift_days must be a whole number of days >= 0 "
                         f"(0: none), got {shift!r}")
    for key in ("var_df", "lag_df"):
        value = dc.get(key, 2)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"compare.dlnm.{key} must be a whole number >= 1, got {value!r}")
    if dc.get("region") is not None:
        box_slices(dc["region"], (1, 1))
    dlnm.DistributedLag(contrast=dc.get("contrast", (50, 90)))
