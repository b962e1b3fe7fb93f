#!/usr/bin/env python
"""Does ppeye learn a weather effect on data it was never tuned on? (printed, not asserted)

Makes data with ``bench/independent_data.py`` (its own weather and people, not ppeye's generator;
only AMD depends on the weather), then runs what a user would run with the demo config pointed at
it (the data's own centres, variables, box, hours and window; one centre held out whole and the
last four months held out as a period): ``tools/preprocess.py`` (era5, ukb, impute),
``tools/pretrain_days.py``, and ``bench/bench_generalisation.py --levers demo`` over seeds nobody
tuned (the model and its patient-only baseline per seed, from the day-feature cache). Prints the
model minus its patient-only baseline per split, macro and for AMD (the disease with the weather
effect) and for the three without one. Resumable: each step is skipped when its output exists.

    python bench/bench_independent.py                       # data seed 20261201, seeds 20261201-03
    python bench/bench_independent.py --out output/independent --seeds 7,8,9
    python bench/bench_independent.py --day_target deviation_and_mean     # pretrain on deviations and box means
    python bench/bench_independent.py --levers demo later_offset          # more levers of bench_generalisation.py
    python bench/bench_independent.py --out output/independent_big --people 30000    # 5x the people, same weather
"""
import argparse
import csv
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG = """# Written by bench/bench_independent.py: the demo config pointed at data made by
# bench/independent_data.py (its own centres, variables, box, hours and window).
_BASE_:
  - {root}/configs/demo.yaml

output_dir: {out}/runs
seed: {seed}
pretrained: {out}/runs/independent_days

data:
  era5_raw_dir: {out}/raw/era5
  ukb_table: {out}/raw/ukb.csv
  work_dir: {out}/work
  sites: [Oxford, Reading, Hounslow, Bristol, Birmingham]
  variables: [2m_temperature, 2m_dewpoint_temperature, surface_pressure, 10m_u_component_of_wind]
  start_date: '2019-01-01'
  end_date: '2020-12-31'
  norm_period: ['2019-01-01', '2019-12-31']
  window_days: 42
  hours: 4
  box: [12, 12]
  num_features: 10

ukb:
  features: [31, 21003, 21001, 4080, 30750, 20116, 5262, 189, 2207, 1050]
  external_centres: [Birmingham]
  temporal_split: '2020-09-01'
"""


def run(step, argv, log):
    t0 = time.time()
    print(f"== {step}: {' '.join(argv)}", flush=True)
    with open(log, "a") as f:
        code = subprocess.call([sys.executable, *argv], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if code:
        sys.exit(f"{step} failed (exit {code}); see {log}")
    print(f"   {time.time() - t0:.0f} s", flush=True)


def exposure_of(out, data_seed):
    """The generator's own exposure (hot-and-humid days at its lags) before each cohort person's
    index date, regenerated from the data seed, and the cohort."""
    import numpy as np
    import pandas as pd

    import independent_data as gen

    cohort = pd.read_parquet(os.path.join(out, "work", "cohort_imputed.parquet"))
    dates, fields, anomalies = gen.weather(np.random.default_rng(data_seed))
    del fields
    names = list(gen.CENTRES)
    t_cut, d_cut = (np.quantile(anomalies[v].mean(axis=(1, 2)), 0.7) for v in ("t2m", "d2m"))
    hot = {}
    for name in names:
        code, lat, lon = gen.CENTRES[name]
        si, sj = gen.box_index(lat, lon)
        hot[code] = ((anomalies["t2m"][:, si, sj].mean(axis=(1, 2)) > t_cut)
                     & (anomalies["d2m"][:, si, sj].mean(axis=(1, 2)) > d_cut))
    day = (cohort["index_date"].to_numpy().astype("datetime64[D]") - np.datetime64(gen.START, "D")).astype(int)
    lo, hi = gen.EXPOSURE_LAGS
    exposure = np.array([hot[s][d - hi:d - lo + 1].sum() for s, d in zip(cohort["site"], day)], dtype=float)
    return cohort, exposure


def learned_effect(out, gen_dir, levers, data_seed):
    """Did the runs learn the planted effect? ROC-AUC on held-out labels cannot say (below, even the
    true exposure adds little there), so this reads the predictions themselves: the partial slope
    of each run's logit on the true exposure, adjusted for the patient features, on the held-out
    people (test, period, external). A model that learned the effect has a positive AMD slope
    (the generator's is 0.22 log-odds per day) and slopes near 0 for the three other diseases."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    cohort, exposure = exposure_of(out, data_seed)
    feats = cohort[[c for c in cohort.columns if c.startswith("f")]].to_numpy(float)
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-9)
    amd = cohort["label_amd"].to_numpy()
    fit = cohort["split"].isin(["train", "val"]).to_numpy()
    rng = np.random.default_rng(0)
    print("\nthe true exposure as a feature (logistic regression on train + val; the ceiling of what the "
          "weather can add to AMD):")
    scores = {}
    for name, x in (("patient", feats), ("patient+exposure", np.column_stack([feats, exposure]))):
        mu, sd = x[fit].mean(0), x[fit].std(0) + 1e-9
        model = LogisticRegression(C=1.0, max_iter=2000).fit((x[fit] - mu) / sd, amd[fit])
        scores[name] = model.decision_function((x - mu) / sd)
        if name != "patient":
            print(f"   fitted effect {model.coef_[0, -1] / sd[-1]:+.3f} log-odds per day (generator 0.22)")
    for split in ("test", "period", "external"):
        k = np.flatnonzero(cohort["split"].to_numpy() == split)
        diffs = []
        for _ in range(1000):
            r = rng.choice(k, len(k))
            if amd[r].min() < amd[r].max():
                diffs.append(roc_auc_score(amd[r], scores["patient+exposure"][r]) - roc_auc_score(amd[r], scores["patient"][r]))
        gain = roc_auc_score(amd[k], scores["patient+exposure"][k]) - roc_auc_score(amd[k], scores["patient"][k])
        low, high = np.percentile(diffs, [2.5, 97.5])
        print(f"   {split:<9} AMD ROC-AUC gain {gain:+.3f} [{low:+.3f}, {high:+.3f}] ({int(amd[k].sum())} cases)")
    position = {r: i for i, r in enumerate(cohort["row"])}
    print("\npartial slope of each run's logit on the true exposure (held-out people; log-odds per day; "
          "mean over seeds, [min, max]):")
    for run_dir in sorted({os.path.join(gen_dir, lever) for lever in levers} |
                          {os.path.join(gen_dir, d[3:]) for lever in levers
                           for d in os.listdir(os.path.join(gen_dir, lever)) if d.startswith("vs_")}):
        slopes = []
        for seed in sorted(d for d in os.listdir(run_dir) if d.startswith("seed_")):
            rows, probs = [], []
            for split in ("test", "period", "external"):
                path = os.path.join(run_dir, seed, "model", "eval", f"{split}_predictions.npz")
                with np.load(path, allow_pickle=False) as z:
                    rows.append(z["rows"])
                    probs.append(z["probs"])
            at = np.array([position[r] for r in np.concatenate(rows)])
            p = np.clip(np.concatenate(probs), 1e-6, 1 - 1e-6)
            x = np.column_stack([np.ones(len(at)), exposure[at], feats[at]])
            slopes.append(np.linalg.lstsq(x, np.log(p) - np.log1p(-p), rcond=None)[0][1])
        slopes = np.array(slopes)
        print(f"   {os.path.basename(run_dir):<28} " + "  ".join(
            f"{d} {slopes[:, i].mean():+.3f} [{slopes[:, i].min():+.3f}, {slopes[:, i].max():+.3f}]"
            for i, d in enumerate(("glaucoma", "cataract", "amd", "dr"))))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "output", "independent"))
    p.add_argument("--data_seed", type=int, default=20261201)
    p.add_argument("--people", type=int, default=6000,
                   help="cohort size (the weather does not depend on it: same data seed, same weather)")
    p.add_argument("--seeds", default="20261201,20261202,20261203")
    p.add_argument("--day_target", default=None, choices=["volume", "deviation", "deviation_and_mean"],
                   help="the day pretraining's reconstruction target (default: the demo config's)")
    p.add_argument("--anomalies", action="store_true",
                   help="read the weather as anomalies from each site's climatology (data.anomalies)")
    p.add_argument("--levers", nargs="+", default=["demo"],
                   help="levers of bench/bench_generalisation.py to run (default: the demo config as it is)")
    args = p.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    log = os.path.join(out, "log.txt")
    cfg = os.path.join(out, "independent.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(root=ROOT, out=out, seed=int(args.seeds.split(",")[0])))
    if os.path.isfile(os.path.join(out, "raw", "truth.json")):
        with open(os.path.join(out, "raw", "ukb.csv")) as f:
            made = sum(1 for _ in f) - 1
        if made != args.people:
            sys.exit(f"{out}/raw holds {made} people, not --people {args.people}: choose another --out")
    else:
        run("data", ["bench/independent_data.py", "--out", os.path.join(out, "raw"), "--seed", str(args.data_seed),
                     "--people", str(args.people)], log)
    for stage in ("era5", "ukb", "impute"):
        done = {"era5": "era5.zarr", "ukb": "cohort.parquet", "impute": "cohort_imputed.parquet"}[stage]
        if not os.path.exists(os.path.join(out, "work", done)):
            run(f"preprocess {stage}", ["tools/preprocess.py", "-c", cfg, "--stage", stage], log)
    suffix = (f"_{args.day_target}" if args.day_target else "") + ("_anomalies" if args.anomalies else "")
    name = "independent" + suffix
    target = ([f"model.day_reconstruction.target={args.day_target}"] if args.day_target else []) + (
        ["data.anomalies.enabled=true"] if args.anomalies else [])
    days = os.path.join(out, "runs", f"{name}_days")
    if not os.path.isdir(os.path.join(days, "checkpoints")):
        run("pretrain days", ["tools/pretrain_days.py", "-c", cfg, "-o", f"run_name={name}", *target], log)
    gen = os.path.join(out, "gen" + suffix)
    run("model and patient-only over seeds", ["bench/bench_generalisation.py", "-c", cfg, "--levers", *args.levers,
                                              "--seeds", args.seeds, "--out", gen, "-o", f"pretrained={days}",
                                              *target], log)
    for lever in args.levers:
        (vs,) = [d for d in os.listdir(os.path.join(gen, lever)) if d.startswith("vs_")]
        rows = list(csv.DictReader(open(os.path.join(gen, lever, vs, "results.csv"))))
        print(f"\n{lever}: seeds {args.seeds}; model minus its patient-only baseline ({vs[3:]}), ROC-AUC: "
              f"mean [pooled interval] (seeds the model led)")
        for r in rows:
            if r["contender"] == "patient_only":
                print(f"{r['split']:<9} {r['disease']:<9} model {float(r['roc_auc_mean']) + float(r['diff_mean']):.3f}  "
                      f"{float(r['diff_mean']):+.3f} [{float(r['diff_ci_low']):+.3f}, {float(r['diff_ci_high']):+.3f}]"
                      f"  ({r['seeds_model_ahead']})")
    learned_effect(out, gen, args.levers, args.data_seed)
    print(f"\nlog: {log}")


if __name__ == "__main__":
    main()
