#!/usr/bin/env python
"""Export trained weights to a Paddle Inference model (model.json + model.pdiparams,: see ppeye/tools/export.py (also ``python -m ppeye.tools.export``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.export import main

if __name__ == "__main__":
    main()
