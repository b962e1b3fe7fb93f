#!/usr/bin/env python
"""What each lever does to transfer: the model vs its own patient-only baseline on the random test
split, the held-out period and the unseen centre, over seeds (printed, not asserted).

Each lever is a set of config overrides. Its patient-only baseline is the config with the lever
and ``model.weather_branch: false``: for a lever on the weather side only that is the shared
baseline, trained once per seed; a lever that changes the patient side too (branch heads) gets its
own (``<lever>_patient_only``). Each lever's model is trained once per seed, and every
(lever, seed) is compared with the patient-only run of its seed on the same people (``ppeye.engine.compare.write_comparison``) and
summarised over seeds (``ppeye.engine.results.summarise``: mean, sd and the Rubin-pooled
interval). Everything lands in ``--out`` and is resumable: finished seeds are read, not retrained.
A lever that makes other splits (``ukb.validation=later``) gets its own cohort and imputation in
``<out>/<lever>/work`` (the weather store linked) and its own patient-only baseline on them.

    python bench/bench_generalisation.py                          # every lever, 3 seeds, the demo config
    python bench/bench_generalisation.py --levers demo small_head --seeds 0,1,2
    python bench/bench_generalisation.py -c configs/demo.yaml -o train.epochs=4 --out output/gen_quick

Needs the demo data and day encoder (``make demo`` or ``make results``). A lever is one line of
LEVERS below; add one there to measure it. When every epoch trains the frozen ResNet (the demo),
each lever's day features are extracted once (``tools/extract.py``, seconds) and its runs train
from that cache (``train.two_stage.cache``): ~3.6x the samples/s here (about 210 against 58, 2 processes), features
equal to the network's to ~1e-6 (Paddle Inference vs dygraph); a lever's own cache replaces the one its
config names, so a lever that changes the day inputs never reads another's features. The cache holds each
day's volume pooled to the day decoder's grid, so the day-reconstruction loss stays (equal to the volumes'
to ~1e-5). ``--no-cache`` trains on the volumes.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

LEVERS = {
    "demo": [],                                                           # the config as it is
    "small_head": ["model.temporal.transformer.layers=1", "model.temporal.afno.enabled=false",
                   "model.temporal.transformer.moe.enabled=false"],       # a smaller temporal head over frozen days
    "no_day_reconstruction": ["model.day_reconstruction.enabled=false"],  # labels only after the pretraining
    "day_summary": ["model.backbone.summary.enabled=true"],               # + each day's 4 x 4 cell means per variable
    "branch_heads": ["model.fusion.branch_heads=true"],                   # + each branch's own linear logits
    "weather_dropout": ["model.missing.enabled=true",                     # the weather dropped for 30% of
                        "model.missing.modality_dropout.weather=0.3"],    # training people (missing token)
    "dropout": ["model.temporal.transformer.dropout=0.3", "model.temporal.afno.dropout=0.3",
                "model.fusion.dropout=0.3"],                              # 3x the dropout after the days
    "lag_head": ["model.fusion.lag_head=true"],                           # + a distributed-lag read-out of the days
    "small_lag": ["model.temporal.transformer.layers=1", "model.temporal.afno.enabled=false",
                  "model.temporal.transformer.moe.enabled=false", "model.fusion.lag_head=true"],
    "later_validation": ["ukb.validation=later"],                         # checkpoint, thresholds, calibration and
                                                                          # retrieval chosen on the latest index dates
    "later_weather_dropout": ["ukb.validation=later", "model.missing.enabled=true",
                              "model.missing.modality_dropout.weather=0.3"],
    "later_small_head": ["ukb.validation=later", "model.temporal.transformer.layers=1",
                         "model.temporal.afno.enabled=false", "model.temporal.transformer.moe.enabled=false"],
    "offset": ["model.patient_offset.enabled=true"],                    # weather as a residual on a fitted
    "later_offset": ["ukb.validation=later", "model.patient_offset.enabled=true"],   # patient-only regression
    "weather_offset": ["model.patient_offset.enabled=true",               # + the day features over lag bins in
                       "model.patient_offset.weather.enabled=true"],      # that frozen regression
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", default=os.path.join(ROOT, "configs", "demo.yaml"))
    p.add_argument("-o", "--opt", nargs="+", default=[], help="overrides for every run (key=value)")
    p.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    p.add_argument("--seeds", default="3", help="a number of seeds from the config's seed, or a list (0,1,2)")
    p.add_argument("--out", default=os.path.join(ROOT, "output", "bench_generalisation"))
    p.add_argument("--processes", default="auto", help="training processes per run (auto, inline or a number)")
    p.add_argument("--cache", action=argparse.BooleanOptionalAction, default=True,
                   help="train each lever from its day-feature cache when every epoch has the ResNet frozen")
    args = p.parse_args()
    import ppeye
    from ppeye.engine.compare import patient_only_overrides, write_comparison
    from ppeye.engine.evaluator import split_available
    from ppeye.engine.results import SeedRuns, parse_seeds, summarise

    processes = int(args.processes) if args.processes.isdigit() else args.processes
    base = ppeye.load_config(args.config, args.opt)
    seeds = parse_seeds(args.seeds, int(base["seed"]))
    splits = [s for s in ("test", "period", "external") if split_available(base, s)]
    level = float(base["evaluation"]["ci_level"])

    def own_cohort(name, overrides):
        """A lever that makes other splits (``ukb.*``) gets its own cohort in ``<out>/<name>/work``
        (the weather store linked, not copied); the overrides that point the lever's runs at it."""
        from ppeye.data.ukb.cohort import build_cohort
        from ppeye.data.ukb.impute import impute_cohort
        from ppeye.data.ukb.provenance import cohort_settings

        cfg = ppeye.load_config(args.config, args.opt + overrides)
        if cohort_settings(cfg) == cohort_settings(base):
            return []
        work = os.path.join(args.out, name, "work")
        if not os.path.isfile(os.path.join(work, "cohort_imputed.parquet")):
            os.makedirs(work, exist_ok=True)
            store = os.path.join(work, "era5.zarr")
            if not os.path.lexists(store):
                os.symlink(os.path.abspath(os.path.join(base["data"]["work_dir"], "era5.zarr")), store)
            moved = ppeye.load_config(args.config, args.opt + overrides + [f"data.work_dir={work}"])
            build_cohort(moved)
            impute_cohort(moved)
        return [f"data.work_dir={work}"]

    def model_runs(name, overrides):
        t0 = time.perf_counter()
        cfg = ppeye.load_config(args.config, args.opt + overrides)
        ts = cfg["train"].get("two_stage") or {}
        if (args.cache and cfg["model"].get("weather_branch", True)
                and int(ts.get("frozen_epochs") or 0) == int(cfg["train"]["epochs"])):
            from ppeye.engine.features import extract_day_features

            cache = os.path.join(args.out, name, "day_features.zarr")
            if not os.path.isdir(cache):
                extract_day_features(cfg, cache)
            cfg = ppeye.load_config(args.config, args.opt + overrides + [f"train.two_stage.cache={cache}"])
        elif not args.cache and ts.get("cache"):                      # --no-cache: the volumes, whatever the config names
            cfg = ppeye.load_config(args.config, args.opt + overrides + ["train.two_stage.cache=null"])
        SeedRuns(cfg, os.path.join(args.out, name), seeds, [], processes).run()
        return time.perf_counter() - t0

    from ppeye.engine.results import fingerprint

    def patient_side(overrides):
        """The fingerprint of a patient-only config without the sections a model without weather never reads."""
        cfg = ppeye.load_config(args.config, args.opt + overrides)
        for key in ("backbone", "temporal", "day_reconstruction"):
            cfg["model"].pop(key, None)
        cfg["model"]["fusion"].pop("lag_head", None)                        # built only with the weather
        return fingerprint(cfg)

    po_overrides = ["model.weather_branch=false", "retrieval.enabled=false", *patient_only_overrides(base)]
    po_print = patient_side(po_overrides)
    seconds = {"patient_only": model_runs("patient_only", po_overrides)}
    table, baseline_of, baseline_by_print = [], {}, {po_print: "patient_only"}
    for lever in args.levers:
        overrides = LEVERS[lever] + own_cohort(lever, LEVERS[lever])
        seconds[lever] = model_runs(lever, overrides)
        # the lever's own patient-only baseline: the shared one unless the lever changes the
        # patient side too (e.g. branch heads give the patient branch its own logits; other splits)
        # (levers whose baselines are the same computation share the first one's)
        lever_po = ["model.weather_branch=false", "retrieval.enabled=false",
                    *patient_only_overrides(ppeye.load_config(args.config, args.opt + overrides))]
        own = patient_side(overrides + lever_po)
        if own not in baseline_by_print:
            baseline_by_print[own] = f"{lever}_patient_only"
            seconds[baseline_by_print[own]] = model_runs(baseline_by_print[own], overrides + lever_po)
        baseline_of[lever] = baseline_by_print[own]
        vs = os.path.join(args.out, lever, f"vs_{baseline_of[lever]}")
        for seed in seeds:
            if not os.path.isfile(os.path.join(vs, f"seed_{seed}", "compare.json")):
                dirs = {"model": os.path.join(args.out, lever, f"seed_{seed}", "model", "eval"),
                        "patient_only": os.path.join(args.out, baseline_of[lever], f"seed_{seed}", "model", "eval")}
                write_comparison(dirs, os.path.join(vs, f"seed_{seed}"), splits, level,
                                 int(base["evaluation"]["bootstrap"]), seed)
        rows = summarise(vs, seeds, level, processes=processes)
        table += [(lever, r) for r in rows if r["disease"] == "macro" and r["contender"] == "patient_only"]
        table += [(lever, r) for r in rows if r["disease"] == "macro" and r["contender"] == "model"]
    print(f"\nseeds {seeds}; macro ROC-AUC mean ± sd over seeds; model minus its patient-only baseline: mean "
          f"[Rubin-pooled {level:.0%} interval]")
    print(f"{'lever':<24}" + "".join(f"{s:>38}" for s in splits))
    for lever in args.levers:
        cells = []
        for split in splits:
            m = next(r for lv, r in table if lv == lever and r["split"] == split and r["contender"] == "model")
            d = next(r for lv, r in table if lv == lever and r["split"] == split and r["contender"] == "patient_only")
            cells.append(f"{m['roc_auc_mean']:.3f}±{m['roc_auc_sd']:.3f} {d['diff_mean']:+.3f} "
                         f"[{d['diff_ci_low']:+.3f},{d['diff_ci_high']:+.3f}]")
        print(f"{lever:<24}" + "".join(f"{c:>38}" for c in cells) + f"   ({seconds[lever] / 60:.0f} min)")
    for baseline in dict.fromkeys(baseline_of.values()):
        lever = next(lv for lv, b in baseline_of.items() if b == baseline)
        po = {r["split"]: (r["roc_auc_mean"], r["roc_auc_sd"]) for lv, r in table
              if lv == lever and r["contender"] == "patient_only"}
        print(f"{baseline} baseline ({seconds.get(baseline, 0) / 60:.0f} min; for "
              f"{', '.join(lv for lv, b in baseline_of.items() if b == baseline)}): "
              + ", ".join(f"{s} {po[s][0]:.3f}±{po[s][1]:.3f}" for s in splits))
    if len(seeds) > 1:
        print(f"\nthe {len(seeds)} seeds' models as one ensemble (mean probability; one figure, no spread): macro ROC-AUC")
        for name in [*dict.fromkeys(baseline_of.values()), *args.levers]:
            print(f"{name:<28}" + "".join(f"{s} {ensemble_auc(os.path.join(args.out, name), seeds, s):.3f}   "
                                          for s in splits))


def ensemble_auc(lever_dir, seeds, split):
    """Macro ROC-AUC of the seeds' mean predicted probability on ``split`` (the same people in each run)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    probs, labels = [], None
    for seed in seeds:
        with np.load(os.path.join(lever_dir, f"seed_{seed}", "model", "eval", f"{split}_predictions.npz")) as z:
            if labels is not None and not np.array_equal(z["labels"], labels):
                raise SystemExit(f"{lever_dir}: seed {seed} scored other people on {split}")
            labels = z["labels"]
            probs.append(z["probs"])
    p = np.mean(probs, axis=0)
    return float(np.mean([roc_auc_score(labels[:, d], p[:, d]) for d in range(labels.shape[1])]))

if __name__ == "__main__":
    main()
