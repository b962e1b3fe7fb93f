"""The TRIPOD+AI items (Collins et al., BMJ 2024;385:e078378) that a ppeye run can answer.

Each item gives a status and Markdown: **from the run** (ppeye wrote everything the item asks
for), **partly** (the run's facts are given; the authors complete the rest) or **for the
authors** (ppeye cannot know: ethics, funding, the clinical context...). Item numbers and
topics follow the checklist; the wording here is ppeye's own.
"""
import os

from ..data.ukb.fields import FIRST_OCCURRENCE, ICD10_CONFIRM, disease_title
from .gather import small

RUN, PART, AUTHORS = "from the run", "partly: the authors complete it", "for the authors"
DISEASES = ("glaucoma", "cataract", "amd", "dr")
DESIGNS = {"test": "a random hold-out of the development centres' people (shares centres and calendar days "
                   "with training: measures fit, not transfer)",
           "external": "people of centres never seen in training (transfer in space)",
           "period": "people of the development centres whose index date is after the temporal split (transfer "
                     "in time)",
           "period_2": "people after the second temporal split date",
           "val": "a random hold-out of the development centres, used for early stopping and thresholds"}


def _fmt(m):
    if not isinstance(m, dict) or m.get("value") is None:
        return "-"
    lo, hi = m.get("ci_low"), m.get("ci_high")
    value = f"{m['value']:.3f}"
    return value if lo is None or hi is None else f"{value} [{lo:.3f}, {hi:.3f}]"


def _table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def _demote(markdown, top=4):
    """Another tool's Markdown inside a section: its title dropped, its highest remaining heading at
    level ``top`` and the others below it in step."""
    lines = [x for x in markdown.splitlines() if not x.startswith("# ")]
    levels = [len(x) - len(x.lstrip("#")) for x in lines if x.startswith("#")]
    shift = top - min(levels) if levels else 0
    return ["#" * shift + x if x.startswith("#") else x for x in lines]


def _fig(facts, path, caption):
    return [f"![{caption}]({facts['figure'](path)})", ""]


def item_1(f):
    d, u = f["cfg"]["data"], f["cfg"]["ukb"]
    diseases = ", ".join(disease_title(x) for x in d.get("labels", DISEASES))
    return PART, [f"Suggested elements: development and validation of a multimodal deep-learning model "
                  f"({f['parameters'] or 'OnsetNet'}) predicting the onset of {diseases} within "
                  f"{u['label_window_days']} days from the "
                  f"{d['window_days']} days of {d.get('era5_product', 'ERA5')} weather before the index date and "
                  f"UK Biobank participant features."]


def item_5a(f):
    d, meta = f["cfg"]["data"], f["meta"]
    synthetic = os.path.isfile(os.path.join(os.path.dirname(d["ukb_table"]), "ground_truth.json"))
    lines = [f"- Participants: the UK Biobank table `{os.path.basename(d['ukb_table'])}`"
             + (" (**synthetic data** made by tools/make_synthetic.py, with its planted truth)" if synthetic else ""),
             f"- Weather: {d.get('era5_product', 'era5')} ({len(d['variables'])} variables: "
             f"{', '.join(d['variables'])}), {d['hours']} hours per day, {d['box'][0]} x {d['box'][1]} cells of "
             f"{d['resolution']} degrees around each centre"]
    lines += [f"- `{k[len('data.sha256.'):]}` sha256 {v[:16]}..." for k, v in meta.items()
              if k.startswith("data.sha256.")]
    if "data.era5_store_identity" in meta:
        lines.append(f"- weather store identity {meta['data.era5_store_identity']}")
    return PART, lines + ["", "The authors justify the sources and discuss their representativeness."]


def item_5b(f):
    d, u = f["cfg"]["data"], f["cfg"]["ukb"]
    shift = d.get("window_shift_days") or 0
    return RUN, [f"- Weather coverage {d['start_date']} to {d['end_date']}; normalisation period "
                 f"{' to '.join(map(str, d['norm_period']))}",
                 f"- Index dates: cases at their first onset, controls at a case's date drawn within their own "
                 f"follow-up; follow-up ends at {d['end_date']}",
                 f"- Temporal split: {u.get('temporal_split') or 'none'}",
                 f"- Exposure window: the {d['window_days']} days before the index date"
                 + (f", **moved {shift} days earlier** (a negative control)" if shift else "")]


def item_6a(f):
    d, u = f["cfg"]["data"], f["cfg"]["ukb"]
    ext = u.get("external_centres") or []
    return RUN, [f"UK Biobank assessment centres ({len(d['sites'])}): {', '.join(d['sites'])}; held out as "
                 f"external: {', '.join(ext) or 'none'}. Site: the {u['site_from']}"
                 + (f" (homes within {u['max_home_distance_km']} km)" if u["site_from"] == "home" else "") + "."]


def item_6b(f):
    rep = f["cohort_report"]
    if rep is None:
        return PART, [f"The cohort report `{f['cohort_report_path']}` was not found: the exclusions at cohort "
                      "building cannot be listed."]
    lines = [f"From {rep['rows']} rows of the table: excluded"]
    lines += [f"- {k.replace('_', ' ')}: {small(v)}" for k, v in rep["excluded"].items()]
    total = next((r["n"] for r in f["counts"] if r["split"] == "all"), None)
    if total is not None:
        lines += ["", f"leaving {total} people in the cohort, split as in 10."]
    lines += ["", "Then per split evaluated, people left out because the weather does not cover their window:"]
    lines += [f"- {s}: " + ", ".join(f"{k.replace('_', ' ')} {small(v)}" for k, v in e["excluded"].items())
              for s, e in f["splits"].items()]
    return RUN, lines


def item_7(f):
    d = f["cfg"]["data"]
    weather = (f"Weather regridded to {d['resolution']} degrees, {d['hours']} steps per day, standardised per "
               f"variable over {' to '.join(map(str, d['norm_period']))}")
    if (d.get("anomalies") or {}).get("enabled"):
        weather += ", as anomalies from a harmonic climatology"
    return PART, [f"{weather}; windows with missing days: `{d.get('incomplete_weather', 'exclude')}`. UK Biobank "
                  "codes for 'do not know' and 'prefer not to answer' become missing; codings and categories are "
                  "fitted on the training split (features/ukb_fields.json)."]


def item_8a(f):
    u = f["cfg"]["ukb"]
    lines = ["Onset of each disease: the earliest date among its first-occurrence fields (category 1712) and, "
             "when the export has them, its hospital ICD-10 diagnoses (field 41270, dates 41280):"]
    lines += [f"- {disease_title(d)}: fields {', '.join(map(str, FIRST_OCCURRENCE[d]))}; ICD-10 "
              f"{', '.join(ICD10_CONFIRM[d])}" for d in f["cfg"]["data"].get("labels", DISEASES) if d in ICD10_CONFIRM]
    if u.get("refine_with_icd10"):
        lines.append("- an H35 first occurrence counts as AMD only with a hospital H35.3 code or no hospital H35 code")
    return PART, lines + ["", f"Label: onset within {u['label_window_days']} days after the index date. The authors "
                              "state how outcomes were ascertained (linkage) and any blinding (8b, 8c)."]


def item_9(f):
    d, u = f["cfg"]["data"], f["cfg"]["ukb"]
    return PART, [f"- Weather: {', '.join(d['variables'])} over {d['window_days']} days before the index date",
                  f"- Participant features: {d.get('num_features', '?')} columns"
                  + (f" from the field list `{u['features']}` (docs/data.md)" if u.get("features") else
                     " (the configured field list)") + ", measured at the baseline assessment",
                  "- The authors explain the choice of predictors (9a) and any blinding (9c)."]


def item_10(f):
    rows = [[r["split"], small(r["n"])] + [small(r[d]) for d in DISEASES if d in r] for r in f["counts"]]
    return PART, _table(["split", "people"] + [f"{d} cases" for d in DISEASES], rows) + [
        "", "No formal sample-size calculation is made by ppeye: the authors justify the size (10)."]


def item_11(f):
    cfg = f["cfg"]
    miss = cfg["model"].get("missing") or {}
    lines = [f"Participant features imputed by `{cfg['ukb'].get('imputer')}` fitted on the training split; "
             f"missingness indicators per block {'used' if miss.get('enabled') else 'not used'} by the model; "
             f"weather windows with missing days: `{cfg['data'].get('incomplete_weather', 'exclude')}`."]
    if f["missingness_png"]:
        lines += ["", *_fig(f, f["missingness_png"], "missing values by field and block")]
    test = (f["splits"].get("test") or {}).get("missingness")
    if test:
        lines += ["Test performance by missingness pattern:", ""]
        lines += _table(["pattern", "people", "macro ROC-AUC"],
                        [[r["pattern"], small(r["n"]), r["macro_roc_auc"][:5]] for r in test])
    return RUN, lines


def item_12a(f):
    u = f["cfg"]["ukb"]
    lines = [f"Participant-level split (`ukb.validation: {u.get('validation')}`, fractions {u['split']}):"]
    lines += [f"- `{s}`: {DESIGNS.get(s, s)}" for s in f["splits"]]
    if f["cv"]:
        lines.append("- internal-external cross-validation by centre (each centre held out in turn, 23a)")
    return RUN, lines


def item_12d(f):
    if f["cv"]:
        return RUN, ["Heterogeneity across centres: the held-out centres' differences pooled by random-effects "
                     "meta-analysis with tau^2 and I^2 (23a, cross-validation)."]
    return PART, ["Heterogeneity across centres: per-centre performance in 23b; run tools/compare.py --cv centres "
                  "for a meta-analysis of held-out centres."]


def item_12c(f):
    cfg = f["cfg"]
    t, o = cfg["train"], cfg.get("optimizer") or {}
    parts = [k for k, v in cfg["model"].items() if isinstance(v, dict) and v.get("enabled")]
    days = f"pretrained on the weather alone ({cfg['pretrained']})" if cfg.get("pretrained") else "trained with it"
    return PART, [f"{f['parameters'] or cfg['model']['type']}; enabled parts: {', '.join(parts) or 'none'}; day "
                  f"encoder {days}; {t['epochs']} epochs, early stopping on validation "
                  f"{(t.get('early_stop') or {}).get('metric')}, optimiser {o.get('type', '?')}, seed {cfg['seed']}, "
                  f"config fingerprint {f['meta'].get('config_fingerprint', '?')}. The full configuration is the "
                  "run's config.yaml. The authors describe any hyperparameter search."]


def item_12e(f):
    e = f["cfg"]["evaluation"]
    return RUN, [f"Per disease: ROC-AUC, PR-AUC, Brier score, sensitivity at specificity {e['specificities']}, "
                 f"calibration ({e['calibration_bins']} {e['calibration_strategy']} bins), decision curves "
                 f"(net benefit on {e.get('decision_curve_risks') or 'uncalibrated'} risks); "
                 f"{int(e['ci_level'] * 100)}% intervals from {e['bootstrap']} bootstrap resamples of people; "
                 "differences between models with DeLong's test; subgroups by centre, sex, age band and season."]


def item_15(f):
    s = f["summary"]
    rows = [[d, f"{v:.3f}"] for d, v in (s.get("thresholds", {}).get("model") or {}).items()]
    return RUN, [f"A probability per disease. Thresholds: {s.get('threshold_rule', '')}.", ""] + \
        _table(["disease", "threshold"], rows)


def item_16(f):
    return RUN, ["Development and evaluation data share the sources, eligibility, outcome definitions and "
                 "predictors; they differ by centre (external) and by calendar period (period). Their "
                 "characteristics are in 20b."]


def item_20b(f):
    rows = f["characteristics"]
    if not rows:
        return PART, [f"The cohort `{f['cohort_path']}` was not found: the authors give the characteristics."]
    header = list(dict.fromkeys(k for r in rows for k in r))
    return RUN, _table(header, [[r.get(k, "") for k in header] for r in rows])


def item_23a(f):
    lines = []
    for split, got in f["splits"].items():
        m = got["metrics"]
        lines += [f"### {split} (n = {int(m['n']['value']) if isinstance(m.get('n'), dict) else '?'})", ""]
        lines += _table(["disease", "ROC-AUC", "PR-AUC", "Brier"],
                        [[d, _fmt(m.get(f"{d}_roc_auc")), _fmt(m.get(f"{d}_pr_auc")), _fmt(m.get(f"{d}_brier"))]
                         for d in (*DISEASES, "macro")])
        lines.append("")
        for kind, caption in (("roc", "ROC curves"), ("calibration", "calibration"),
                              ("decision_curve", "decision curves")):
            if kind in got["figures"]:
                lines += _fig(f, got["figures"][kind], f"{split}: {caption}")
    for key, title in (("compare", "Against the baselines (one seed)"), ("seeds", "Over seeds"),
                       ("cv", "Internal-external cross-validation by centre")):
        if f[key]:
            lines += [f"### {title}", "", f"From `{f[key]['dir']}`.", "", *_demote(f[key]["markdown"]), ""]
    return RUN, lines


def item_23b(f):
    lines = []
    for split, got in f["splits"].items():
        rows = [r for r in (got["subgroups"] or []) if r["roc_auc"] not in ("", "nan")]
        if not rows:
            continue
        lines += [f"### {split}", ""]
        lines += _table(["attribute", "group", "disease", "people", "cases", "ROC-AUC [95% CI]", "differs"],
                        [[r["attribute"], r["group"], r["disease"], small(r["n"]), small(r["cases"]),
                          f"{float(r['roc_auc']):.3f} [{float(r['ci_low']):.3f}, {float(r['ci_high']):.3f}]",
                          r["differs"]] for r in rows])
        lines += ["", "Groups with fewer than the configured minimum of cases or controls are not scored.", ""]
    return (RUN if lines else PART), lines or ["No subgroup table was written by tools/eval.py."]


def negative_controls(f):
    lines = []
    dl = (f["compare"] or {}).get("dlnm") or {}
    if "lag_response_negative_control" in dl:
        lines += ["The distributed-lag baseline refitted on windows moved by "
                  f"`compare.dlnm.negative_control_shift_days` (in `{f['compare']['dir']}/dlnm`):", "",
                  *_fig(f, dl["lag_response_negative_control"], "distributed-lag baseline, negative control")]
    for nc in f["negative_controls"]:
        shift = nc["shift"]
        moved = f"{shift} days earlier" if shift > 0 else f"{-shift} days later"
        if -shift >= f["cfg"]["data"]["window_days"]:
            moved += ": only days from the index date on"
        lines += [f"### Windows moved {moved} (`data.window_shift_days: {shift}`)", "", f"From `{nc['dir']}`.", "",
                  *_demote(nc["markdown"]), ""]
    if not lines:
        return AUTHORS, ["No negative control was given: run one (docs/epidemiology.md, 'Negative controls') and "
                         "pass it with --negative_control."]
    return RUN, lines


def exposure(f):
    lines = []
    dl = (f["compare"] or {}).get("dlnm") or {}
    if "lag_response" in dl:
        lines += _fig(f, dl["lag_response"], "distributed-lag baseline: lag-response")
    if f["lag_response"]:
        lines += [f"The model's lag-response (`{f['lag_response']['dir']}`):", "",
                  *_fig(f, f["lag_response"]["png"], "the model's lag-response beside the baseline's")]
    if f["scenarios"]:
        lines += [f"Climate scenarios (`{f['scenarios']['dir']}`):", "",
                  *_fig(f, f["scenarios"]["png"], "risk change per scenario")]
    return (RUN if lines else AUTHORS), lines or ["No lag-response or scenario was given."]


def limitations(f):
    lines = []
    test = (f["splits"].get("test") or {}).get("leakage")
    if test:
        lines.append("- Test people who share (centre, day) windows with training people: " + "; ".join(
            f"{r['group']}: {small(r['n'])} people, macro ROC-AUC {r['macro_roc_auc'][:5] or '-'}" for r in test))
    if "test" in f["splits"] and "external" not in f["splits"] and "period" not in f["splits"]:
        lines.append("- Only a random hold-out was evaluated: it rewards memory of the training weather.")
    if not f["seeds"]:
        lines.append("- The figures come from one training seed: neural results vary between seeds "
                     "(pass tools/compare.py --seeds with --seeds).")
    return PART, lines + ["- The authors add the study's own limitations."]


def _authors(*what):
    return lambda f: (AUTHORS, [" ".join(what)])


ITEMS = [
    ("1", "Title", item_1), ("2", "Abstract", _authors("A structured abstract.")),
    ("3a-c", "Background: context, population, health inequalities",
     _authors("The clinical setting, intended users and known inequalities.")),
    ("4", "Objectives", _authors("Development and evaluation (internal, external, temporal) of the model.")),
    ("5a", "Data sources", item_5a), ("5b", "Dates", item_5b), ("6a", "Setting and centres", item_6a),
    ("6b", "Eligibility and exclusions", item_6b),
    ("6c", "Treatments", _authors("Treatments received, if relevant.")), ("7", "Data preparation", item_7),
    ("8a-c", "Outcome", item_8a), ("9a-c", "Predictors", item_9), ("10", "Sample size", item_10),
    ("11", "Missing data", item_11), ("12a", "Use of the data (splits, validation designs)", item_12a),
    ("12b", "Predictor handling", lambda f: (RUN, ["As in 7: standardised weather, encoded and imputed "
                                                   "participant features, both fitted on the training split."])),
    ("12c", "Model type and building", item_12c), ("12d", "Heterogeneity across centres", item_12d),
    ("12e", "Performance measures", item_12e),
    ("12f-g", "Recalibration; how predictions were made",
     lambda f: (RUN, [f"Predictions of `{f['summary'].get('weights')}` (the checkpoint early stopping kept); "
                      f"post-hoc recalibration `{f['cfg']['evaluation'].get('post_hoc_calibration') or 'none'}`; "
                      f"decision curves on {f['summary'].get('decision_curve_risks', 'uncalibrated risks')}."])),
    ("13", "Class imbalance", lambda f: (RUN, [f"Loss `{f['cfg']['loss']['type']}` with class weights "
                                               f"`{f['cfg']['loss'].get('class_weights')}`; no resampling."])),
    ("14", "Fairness", lambda f: (PART, ["Subgroup performance by sex, age band, centre and season (23b); the "
                                         "authors discuss fairness."])),
    ("15", "Model output", item_15), ("16", "Development vs evaluation data", item_16),
    ("17-19", "Ethics, open science, patient and public involvement",
     lambda f: (PART, [f"Code: ppeye {f['meta'].get('version.ppeye', '?')} (Paddle "
                       f"{f['meta'].get('version.paddle', '?')}). Ethics, funding, conflicts, protocol, "
                       "registration, data access and PPI: for the authors."])),
    ("20a", "Participant flow", item_6b), ("20b-c", "Characteristics per split", item_20b),
    ("21", "Participants and events per analysis", item_10),
    ("22", "Model specification", lambda f: (RUN, ["The trained weights and config are the run directory; "
                                                   "tools/export.py makes a Paddle Inference bundle."])),
    ("23a", "Performance with intervals", item_23a), ("23b", "Performance in subgroups", item_23b),
    ("NC", "Negative controls", negative_controls), ("EX", "Exposure-response and scenarios", exposure),
    ("24", "Model updating", lambda f: (RUN, [f"Post-hoc recalibration: "
                                              f"`{f['cfg']['evaluation'].get('post_hoc_calibration') or 'none'}`."])),
    ("25", "Interpretation", _authors("The interpretation of the results.")),
    ("26", "Limitations", limitations),
    ("27a-c", "Usability: missing input, user interaction, next steps",
     _authors("How missing inputs are handled in use (modality presence flags, imputation), what users do, "
              "future research.")),
]
