#!/usr/bin/env python
"""Download ERA5-Land from the Copernicus Climate Data Store for the configured
sites, variables and dates (resumable, parallel, verified).

    python tools/download.py -c configs/full.yaml --dry-run

Credentials come from ~/.cdsapirc or CDSAPI_URL / CDSAPI_KEY and are never logged.
"""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.core import cli


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--dry_run", "--dry-run", action="store_true", help="print the request plan and exit")
    parser.add_argument("--workers", type=int, default=None, help="parallel requests")
    args = parser.parse_args()

    def run():
        cli.config_from_args(args)
        cli.not_available("the ERA5-Land downloader (ppeye.data.era5.download)", issue=3)

    cli.main(run)


if __name__ == "__main__":
    main()
