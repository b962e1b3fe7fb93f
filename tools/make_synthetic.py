#!/usr/bin/env python
"""Write the built-in synthetic sources: ERA5-Land-like hourly files as the CDS: see ppeye/tools/make_synthetic.py (also ``python -m ppeye.tools.make_synthetic``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.make_synthetic import main

if __name__ == "__main__":
    main()
