#!/usr/bin/env python
"""Embed ICD-10 codes from their descriptions with a PaddleNLP encoder: see ppeye/tools/embed_codes.py (also ``python -m ppeye.tools.embed_codes``)."""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.tools.embed_codes import main

if __name__ == "__main__":
    main()
