#!/usr/bin/env python
"""A TRIPOD+AI report of a run: see ppeye/tools/report.py (also ``python -m ppeye.tools.report``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.report import main

if __name__ == "__main__":
    main()
