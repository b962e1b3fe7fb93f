"""A TRIPOD+AI report of one evaluated run: the checklist's items that the run can answer filled
from its files (sources and dates, exclusions with counts, outcomes, predictors, missing data,
sample size, model, validation designs, performance with intervals, calibration, decision curves,
subgroups, negative controls), its figures embedded, and the items left for the authors marked.

    python tools/report.py --run output/demo
    python tools/report.py --run output/demo --seeds output/demo_seeds --negative_control output/demo_nc_after

Writes report.md (+ figures/), report.html (self-contained) and checklist.csv to --output_dir
(default <run>/report), whole or not at all; an existing report is replaced only with
--overwrite. Participant-level content: none (counts, means, metrics; counts 1-4 shown as "<5").
The run must have been evaluated (tools/eval.py). Relative data paths in the run's config are
read from the current directory, as the run was made.
"""
import argparse
import os
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="the run directory (config.yaml, meta.csv, split.csv, eval/)")
    parser.add_argument("--compare", default=None,
                        help="a directory of tools/compare.py (default: <run>/compare when it exists)")
    parser.add_argument("--seeds", default=None, help="a directory of tools/compare.py --seeds (results.md)")
    parser.add_argument("--cv", default=None, help="a directory of tools/compare.py --cv centres (cv.md)")
    parser.add_argument("--negative_control", nargs="+", default=[],
                        help="directories of tools/compare.py run with -o data.window_shift_days=<days>")
    parser.add_argument("--lag_response", default=None, help="a directory of tools/visualize.py --what lag_response")
    parser.add_argument("--scenarios", default=None, help="a directory of tools/simulate.py")
    parser.add_argument("--output_dir", default=None, help="where the report goes (default: <run>/report)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report")
    args = parser.parse_args()

    def run():
        from ppeye.report.build import write_report

        out = write_report(args.run, args.output_dir, overwrite=args.overwrite, compare=args.compare,
                           seeds=args.seeds, cv=args.cv, negative_controls=args.negative_control,
                           lag_response=args.lag_response, scenarios=args.scenarios)
        print(f"report: {os.path.join(out, 'report.md')} and report.html")

    cli.main(run)


if __name__ == "__main__":
    main()
