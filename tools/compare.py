#!/usr/bin/env python
"""The model against its baselines on the same people, in one table: see ppeye/tools/compare.py (also ``python -m ppeye.tools.compare``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.compare import main

if __name__ == "__main__":
    main()
