"""Built-in synthetic data in the raw formats of the real sources, with planted ground truth:
``make_synthetic(cfg, out_dir)`` (:mod:`.make`), the weather (:mod:`.weather`), the people
(:mod:`.cohort`), the planted signals (:mod:`.signals`) and the raw file formats
(:mod:`.raw_files`)."""
from .make import make_synthetic

__all__ = ["make_synthetic"]
