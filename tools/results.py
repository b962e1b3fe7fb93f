#!/usr/bin/env python
"""Regenerate the neural figures of docs/results.md over seeds (what `make results` runs): see ppeye/tools/results.py (also ``python -m ppeye.tools.results``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.results import main

if __name__ == "__main__":
    main()
