#!/usr/bin/env python
"""Train a model described by a config: see ppeye/tools/train.py (also ``python -m ppeye.tools.train``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.train import main

if __name__ == "__main__":
    main()
