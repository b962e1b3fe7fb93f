"""Write the built-in synthetic sources: ERA5-Land-like hourly files as the CDS
delivers them, a UK Biobank-style table, and the planted ground truth.

    python tools/make_synthetic.py -c configs/demo.yaml --output_dir data/demo/raw

Sites, variables, dates and grid come from the config's data section; sizes and
the planted signals from its synthetic section. The output feeds
tools/preprocess.py with -o data.era5_raw_dir=DIR/era5 data.ukb_table=DIR/ukb.csv.
"""
import os
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402


def main():
    parser = cli.make_parser(__doc__, config_required=False)
    parser.add_argument("--output_dir", "--out", dest="out", required=True,
                        help="output directory (created; must be empty unless --overwrite); --out is its old name")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: synthetic.seed)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    args = parser.parse_args()

    def run():
        from ppeye.data.synthetic import make_synthetic

        cfg = cli.config_from_args(args, flags={"synthetic.seed": args.seed})
        try:
            gt = make_synthetic(cfg, args.out, overwrite=args.overwrite, progress=not args.no_progress and sys.stderr.isatty())
        except FileExistsError as e:
            raise cli.PpeyeError(f"{e}; pass --overwrite to replace it") from None
        print(summary(gt, args.out))

    cli.main(run)


def summary(gt, out):
    c = gt["counts"]
    lines = [
        f"wrote {out}",
        f"  ERA5: {gt['files']['era5_files']} files, {gt['files']['era5_megabytes']} MB, "
        f"{len(gt['sites'])} sites, {len(gt['variables'])} variables, grid {gt['grid']['rows']}x{gt['grid']['cols']} "
        f"({100 * gt['grid']['land_share']:.0f}% land), {gt['start_date']} to {gt['end_date']}",
        f"  UKB table: {c['participants']} participants, {c['features']} feature fields, "
        f"cases: " + ", ".join(f"{d} {n}" for d, n in c["cases"].items()),
        f"  planted: {gt['event']['variable']} events in box rows {gt['event']['region_cells']['rows']} "
        f"cols {gt['event']['region_cells']['cols']}, lags {gt['event']['lags']} days; "
        f"{gt['periodic']['period_days']}-day oscillation in {gt['periodic']['variable']}",
        "  oracle ROC-AUC (true risk): " + ", ".join(f"{d} {a:.3f}" for d, a in gt["oracle_auc"].items()),
        f"  took {gt['seconds']['total']} s",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
