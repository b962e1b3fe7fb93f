"""The model against its baselines on the same people, in one table.

    python tools/compare.py -c configs/demo.yaml -o weights=output/demo
    python tools/compare.py -c configs/demo.yaml --baselines xgboost,logistic,climate
    python tools/compare.py --runs model=output/a other=output/b --output_dir output/a_vs_b

With a config, trains and evaluates every baseline of compare.baselines on the config's
splits (patient-only and weather-only OnsetNet, XGBoost and logistic regression on the patient
features, a climate logistic regression, late fusion of the two single-modality models); the
model is -o weights=RUN, or trained too when no weights are given. With --runs, compares runs
already evaluated by tools/eval.py (the one named model, else the first, is the reference).
Writes compare_<split>.csv, compare.md and compare.json (ROC-AUC with 95% intervals; the
model's AUC minus each contender's with DeLong's interval and p-value) to --output_dir
(default <output_dir>/<run_name>_compare). Runs scored on different test people or labels are
refused.

    python tools/compare.py -c configs/demo.yaml --seeds 3                # every figure over 3 seeds
    python tools/compare.py -c configs/demo.yaml --cv centres --seeds 3   # every centre held out in turn

With --seeds N (or a list, 0,1,2) the comparison runs once per seed into <out>/seed_<s>/ and
results.md / results.csv give each figure's mean, sd, min-max and pooled interval over seeds
(resumable: finished seeds are read). With --cv centres every centre of data.sites is held out in
turn (<out>/fold_<centre>/, over the seeds), and cv.md / cv_pooled.csv pool the held-out centres'
differences by random-effects meta-analysis (with tau^2 and I^2). --baselines none: the model only.
"""
import os
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402
from ppeye.core.launch import add_processes_arg  # noqa: E402


def eval_dir_of(path):
    """A run's eval/ folder, or the folder itself when it holds an evaluation."""
    for d in (os.path.join(path, "eval"), path):
        if os.path.isfile(os.path.join(d, "summary.json")):
            return d
    raise cli.PpeyeError(f"{path}: no evaluation here (expected {path}/eval/summary.json): run tools/eval.py on it")


def main():
    parser = cli.make_parser(__doc__, config_required=False, config_default=None)
    parser.add_argument("--baselines", default=None,
                        help="comma-separated subset of compare.baselines (default: all of them)")
    parser.add_argument("--runs", nargs="+", default=None, metavar="[NAME=]RUN",
                        help="compare these evaluated runs instead of training baselines")
    parser.add_argument("--split", default=None, help="comma-separated splits to compare (default: test and "
                        "external when present; with --runs: test)")
    parser.add_argument("--seeds", default=None, metavar="N|S,S,...",
                        help="train and compare once per seed: a number of seeds from the config's seed, or a list")
    parser.add_argument("--cv", default=None, choices=["centres"],
                        help="internal-external cross-validation: every centre held out in turn")
    add_processes_arg(parser, "baseline")
    parser.add_argument("--output_dir", default=None, help="where the comparison goes")
    args = parser.parse_args()

    def run():
        from ppeye.engine.compare import REFERENCE, Comparison, write_comparison

        if args.runs:
            if args.seeds or args.cv:
                raise cli.PpeyeError("--seeds and --cv train the contenders; --runs compares runs already trained")
            if not args.output_dir:
                raise cli.PpeyeError("--runs needs --output_dir")
            dirs = {}
            for item in args.runs:
                name, sep, path = item.partition("=")
                name, path = (name, path) if sep else (os.path.basename(os.path.normpath(item)), item)
                if name in dirs:
                    raise cli.PpeyeError(f"two runs are named {name!r}: name them, e.g. --runs model=A other=B")
                dirs[name] = eval_dir_of(path)
            ec = (cli.config_from_args(args).get("evaluation") or {}) if args.config else {}
            write_comparison(dirs, args.output_dir, (args.split or "test").split(","),
                             float(ec.get("ci_level", 0.95)), int(ec.get("bootstrap", 1000)),
                             reference=REFERENCE if REFERENCE in dirs else next(iter(dirs)))
            return
        if not args.config:
            raise cli.PpeyeError("pass -c CONFIG (train and compare baselines) or --runs RUN ... (compare runs)")
        cfg = cli.config_from_args(args)
        run_name = cfg.get("run_name") or os.path.splitext(os.path.basename(args.config))[0]
        out = args.output_dir or os.path.join(cfg["output_dir"], f"{run_name}_compare")
        baselines = ([] if args.baselines == "none" else args.baselines.split(",")) if args.baselines else None
        splits = args.split.split(",") if args.split else None
        if args.cv:
            from ppeye.engine.crossval import CentreFolds
            from ppeye.engine.results import parse_seeds

            if splits:
                raise cli.PpeyeError("--cv centres scores each fold's held-out centre: drop --split")
            CentreFolds(cfg, args.output_dir or os.path.join(cfg["output_dir"], f"{run_name}_cv"),
                        parse_seeds(args.seeds or "1", int(cfg.get("seed", 0))), baselines, args.processes).run()
        elif args.seeds:
            from ppeye.engine.results import SeedRuns, parse_seeds

            SeedRuns(cfg, args.output_dir or os.path.join(cfg["output_dir"], f"{run_name}_results"),
                     parse_seeds(args.seeds, int(cfg.get("seed", 0))), baselines, args.processes, splits).run()
        else:
            Comparison(cfg, out, baselines, args.processes, splits=splits).run()

    cli.main(run)


if __name__ == "__main__":
    main()
