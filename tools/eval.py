#!/usr/bin/env python
"""Evaluate trained weights: ROC-AUC, PR-AUC, F1, Brier, calibration, bootstrap CIs.

    python tools/eval.py -c configs/demo.yaml -o weights=output/demo/best_model
"""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.core import cli


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--split", default="test", choices=["val", "test", "external", "all"], help="which split to evaluate")
    parser.add_argument("--use_vdl", action="store_true", help="also write curves to VisualDL")
    parser.add_argument("--vdl_log_dir", default=None, help="VisualDL log directory")
    parser.add_argument("--output_dir", default=None, help="where the metrics go (default: the run directory)")
    args = parser.parse_args()

    def run():
        cli.config_from_args(args, flags={"use_vdl": args.use_vdl or None, "vdl_log_dir": args.vdl_log_dir,
                                          "output_dir": args.output_dir})
        cli.not_available("evaluation (ppeye.metrics)", issue=5)

    cli.main(run)


if __name__ == "__main__":
    main()
