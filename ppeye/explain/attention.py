"""Temporal attention: per-layer maps, attention rollout, the patient's attention over days.

- ``layer_maps``: the self-attention weights of each Transformer layer over the T days,
  head-averaged [B, T, T] (and per head [B, h, T, T]), softmax weights before dropout.
- ``rollout``: attention rollout across layers (each layer's head-averaged map mixed with the
  identity for the residual path, A' = (A + I) / 2, rows renormalised, then multiplied from the
  first layer to the last): how much each output day draws on each input day [B, T, T].
- ``day_importance``: the patient tokens' cross-attention over the days (heads and members
  averaged) [B, T], summing to 1 per person: which days the prediction read.
- ``window_ratio``: mean importance inside a time window / mean outside (1 = no preference).
"""
import numpy as np


def layer_maps(explain):
    """List per layer of head-averaged maps [B, T, T] (numpy)."""
    return [a.numpy().mean(1) for a in explain.get("temporal_attention", [])]


def rollout(maps):
    """Attention rollout over a list of head-averaged maps [B, T, T]."""
    if not maps:
        return None
    t = maps[0].shape[-1]
    out = None
    for a in maps:
        a = 0.5 * a + 0.5 * np.eye(t)[None]
        a = a / a.sum(-1, keepdims=True)
        out = a if out is None else a @ out
    return out


def day_importance(explain):
    att = explain.get("patient_to_weather")
    if att is None:
        return None
    w = att.numpy().mean(axis=(1, 2))
    return w / np.maximum(w.sum(-1, keepdims=True), 1e-12)


def window_positions(T, lags):
    """Window positions of the days ``lags`` = (first, last) days before the index date
    (position T - 1 is the day before the index date, lag 1)."""
    lo, hi = int(lags[0]), int(lags[1])
    return np.arange(T - hi, T - lo + 1)


def window_ratio(importance, positions):
    """Mean importance inside ``positions`` / mean outside, per row of [N, T]."""
    importance = np.asarray(importance, dtype=np.float64)
    inside = np.zeros(importance.shape[-1], bool)
    inside[positions] = True
    return importance[..., inside].mean(-1) / np.maximum(importance[..., ~inside].mean(-1), 1e-300)
