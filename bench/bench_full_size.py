#!/usr/bin/env python
"""configs/full.yaml at its real shapes, end to end on this machine (``make smoke-full``).

The users' job runs ``configs/full.yaml`` (365 days x 50 ERA5-Land variables x 24 hours x 20 x 20
cells, the 155 real UK Biobank fields of ``ukb.features: eye_onset_v2`` (205 columns), width 512) on GPUs. This
runs every stage of it as a user would, on synthetic data for a few people at one centre over 13
months, so a shape, dtype or memory error at full size shows here first: synthetic data,
preprocess (era5, ukb, impute), the day-feature cache (``tools/extract.py``, the ResNet3D-18
through Paddle Inference), one epoch of training from it (a few steps; the ResNet frozen: its
end-to-end backward at 365 days needs a GPU's memory, about 128 MB per day volume on this CPU,
bench/bench_model.py), evaluation, export (trace, Paddle Inference self-check), a scoring table
and inference. Prints each stage's wall time and peak resident memory and exits non-zero at the
first that fails.

    python bench/bench_full_size.py                     # output/full_size, 24 people
    python bench/bench_full_size.py --quick             # the same stages at a small size (minutes)
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG = """# Written by bench/bench_full_size.py: configs/full.yaml at its real shapes for a few people.
_BASE_:
  - {root}/configs/full.yaml

output_dir: {out}/runs
run_name: full_smoke

data:
  era5_raw_dir: {out}/raw/era5
  ukb_table: {out}/raw/ukb.csv
  work_dir: {out}/work
  sites: [Manchester]
  start_date: '2019-01-01'
  end_date: '2020-01-31'
  norm_period: ['2019-01-01', '2019-12-31']

synthetic:
  num_participants: {people}
  prevalence: {{glaucoma: 0.45, cataract: 0.45, amd: 0.45, dr: 0.45}}   # cases and non-cases of each in every split

ukb:
  split: {{train: 0.5, val: 0.25, test: 0.25}}

loader: {{batch_size: 8, num_workers: 0}}

train:
  epochs: 1
  two_stage: {{frozen_epochs: 1, cache: {out}/work/day_features.zarr}}
"""

QUICK = ["data.window_days=30", "data.hours=6", "data.box=[8, 8]", "data.variables=[t2m, d2m, tp, ssrd, sp, u10]",
         "model.width=64", "model.backbone.base_width=8",
         "synthetic.signals.event.lags=[3, 20]", "synthetic.signals.periodic.period_days=10"]


def run_stage(name, argv, log):
    """Run ``python argv`` from the checkout; returns (exit code, seconds, peak resident MB)."""
    print(f"=== {name}: python {' '.join(argv)}", flush=True)
    t0 = time.time()
    with open(log, "a") as f:
        f.write(f"\n=== {name}: python {' '.join(argv)}\n")
        f.flush()
        proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.time() - t0, usage.ru_maxrss / 1024


def stages(cfg, out, opt):
    run = os.path.join(out, "runs", "full_smoke")
    export_dir = os.path.join(out, "inference")
    table = os.path.join(out, "to_score.csv")
    c = ["-c", cfg]
    o = ["-o", *opt] if opt else []
    w = ["-o", *opt, f"weights={run}"]
    return [
        ("synthetic data", ["tools/make_synthetic.py", *c, *o, "--output_dir", os.path.join(out, "raw"),
                            "--overwrite", "--no_progress"]),
        ("preprocess era5", ["tools/preprocess.py", *c, *o, "--stage", "era5"]),
        ("preprocess ukb", ["tools/preprocess.py", *c, *o, "--stage", "ukb"]),
        ("impute", ["tools/preprocess.py", *c, *o, "--stage", "impute"]),
        ("day-feature cache", ["tools/extract.py", *c, *o, "--days", "--output",
                               os.path.join(out, "work", "day_features.zarr"), "--batch_size", "16"]),
        ("train", ["tools/train.py", *c, *o, "--eval"]),
        ("eval", ["tools/eval.py", *c, *w]),
        ("export", ["tools/export.py", *c, *w, "--output_dir", export_dir]),
        ("table to score", ["tools/make_scoring_table.py", *c, *o, "--split", "test", "--output", table]),
        ("infer", ["tools/infer.py", "--model_dir", export_dir, "--table", table,
                   "--era5", os.path.join(out, "work", "era5.zarr"), "--output", os.path.join(out, "risks.csv")]),
    ]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "output", "full_size"))
    p.add_argument("--people", type=int, default=24, help="synthetic people (half train, a quarter val and test: one batch "
                   "of 8 each)")
    p.add_argument("--quick", action="store_true", help="the same stages at a small size, to check the script")
    args = p.parse_args()
    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        shutil.rmtree(out)              # every stage is remade: the smoke run is the point
    os.makedirs(out)
    cfg = os.path.join(out, "full_smoke.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(root=ROOT, out=out, people=args.people))
    log = os.path.join(out, "log.txt")
    results = []
    for name, argv in stages(cfg, out, QUICK if args.quick else []):
        code, seconds, peak = run_stage(name, argv, log)
        results.append((name, code, seconds, peak))
        print(f"    {'done' if code == 0 else f'FAILED (exit {code})'} in {seconds:.0f} s, peak {peak:,.0f} MB", flush=True)
        if code:
            break
    size = "quick (small shapes)" if args.quick else "full shapes: 365 days x 50 variables x 24 hours x 20 x 20, width 512"
    print(f"\nconfigs/full.yaml, {size}, {args.people} synthetic people at one centre, 13 months; log: {log}")
    for name, code, seconds, peak in results:
        print(f"  {name:<18} {'done' if code == 0 else f'FAILED ({code})':<11} {seconds:7.0f} s  {peak:8,.0f} MB")
    sys.exit(1 if any(r[1] for r in results) or len(results) < len(stages(cfg, out, [])) else 0)


if __name__ == "__main__":
    main()
