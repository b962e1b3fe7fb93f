"""Evaluate trained weights on the validation and test splits and the held-out ones (external, period).

    python tools/eval.py -c configs/demo.yaml -o weights=output/demo
    python tools/eval.py -c output/demo/config.yaml -o weights=output/demo/checkpoints/epoch_0004 --split test

Per disease and macro/micro: ROC-AUC, PR-AUC, F1, precision, recall, Brier, Hamming loss, with
participant-level bootstrap 95% intervals (evaluation.bootstrap replicates); thresholds are
chosen on the validation split (F1-maximising) and applied to every split. Writes JSON, CSV,
reliability bins, predictions (no ids) and ROC/PR/calibration PNGs to <run>/eval/ (or
--output_dir), and to VisualDL with --use_vdl; with a retrieval index in the run, every split
is also scored with the retrieval blend.
"""
import os
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--split", default="all", choices=["val", "test", "external", "period", "period_2", "all"],
                        help="which split to evaluate (all: val, test and the held-out splits the cohort has)")
    cli.add_switch(parser, "--use_vdl", help="also write curves and figures to VisualDL")
    parser.add_argument("--vdl_log_dir", default=None, help="VisualDL log directory (default: <run>/vdl)")
    parser.add_argument("--output_dir", default=None, help="where the results go (default: <run>/eval)")
    args = parser.parse_args()

    def run():
        cfg = cli.config_from_args(args, flags={"use_vdl": args.use_vdl, "vdl_log_dir": args.vdl_log_dir})
        from ppeye.engine.checkpoint import resolve, run_dir_of
        from ppeye.engine.evaluator import Evaluator

        if not cfg.get("weights"):
            raise cli.PpeyeError("no weights to evaluate: add -o weights=<run directory or checkpoint>")
        from ppeye.engine.callbacks import visualdl_for

        with visualdl_for(cfg, run_dir_of(resolve(cfg["weights"]))) as vdl:
            Evaluator(cfg, out_dir=args.output_dir, vdl=vdl).run(args.split)

    cli.main(run)


if __name__ == "__main__":
    main()
