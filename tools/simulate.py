#!/usr/bin/env python
"""The cohort's predicted risk under changed weather: see ppeye/tools/simulate.py (also ``python -m ppeye.tools.simulate``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.simulate import main

if __name__ == "__main__":
    main()
