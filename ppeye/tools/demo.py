"""Run the whole pipeline on the built-in synthetic data (what `make demo` does).

    python tools/demo.py -c configs/demo.yaml

Stages: make synthetic data, preprocess, pretrain the day encoder, its day-feature cache (when the
config trains from one), train, eval, export, infer,
visualize, compare (the model against its patient-only network and the classical baselines; the
weather-only network and late fusion are in make results) and
report (the run's TRIPOD+AI report, <run>/report).
A failing stage stops the demo with a non-zero exit code. The synthetic data are made afresh on
every run, so what was derived from the previous ones (``data.work_dir``: era5.zarr, cohort,
features) is removed after them and rebuilt: a demo config edited between runs (other sites or
dates) would otherwise meet a store built for the old settings.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core.cli import load_config_or_exit  # noqa: E402
from ppeye.core.launch import launch_prefix  # noqa: E402


DEMO_BASELINES = "patient_only,xgboost,logistic,climate,dlnm"


def stages(cfg_path, cfg):
    raw = os.path.dirname(cfg["data"]["era5_raw_dir"].rstrip("/"))
    run = cfg["run_name"] or os.path.splitext(os.path.basename(cfg_path))[0]
    out = os.path.join(cfg["output_dir"], run)
    weights = f"weights={out}"                       # a run directory resolves to its best checkpoint
    export_dir = os.path.join("inference", run)
    table = os.path.join(out, "to_score.csv")
    c = ["-c", cfg_path]
    cache = (cfg["train"].get("two_stage") or {}).get("cache")     # the frozen epochs' day features
    return [
        ("synthetic data", ["make_synthetic.py", *c, "--output_dir", raw, "--overwrite"]),
        ("preprocess era5", ["preprocess.py", *c, "--stage", "era5"]),
        ("preprocess ukb", ["preprocess.py", *c, "--stage", "ukb"]),
        ("impute", ["preprocess.py", *c, "--stage", "impute"]),
        ("pretrain days", [*launch_prefix(os.path.join(out + "_days", "launch")), "pretrain_days.py", *c]),
        *([("day features", ["extract.py", *c, "--output", cache, "--overwrite"])] if cache else []),
        ("train", [*launch_prefix(os.path.join(out, "launch")), "train.py", *c, "--eval", "--use_vdl"]),
        ("eval", ["eval.py", *c, "-o", weights, "use_vdl=true"]),
        ("export", ["export.py", *c, "-o", weights, "--output_dir", export_dir]),
        ("table to score", ["make_scoring_table.py", *c, "--split", "test", "--output", table]),
        ("infer", ["infer.py", "--model_dir", export_dir, "--table", table, "--explain",
                   "--era5", os.path.join(cfg["data"]["work_dir"], "era5.zarr"),
                   "--output", os.path.join(out, "risks.csv")]),
        ("visualize", ["visualize.py", *c, "-o", weights, "--output_dir", os.path.join(out, "vis")]),
        # the model against its patient-only baseline and the classical ones; the weather-only network and
        # late fusion (two more trainings) are in make results, which compares every contender over seeds
        ("compare", ["compare.py", *c, "-o", weights, "--baselines", DEMO_BASELINES,
                     "--output_dir", os.path.join(out, "compare")]),
        ("report", ["report.py", "--run", out, "--overwrite"]),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", default="configs/demo.yaml")
    args = parser.parse_args()
    cfg = load_config_or_exit(args.config)
    tools = os.path.dirname(os.path.abspath(__file__))
    results = []
    for name, argv in stages(args.config, cfg):
        i = next(j for j, a in enumerate(argv) if a.endswith(".py"))
        argv = [*argv[:i], os.path.join("tools", argv[i]), *argv[i + 1:]]
        print(f"\n=== {name}: python {' '.join(argv)}", flush=True)
        t0 = time.time()
        code = subprocess.call([sys.executable, *argv[:i], os.path.join(tools, argv[i][6:]), *argv[i + 1:]])
        seconds = time.time() - t0
        status = "done" if code == 0 else f"FAILED (exit {code})"
        results.append((name, status, seconds))
        if status.startswith("FAILED"):
            break
        if name == "synthetic data" and os.path.isdir(cfg["data"]["work_dir"]):
            print(f"removing {cfg['data']['work_dir']}: derived from the previous synthetic data", flush=True)
            shutil.rmtree(cfg["data"]["work_dir"])
    print("\n=== demo summary")
    for name, status, seconds in results:
        print(f"  {name:<15} {status:<16} {seconds:6.1f} s")
    failed = [r for r in results if r[1].startswith("FAILED")]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
