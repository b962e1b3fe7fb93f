#!/usr/bin/env python
"""PaddleDetection's name for tools/export.py: export a trained model to Paddle Inference (same flags)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.export import main

if __name__ == "__main__":
    main()
