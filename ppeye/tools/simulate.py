"""The cohort's predicted risk under changed weather: each scenario of the config's `simulate`
section (uniform warming, a heatwave at given lags, a delta change by month) applied to every
person's window, the change in each disease's risk per subgroup with intervals over people.

    python tools/simulate.py -c configs/demo.yaml -o weights=output/demo
    python tools/simulate.py -c configs/demo.yaml -o weights=output/demo --split external --output_dir output/sim

Writes scenarios.csv (per scenario, subgroup and disease: the mean change of the log odds and of
the risk in percentage points, 95% intervals from resampling people), scenarios.png and
scenarios.json to --output_dir (default <run>/simulate): group means only, no person's row.
"""
import os
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--output_dir", default=None, help="where the tables and figure go (default: <run>/simulate)")
    parser.add_argument("--split", default="test", choices=["train", "val", "test", "external", "period", "period_2"],
                        help="whose weather is changed (default: test)")
    parser.add_argument("--max_people", type=int, default=None, help="stop after this many people")
    args = parser.parse_args()

    def run():
        cfg = cli.config_from_args(args)
        if not cfg.get("weights"):
            raise cli.PpeyeError("no weights to simulate with: add -o weights=<run directory or checkpoint>")
        from ppeye.explain.entry import simulate_scenarios

        simulate_scenarios(cfg, args.output_dir, split=args.split, max_people=args.max_people)

    cli.main(run)


if __name__ == "__main__":
    main()
