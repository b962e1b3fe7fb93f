"""Training and evaluation: ``trainer.py`` (the loop), ``checkpoint.py`` (atomic checkpoints)."""
from .checkpoint import load_checkpoint, load_weights, save_checkpoint
from ..core.device import select_device  # noqa: F401  (ppeye.engine.select_device, as before)
from .trainer import Trainer

__all__ = ["Trainer", "select_device", "load_checkpoint", "load_weights", "save_checkpoint"]
