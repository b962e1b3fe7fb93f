"""A distributed-lag read-out of the weather window (``model.fusion.lag_head``).

The form epidemiologists fit to exposure-lag-response data (a distributed-lag model), on the
network's own day embeddings instead of one measured exposure::

    exposure[b, t, d] = u_d . day[b, t] + c_d          (a linear score of each day, per disease)
    logit[b, d]      += sum_t  w[t, d] * exposure[b, t, d]

``w`` [T, 4] are the lag coefficients (index ``t`` as in the window: ``T - 1`` is the day before
the index date). The read-out is linear in each day, so it cannot single out one stretch of
days by its whole pattern the way the temporal encoder can; a weather effect that is a weighted
sum over lags of something visible in each day is exactly its shape. ``w`` starts at zero: a
model with the head starts as the same model without it (tested), and ``lag_weights`` is the
learned lag profile, readable after training.
"""
from ...core.paddle_env import import_paddle

paddle = import_paddle()
nn = paddle.nn


class LagHead(nn.Layer):
    """``LagHead(width, T, num_classes)(days [B, T, width]) -> [B, num_classes]``.

    >>> head = LagHead(16, 10, 4)
    >>> logits = head(paddle.randn([2, 10, 16]))
    >>> list(logits.shape), float(logits.abs().sum())      # its lag weights start at zero
    ([2, 4], 0.0)
    """

    def __init__(self, width, T, num_classes):
        super().__init__()
        self.exposure = nn.Linear(width, num_classes)
        self.lag_weights = self.create_parameter([T, num_classes], default_initializer=nn.initializer.Constant(0.0))

    def forward(self, days):
        return (self.exposure(days) * self.lag_weights.unsqueeze(0)).sum(axis=1)
