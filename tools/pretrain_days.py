#!/usr/bin/env python
"""Pretrain the day encoder on the weather alone (ppeye/engine/day_pretrain.py): see ppeye/tools/pretrain_days.py (also ``python -m ppeye.tools.pretrain_days``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.pretrain_days import main

if __name__ == "__main__":
    main()
