"""Compare imputation methods on known values: hide observed cells (at random and in
blocks), impute, and score RMSE (standardised, continuous) and accuracy (categorical).

    python tools/compare_imputers.py -c configs/demo.yaml --output_dir output/imputation

    python tools/compare_imputers.py -c configs/demo.yaml --table data/pbc.csv:rownames,id

Tables: the cohort's training rows (tools/preprocess.py --stage ukb first) and each --table
(a CSV; after a colon, identifier columns to leave out). Writes imputation_comparison.csv and .png.
"""
import os
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--output_dir", default="output/imputation", help="where the CSV and plot go")
    parser.add_argument("--methods", default="mean,median,mice,knn,xgboost", help="comma-separated methods")
    parser.add_argument("--max_rows", type=int, default=5000, help="rows per table (a random sample above this)")
    parser.add_argument("--table", action="append", default=[], metavar="CSV[:ID,ID]",
                        help="another table to compare on (repeatable); after a colon, identifier columns to leave out")
    args = parser.parse_args()

    def run():
        from ppeye.data.ukb.compare_tables import load_tables, parse_table, write_comparison
        from ppeye.data.ukb.impute import compare, rank_methods

        cfg = cli.config_from_args(args)
        tables = load_tables(cfg, [parse_table(t) for t in args.table], args.max_rows)
        rows = compare(tables, methods=[m.strip() for m in args.methods.split(",") if m.strip()])
        ranks = rank_methods(rows)
        write_comparison(rows, ranks, args.output_dir)
        print(f"wrote {args.output_dir}/imputation_comparison.csv and .png")
        print("mean rank over tables and masks (1 = best): " + ", ".join(f"{m} {r:.2f}" for m, r in ranks.items()))

    cli.main(run)


if __name__ == "__main__":
    main()
