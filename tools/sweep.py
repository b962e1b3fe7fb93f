#!/usr/bin/env python
"""Hyper-parameter search: a grid or random search from the config's sweep section: see ppeye/tools/sweep.py (also ``python -m ppeye.tools.sweep``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.sweep import main

if __name__ == "__main__":
    main()
