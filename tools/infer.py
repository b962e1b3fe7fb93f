#!/usr/bin/env python
"""Predict the four risks for new participants with an exported model.

    python tools/infer.py --model_dir inference/demo --table new.csv --era5 data/demo/work/era5.zarr --output risks.csv
"""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.core import cli


def main():
    parser = cli.make_parser(__doc__, config_required=False)
    parser.add_argument("--model_dir", required=True, help="directory written by tools/export.py")
    parser.add_argument("--table", required=True, help="UK Biobank-style table of the people to score")
    parser.add_argument("--era5", required=True, help="era5.zarr covering their windows (path or fsspec URL)")
    parser.add_argument("--output", required=True, help="CSV of risks (written atomically)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--device", default="auto", help="auto | cpu | gpu | gpu:N")
    parser.add_argument("--explain", action="store_true", help="also write explanations")
    args = parser.parse_args()

    def run():
        cli.not_available("inference (tools/infer.py)", issue=7)

    cli.main(run)


if __name__ == "__main__":
    main()
