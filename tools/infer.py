#!/usr/bin/env python
"""Predict the four risks for new participants with an exported model: see ppeye/tools/infer.py (also ``python -m ppeye.tools.infer``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.infer import main

if __name__ == "__main__":
    main()
