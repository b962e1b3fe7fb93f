"""Evaluation metrics: ``multilabel.py`` (per disease, macro, micro), ``bootstrap.py``
(participant-level confidence intervals), ``calibration.py`` (reliability bins),
``plots.py`` (ROC / PR / reliability figures)."""
from .bootstrap import bootstrap_metrics
from .calibration import calibration_table
from .multilabel import DISEASES, THRESHOLD_RULE, choose_thresholds, multilabel_metrics

__all__ = ["DISEASES", "THRESHOLD_RULE", "bootstrap_metrics", "calibration_table", "choose_thresholds", "multilabel_metrics"]
