#!/usr/bin/env python
"""Compare imputation methods on known values: hide observed cells (at random and in: see ppeye/tools/compare_imputers.py (also ``python -m ppeye.tools.compare_imputers``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.compare_imputers import main

if __name__ == "__main__":
    main()
