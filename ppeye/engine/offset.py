"""The patient offset of ``model.patient_offset``: a logistic regression on the patient features,
fitted on the training split before the network trains and written into the model's frozen
linear layer (see ppeye/modeling/onset_net.py).

The regression is the ``logistic`` baseline of tools/compare.py (L2, features standardised with
the training mean and SD, C per disease chosen on validation ROC-AUC); the standardisation is
folded into the layer, so the layer's logits equal the regression's on every input.
"""
import numpy as np

from ..baselines import fit_logistic
from ..core.errors import ConfigError
from ..core.paddle_env import import_paddle

paddle = import_paddle()


def fit_patient_offset(model, train_set, val_set, seed, log):
    """Fit the regression on ``train_set`` (C chosen on ``val_set``) and set ``model.patient_offset``.
    Returns what was chosen per disease (JSON-ready)."""
    if val_set is None:
        raise ConfigError("model.patient_offset chooses its regression's C on the validation split: "
                          "set train.eval=true (or turn the offset off)")
    fitted = fit_logistic(np.asarray(train_set.tab, np.float64), train_set.labels,
                          np.asarray(val_set.tab, np.float64), val_set.labels,
                          c_grid=model.offset_c_grid, seed=seed)
    coef = np.stack([m.coef_[0] for m in fitted.models], axis=1)          # [F, 4] on standardised inputs
    intercept = np.array([m.intercept_[0] for m in fitted.models])
    weight = coef / fitted.std[:, None]
    bias = intercept - (fitted.mean[:, None] * weight).sum(axis=0)
    model.patient_offset.weight.set_value(paddle.to_tensor(weight.astype(np.float32)))
    model.patient_offset.bias.set_value(paddle.to_tensor(bias.astype(np.float32)))
    chosen = fitted.params["per_disease"]
    log.info("patient offset (logistic regression on the patient features, frozen): "
             + ", ".join(f"{d} C={v['C']:g} val ROC-AUC {v['val_roc_auc']:.3f}" for d, v in chosen.items()))
    return chosen
