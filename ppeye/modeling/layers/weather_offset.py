"""The weather part of the patient offset (``model.patient_offset.weather``).

The patient offset is a logistic regression fitted before training and frozen; the network is a
residual on it. With ``weather: true`` the same regression also reads the weather: the frozen
ResNet's pooled day features averaged over bins of lags (days before the index date), a
piecewise-constant distributed-lag model of the day features, penalised like the patient
features (one C per disease, chosen on validation). This layer holds that part:
``WeatherOffset(P, T, edges, 4)(pooled [U, P], day_index [B, T], present [B]) -> [B, 4]``.

Window position ``t`` (0 = first day) lies ``T - t`` days before the index date (the window ends
the day before it). ``edges`` [7, 14, 28] make the bins 1-7, 8-14, 15-28 and 29-T days before.
A person without weather (``present`` 0) gets 0, which is what the regression gives the
training mean it was fitted with for such people.

>>> import paddle
>>> layer = WeatherOffset(3, 10, [2, 5], 4)
>>> layer.bins
[(1, 2), (3, 5), (6, 10)]
>>> list(layer(paddle.ones([6, 3]), paddle.zeros([2, 10], "int64"), None).shape)
[2, 4]
"""
import numpy as np

from ...core.errors import InputError
from ...core.paddle_env import import_paddle

paddle = import_paddle()
nn = paddle.nn


def lag_bins(edges, T):
    """``edges`` (last lag of each bin but the final one) -> [(first, last), ...] covering 1..T."""
    if (not isinstance(edges, (list, tuple)) or not all(isinstance(e, int) and not isinstance(e, bool) for e in edges)
            or list(edges) != sorted(set(edges)) or (edges and not (1 <= edges[0] and edges[-1] < T))):
        raise InputError(f"model.patient_offset.weather.lag_edges must be increasing whole numbers of days between 1 "
                         f"and data.window_days - 1 = {T - 1}, got {edges!r}")
    firsts = [1] + [e + 1 for e in edges]
    return list(zip(firsts, list(edges) + [T]))


def bin_matrix(bins, T):
    """[T, K] float32: column k averages the window positions whose lag lies in bin k."""
    m = np.zeros((T, len(bins)), np.float32)
    lag = T - np.arange(T)
    for k, (first, last) in enumerate(bins):
        at = (lag >= first) & (lag <= last)
        m[at, k] = 1.0 / at.sum()
    return m


def bin_means(pooled_windows, matrix):
    """Per-person windows of pooled day features [N, T, P] (numpy) -> [N, K * P] bin means."""
    means = np.einsum("ntp,tk->nkp", pooled_windows, matrix)
    return means.reshape(len(pooled_windows), -1)


class WeatherOffset(nn.Layer):
    def __init__(self, features, T, edges, num_classes):
        super().__init__()
        self.bins = lag_bins(list(edges), T)
        self.T, self.features = T, features
        self.register_buffer("matrix", paddle.to_tensor(bin_matrix(self.bins, T)))
        frozen = paddle.ParamAttr(trainable=False, initializer=nn.initializer.Constant(0.0))
        self.linear = nn.Linear(len(self.bins) * features, num_classes, weight_attr=frozen,
                                bias_attr=paddle.ParamAttr(trainable=False, initializer=nn.initializer.Constant(0.0)))

    def forward(self, pooled, day_index, present):
        seq = paddle.gather(pooled, day_index.reshape([-1]).astype("int64")).reshape([-1, self.T, self.features])
        means = paddle.matmul(seq.transpose([0, 2, 1]), self.matrix)          # [B, P, K]
        logits = self.linear(means.transpose([0, 2, 1]).reshape([-1, len(self.bins) * self.features]))
        return logits if present is None else logits * present.unsqueeze(1)
