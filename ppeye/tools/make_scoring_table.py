"""Cut a table of people to score from the training export: one split's raw UK Biobank rows
(features, centre, home; no outcomes) with their index dates, the input tools/infer.py takes.

    python tools/make_scoring_table.py -c configs/demo.yaml --split test --output output/demo/to_score.csv
"""
import os
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--split", default="test", help="train | val | test | external (default: test)")
    parser.add_argument("--output", "--out", dest="out", required=True, help="CSV to write (--out is its old name)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many people")
    args = parser.parse_args()

    def run():
        from ppeye.deploy.sample import scoring_table

        n = scoring_table(cli.config_from_args(args), args.split, args.out, args.limit)
        print(f"wrote {n} rows of split {args.split} to {args.out}")

    cli.main(run)


if __name__ == "__main__":
    main()
