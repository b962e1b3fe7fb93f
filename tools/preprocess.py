#!/usr/bin/env python
"""Turn the raw sources into what training reads: era5.zarr (daily cubes per site),
cohort.parquet (features, labels, index dates, splits) and the fitted feature pipeline.

    python tools/preprocess.py -c configs/demo.yaml
    python tools/preprocess.py -c configs/full.yaml --stage era5
"""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.core import cli

STAGES = ("era5", "ukb", "impute", "all")


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--stage", default="all", choices=STAGES, help="which part to run (default: all)")
    args = parser.parse_args()

    def run():
        cli.config_from_args(args)
        cli.not_available("preprocessing (ppeye.data: ERA5 conversion, UKB cohort, imputation)", issue=3)

    cli.main(run)


if __name__ == "__main__":
    main()
