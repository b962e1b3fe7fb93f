"""Evaluation metrics (``multilabel.py``)."""
from .multilabel import DISEASES, choose_thresholds, multilabel_metrics

__all__ = ["DISEASES", "choose_thresholds", "multilabel_metrics"]
