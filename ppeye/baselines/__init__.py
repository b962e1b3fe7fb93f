"""Classical baselines for ``tools/compare.py``: features and the models fitted on them.

- :mod:`.features`: patient features (standardised imputed, or raw with NaN where a value was
  not observed) and climate features (per-variable window means and anomalies from era5.zarr);
- :mod:`.models`: L2 logistic regression (inverse strength chosen on validation ROC-AUC) and
  gradient-boosted trees (XGBoost, early-stopped on validation), one per disease.

The neural baselines (OnsetNet with one branch off) and the late fusion are assembled by
:mod:`ppeye.engine.compare`.
"""
from .features import ClimateFeatures, patient_features
from .models import fit_logistic, fit_xgboost

__all__ = ["ClimateFeatures", "patient_features", "fit_logistic", "fit_xgboost"]
