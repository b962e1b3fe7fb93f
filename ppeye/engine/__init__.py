"""Training and evaluation: ``trainer.py`` (the loop), ``checkpoint.py`` (atomic checkpoints)."""
from .checkpoint import load_checkpoint, load_weights, save_checkpoint
from .trainer import Trainer, select_device

__all__ = ["Trainer", "select_device", "load_checkpoint", "load_weights", "save_checkpoint"]
