#!/usr/bin/env python
"""Run the whole pipeline on the built-in synthetic data (what `make demo` does): see ppeye/tools/demo.py (also ``python -m ppeye.tools.demo``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.demo import main

if __name__ == "__main__":
    main()
