"""Predict the four risks for new participants with an exported model.

    python tools/infer.py --model_dir inference/demo --table new.csv --era5 data/demo/work/era5.zarr --output risks.csv

The table is UK Biobank-style (ukbconv 34-0.0 or RAP p34_i0 columns, eid) with the
people's site (assessment centre 54-0.0, home 20074/20075, or lat and lon columns) and
an index_date column (or --index_date for all rows). Rows with problems are reported by
row number in the log and the summary (<output>.summary.json) and get no risks.
"""
import os
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402


def main():
    parser = cli.make_parser(__doc__, config_required=False, config_default=None,
                             config_help=" (optional: when given, the export must have been made from it)")
    parser.add_argument("--model_dir", required=True, help="directory written by tools/export.py")
    parser.add_argument("--table", required=True, help="UK Biobank-style table of the people to score")
    parser.add_argument("--era5", default=None, help="era5.zarr covering their windows (path or fsspec URL)")
    parser.add_argument("--era5_raw", default=None, help="or a directory of raw CDS files to convert first")
    parser.add_argument("--output", required=True, help="CSV of risks (written atomically)")
    parser.add_argument("--index_date", default=None, help="one index date (YYYY-MM-DD) for every row")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--device", default="auto", help="auto | cpu | gpu | gpu:N")
    parser.add_argument("--no_onednn", action="store_true", help="CPU: run without oneDNN")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"],
                        help="GPU: run the program in half precision (the FFT ops stay in fp32)")
    parser.add_argument("--tensorrt", action="store_true",
                        help="GPU: TensorRT for the subgraphs it supports (fp32 or fp16; a GPU build with TensorRT)")
    parser.add_argument("--explain", action="store_true",
                        help="also write each person's attention over the window's days (<output>_explain.npz)")
    parser.add_argument("--ignore_unknown_columns", action="store_true", help="skip columns that are not UKB fields")
    args = parser.parse_args()

    def run():
        import os

        from ppeye.core.logger import get_logger
        from ppeye.deploy.infer import infer_table

        fingerprint = None
        if args.config:
            from ppeye.core.fingerprint import config_fingerprint

            fingerprint = config_fingerprint(cli.config_from_args(args))
        if args.batch_size < 1:
            raise cli.PpeyeError(f"--batch_size must be >= 1, got {args.batch_size}")
        if args.opt and not args.config:
            raise cli.PpeyeError("-o needs -c: the overrides apply to a config")
        infer_table(args.model_dir, args.table, era5=args.era5, output=os.path.abspath(args.output),
                    era5_raw=args.era5_raw, batch_size=args.batch_size, device=args.device,
                    onednn=not args.no_onednn, index_date=args.index_date, explain=args.explain,
                    allow_unknown_columns=args.ignore_unknown_columns, expect_fingerprint=fingerprint,
                    precision=args.precision, tensorrt=args.tensorrt, log=get_logger("ppeye.infer"))

    cli.main(run)


if __name__ == "__main__":
    main()
