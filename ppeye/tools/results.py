"""Regenerate the neural figures of docs/results.md over seeds (what `make results` runs).

    python tools/results.py -c configs/demo.yaml                # 3 seeds: test, held-out period, Leeds
    python tools/results.py -c configs/demo.yaml --seeds 5 --cv  # + every centre held out in turn

First makes what is missing (the synthetic data, era5.zarr, the cohort, the pretrained day
encoder and its day-feature cache: the stages of tools/demo.py, skipped when their outputs exist), then runs
`tools/compare.py --seeds N` into <output_dir>/<run_name>_results/ (results.md: every contender on
every split, mean ± sd, min-max and pooled interval over seeds, what the weather branch adds)
and, with --cv, `tools/compare.py --cv centres --seeds N` into <output_dir>/<run_name>_cv/ (cv.md).
Both are resumable: rerun the same command after an interruption and finished seeds and folds
are read, not retrained. Prints the wall time of each step.
"""
import argparse
import os
import subprocess
import sys
import time

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core.cli import load_config_or_exit  # noqa: E402
from ppeye.core.launch import add_processes_arg, launch_prefix  # noqa: E402


def steps(args, cfg):
    data, run = cfg["data"], cfg["run_name"] or os.path.splitext(os.path.basename(args.config))[0]
    c = ["-c", args.config]
    raw = os.path.dirname(data["era5_raw_dir"].rstrip("/"))
    out = []
    if not (os.path.isdir(data["era5_raw_dir"]) and os.path.isfile(data["ukb_table"])):
        out.append(("synthetic data", ["make_synthetic.py", *c, "--output_dir", raw]))
    if not os.path.isfile(os.path.join(data["work_dir"], "cohort_imputed.parquet")):
        out.append(("preprocess", ["preprocess.py", *c]))
    pretrain = cfg.get("pretrained") and not os.path.isdir(os.path.join(cfg["pretrained"], "checkpoints"))
    if pretrain:
        out.append(("pretrain days", [*launch_prefix(os.path.join(cfg["pretrained"], "launch"), args.processes),
                                      "pretrain_days.py", *c]))
    cache = (cfg["train"].get("two_stage") or {}).get("cache")
    if cache and (pretrain or not os.path.isdir(cache)):                # a new encoder needs a new cache
        out.append(("day features", ["extract.py", *c, "--output", cache, "--overwrite"]))
    compare = ["compare.py", *c, "--seeds", args.seeds, "--processes", str(args.processes)]
    out.append(("seeds", [*compare, "--output_dir", os.path.join(cfg["output_dir"], f"{run}_results")]))
    if args.cv:
        out.append(("cv centres", [*compare, "--cv", "centres", "--output_dir",
                                   os.path.join(cfg["output_dir"], f"{run}_cv")]))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", default="configs/demo.yaml")
    parser.add_argument("--seeds", default="3", help="a number of seeds from the config's seed, or a list (0,1,2)")
    parser.add_argument("--cv", action="store_true", help="also hold out every centre in turn (the longest step)")
    add_processes_arg(parser, "training")
    args = parser.parse_args()
    cfg = load_config_or_exit(args.config)
    tools = os.path.dirname(os.path.abspath(__file__))
    for name, argv in steps(args, cfg):
        i = next(j for j, a in enumerate(argv) if a.endswith(".py"))     # after a launcher's arguments
        print(f"\n=== {name}: python {' '.join([*argv[:i], 'tools/' + argv[i], *argv[i + 1:]])}", flush=True)
        t0 = time.time()
        code = subprocess.call([sys.executable, *argv[:i], os.path.join(tools, argv[i]), *argv[i + 1:]])
        print(f"=== {name}: {'done' if code == 0 else f'FAILED (exit {code})'} in {time.time() - t0:.0f} s", flush=True)
        if code:
            sys.exit(code)


if __name__ == "__main__":
    main()
