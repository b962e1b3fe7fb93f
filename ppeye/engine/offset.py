"""The patient offset of ``model.patient_offset``: a logistic regression on the patient features
(and, with ``weather.enabled``, on the frozen ResNet's day features averaged over lag bins), fitted
on the training split before the network trains and written into the model's frozen linear
layers (see ppeye/modeling/onset_net.py and ppeye/modeling/layers/weather_offset.py).

The patient-only regression is the ``logistic`` baseline of tools/compare.py (L2, features
standardised with the training mean and SD, C per disease chosen on validation ROC-AUC). With
the weather, the weather columns get their own penalty, ``weather.penalty`` times the patient
columns' (chosen with C on validation): a few strong patient features and many weak weather
ones rarely want the same shrinkage. People without weather get the training mean of the
weather columns, which the layer turns into a contribution of exactly 0. The standardisation
is folded into the layers, so their logits equal the regression's on every input.
"""
import time

import numpy as np

from ..baselines import fit_logistic
from ..core.errors import ConfigError
from ..core.paddle_env import import_paddle
from ..data.ukb.fields import DISEASES
from ..modeling.layers.weather_offset import bin_matrix, bin_means

paddle = import_paddle()


def fit_patient_offset(model, train_set, val_set, seed, log, cache=None, resnet_frozen=True):
    """Fit the regression on ``train_set`` (C chosen on ``val_set``) and set the model's frozen
    offset layers; ``cache`` (a day-feature cache of the model's ResNet) saves running the ResNet
    for the weather columns, which need it frozen for the whole run (``resnet_frozen``). Returns
    what was chosen per disease (JSON-ready)."""
    if val_set is None:
        raise ConfigError("model.patient_offset chooses its regression's C on the validation split: "
                          "set train.eval=true (or turn the offset off)")
    if getattr(model, "weather_offset", None) is not None and not resnet_frozen:
        raise ConfigError("model.patient_offset.weather reads the ResNet's day features, which must not change: "
                          "freeze the ResNet for the whole run (train.two_stage.frozen_epochs = train.epochs)")
    if getattr(model, "weather_offset", None) is None:
        fitted = fit_logistic(np.asarray(train_set.tab, np.float64), train_set.labels,
                              np.asarray(val_set.tab, np.float64), val_set.labels,
                              c_grid=model.offset_c_grid, seed=seed)
        _set(model.patient_offset, *fitted.linear())
        chosen = fitted.params["per_disease"]
    else:
        chosen = _fit_with_weather(model, train_set, val_set, seed, log, cache)
    log.info("patient offset (logistic regression on the patient features"
             + (" and the day features over lag bins" if getattr(model, "weather_offset", None) is not None else "")
             + ", frozen): " + ", ".join(
                 f"{d} C={v['C']:g}" + (f" weather penalty x{v['weather_penalty']:g}" if "weather_penalty" in v else "")
                 + f" val ROC-AUC {v['val_roc_auc']:.3f}" for d, v in chosen.items()))
    return chosen


def _set(layer, weight, bias):
    layer.weight.set_value(paddle.to_tensor(np.asarray(weight, np.float32)))
    layer.bias.set_value(paddle.to_tensor(np.asarray(bias, np.float32)))


def _fit_with_weather(model, train_set, val_set, seed, log, cache):
    t0 = time.perf_counter()
    layer = model.weather_offset
    w_train, w_val = (lag_bin_features(model, ds, cache) for ds in (train_set, val_set))
    present = train_set.weather_present > 0
    if not present.any():
        raise ConfigError("model.patient_offset.weather: no training person has weather")
    fill = w_train[present].mean(axis=0)
    w_train[~present] = fill
    w_val[val_set.weather_present <= 0] = fill
    n_tab = train_set.tab.shape[1]
    fitted = fit_logistic(np.concatenate([np.asarray(train_set.tab, np.float64), w_train], axis=1), train_set.labels,
                          np.concatenate([np.asarray(val_set.tab, np.float64), w_val], axis=1), val_set.labels,
                          c_grid=model.offset_c_grid, seed=seed, own_penalty=(n_tab, model.offset_weather_penalty))
    weight, bias = fitted.linear()
    chosen = {d: {"C": v["C"], "weather_penalty": v["own_penalty"], "val_roc_auc": v["val_roc_auc"]}
              for d, v in fitted.params["per_disease"].items()}
    weather_bias = -(fill[:, None] * weight[n_tab:]).sum(axis=0)                    # 0 at the fill value
    _set(model.patient_offset, weight[:n_tab], bias - weather_bias)
    _set(layer.linear, weight[n_tab:], weather_bias)
    log.info(f"patient offset: {w_train.shape[1]} weather columns ({len(layer.bins)} lag bins "
             f"{', '.join(f'{a}-{b}' for a, b in layer.bins)} days before x {layer.features} day features) from "
             f"{'the day-feature cache' if cache is not None else 'the frozen ResNet'} in {time.perf_counter() - t0:.1f} s")
    return chosen


def lag_bin_features(model, dataset, cache=None, chunk=64):
    """Per person of ``dataset``: the ResNet's pooled day features averaged over the weather
    offset's lag bins, [N, K * P] float64 (0 for people without weather). Reads ``cache`` rows
    when given, else runs the model's (frozen) ResNet on the volumes of the days the windows use."""
    layer = model.weather_offset
    T, P, K = dataset.T, layer.features, len(layer.bins)
    matrix = bin_matrix(layer.bins, T)
    out = np.zeros((len(dataset), K * P))
    present = dataset.weather_present > 0
    was_training = model.backbone.training
    model.backbone.eval()
    try:
        for site in np.unique(dataset.site[present]):
            people = np.nonzero(present & (dataset.site == site))[0]
            days = np.unique((dataset.start[people][:, None] + np.arange(T)).ravel())
            rows = np.zeros((int(days[-1]) + 1, P), np.float64)
            if cache is not None:
                rows[days] = cache.read_features(int(site), days)
            else:
                with paddle.no_grad():
                    for i in range(0, len(days), chunk):
                        part = days[i : i + chunk]
                        volumes = paddle.to_tensor(dataset.store.read(int(site), part))
                        rows[part] = model.backbone(volumes).numpy()
            windows = rows[dataset.start[people][:, None] + np.arange(T)]          # [n, T, P]
            out[people] = bin_means(windows, matrix)
    finally:
        if was_training:
            model.backbone.train()
    return out
