"""Download ERA5-Land from the Copernicus Climate Data Store for the configured
sites, variables and dates: parallel, resumable (manifest.jsonl), verified.

    python tools/download.py -c configs/full.yaml --dry-run
    python tools/download.py -c configs/full.yaml --workers 4

Credentials come from ~/.cdsapirc or CDSAPI_URL / CDSAPI_KEY and are never logged.
A killed run continues where it stopped when started again.
"""
import os
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--dry_run", "--dry-run", action="store_true", help="print the request plan and exit")
    parser.add_argument("--workers", type=int, default=None, help="requests in flight (data.download.concurrency)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    args = parser.parse_args()

    def run():
        from ppeye.data.era5.download import describe_plan, download, plan_requests, retry_plan

        cfg = cli.config_from_args(args, flags={"data.download.concurrency": args.workers})
        if args.dry_run:
            print(describe_plan(plan_requests(cfg)))
            print(retry_plan(cfg["data"]["download"])["text"])
            return
        counts = download(cfg, progress=not args.no_progress and sys.stderr.isatty())
        print(f"{counts['done']} downloaded, {counts['already_done']} already there, {counts['failed']} failed "
              f"of {counts['planned']} requests")
        return 1 if counts["failed"] else 0

    cli.main(run)


if __name__ == "__main__":
    main()
