#!/usr/bin/env python
"""Download ERA5-Land from the Copernicus Climate Data Store for the configured: see ppeye/tools/download.py (also ``python -m ppeye.tools.download``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.download import main

if __name__ == "__main__":
    main()
