#!/usr/bin/env python
"""Turn the raw sources into what training reads: era5.zarr (daily cubes per site),: see ppeye/tools/preprocess.py (also ``python -m ppeye.tools.preprocess``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.preprocess import main

if __name__ == "__main__":
    main()
