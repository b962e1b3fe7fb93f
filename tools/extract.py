#!/usr/bin/env python
"""Extract features with a model: the frozen ResNet3D's day features (the cache two-stage: see ppeye/tools/extract.py (also ``python -m ppeye.tools.extract``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.extract import main

if __name__ == "__main__":
    main()
