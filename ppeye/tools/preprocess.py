"""Turn the raw sources into what training reads: era5.zarr (daily cubes per site),
cohort.parquet (features, labels, index dates, splits) and the fitted feature pipeline.

    python tools/preprocess.py -c configs/demo.yaml
    python tools/preprocess.py -c configs/full.yaml --stage era5

Each stage is incremental and leaves earlier outputs intact when it fails.
"""
import os
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402

STAGES = ("era5", "ukb", "impute", "all")


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--stage", default="all", choices=STAGES, help="which part to run (default: all)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    args = parser.parse_args()

    def run():
        cfg = cli.config_from_args(args)
        progress = not args.no_progress and sys.stderr.isatty()
        if args.stage in ("era5", "all"):
            from ppeye.data.era5.convert import convert_era5

            with _dask(cfg):
                report = convert_era5(cfg, progress=progress)
            print(f"era5.zarr: {report['path']} ({len(report['converted'])} months converted, "
                  f"{len(report['skipped'])} unchanged, {report['missing_site_days']} site-days missing)")
        if args.stage in ("ukb", "all"):
            from ppeye.data.ukb.cohort import build_cohort

            report = build_cohort(cfg)
            splits = ", ".join(f"{k} {v['n']}" for k, v in sorted(report["splits"].items()))
            print(f"cohort.parquet: {report['participants']} participants ({splits}); "
                  f"excluded {sum(report['excluded'].values())} (see cohort_report.json)")
        if args.stage in ("impute", "all"):
            from ppeye.data.ukb.impute import impute_cohort

            result = impute_cohort(cfg)
            print(f"cohort_imputed.parquet: {result['missing_share']:.1%} of feature values imputed with {result['method']}")

    cli.main(run)


def _dask(cfg):
    """Local threads by default; a dask.distributed cluster when data.dask_scheduler is set."""
    import contextlib

    address = cfg["data"].get("dask_scheduler")
    if not address:
        return contextlib.nullcontext()
    try:
        from dask.distributed import Client
    except ImportError:
        raise cli.PpeyeError("data.dask_scheduler is set but dask.distributed is not installed: "
                             "pip install 'ppeye[cluster]'") from None
    return Client(address)


if __name__ == "__main__":
    main()
