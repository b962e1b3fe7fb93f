#!/usr/bin/env python
"""List or copy the configs shipped with ppeye: see ppeye/tools/configs.py (also ``python -m ppeye.tools.configs``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.configs import main

if __name__ == "__main__":
    main()
