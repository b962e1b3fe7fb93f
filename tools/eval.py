#!/usr/bin/env python
"""Evaluate trained weights on the validation and test splits and the held-out ones (external, period): see ppeye/tools/eval.py (also ``python -m ppeye.tools.eval``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.eval import main

if __name__ == "__main__":
    main()
