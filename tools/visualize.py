#!/usr/bin/env python
"""Explain a trained model: where (3D Grad-CAM), when (temporal attention), at which period: see ppeye/tools/visualize.py (also ``python -m ppeye.tools.visualize``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.visualize import main

if __name__ == "__main__":
    main()
