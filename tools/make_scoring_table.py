#!/usr/bin/env python
"""Cut a table of people to score from the training export: one split's raw UK Biobank rows: see ppeye/tools/make_scoring_table.py (also ``python -m ppeye.tools.make_scoring_table``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.make_scoring_table import main

if __name__ == "__main__":
    main()
