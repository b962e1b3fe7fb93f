"""The temporal Transformer over the T daily embeddings: pre-norm encoder layers
(Xiong et al., 2020) with our attention and an FFN or mixture of experts, and day positions."""
import math

import numpy as np

from ...core.errors import InputError
from ...core.paddle_env import import_paddle
from .attention import MultiHeadAttention
from .moe import apply_ffn, build_ffn

paddle = import_paddle()
nn = paddle.nn


class LearnedPositions(nn.Layer):
    """A learned embedding per day of the window, added to x [B, T, E]."""

    def __init__(self, length, dim):
        super().__init__()
        self.length = length
        self.table = self.create_parameter([length, dim], default_initializer=nn.initializer.TruncatedNormal(std=0.02))

    def forward(self, x):
        if x.shape[1] != self.length:
            raise InputError(f"learned positions cover {self.length} days, got a sequence of {x.shape[1]}")
        return x + self.table


class SinusoidalPositions(nn.Layer):
    """Fixed sine/cosine positions (Vaswani et al., 2017), added to x [B, T, E]; any T."""

    def __init__(self, length, dim):
        super().__init__()
        self.length = length
        pos = np.arange(length)[:, None]
        freq = np.exp(-math.log(10000.0) * np.arange(0, dim, 2) / dim)
        table = np.zeros((length, dim), dtype="float32")
        table[:, 0::2] = np.sin(pos * freq)
        table[:, 1::2] = np.cos(pos * freq)[:, : dim // 2]
        self.register_buffer("table", paddle.to_tensor(table), persistable=False)

    def forward(self, x):
        if x.shape[1] > self.length:
            raise InputError(f"sinusoidal positions were built for {self.length} days, got {x.shape[1]}")
        return x + self.table[: x.shape[1]]


def build_positions(kind, length, dim):
    if kind == "learned":
        return LearnedPositions(length, dim)
    if kind == "sinusoidal":
        return SinusoidalPositions(length, dim)
    raise InputError(f"model.temporal.positions must be 'learned' or 'sinusoidal', got {kind!r}")


class EncoderLayer(nn.Layer):
    """Pre-norm layer: ``x + Attn(LN(x))``, then ``x + FFN(LN(x))`` (FFN or MoE). [B, T, E]."""

    def __init__(self, dim, heads, ffn_ratio=4, dropout=0.1, moe=None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = build_ffn(dim, int(dim * ffn_ratio), dim, dropout, moe)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, key_padding_mask=None):
        """Returns (y, attention weights [B, heads, T, T], routing or None)."""
        h, weights = self.attn(self.norm1(x), key_padding_mask=key_padding_mask)
        x = x + self.drop(h)
        h, routing = apply_ffn(self.ffn, self.norm2(x))
        return x + self.drop(h), weights, routing


class TemporalTransformer(nn.Layer):
    """``layers`` pre-norm encoder layers and a final LayerNorm. x [B, T, E] -> [B, T, E].

    ``forward`` returns (y, [attention per layer], [routing per layer or None]).
    With ``recompute`` on, each layer's activations are recomputed in the backward pass
    (``fleet.utils.recompute``), trading compute for memory. The non-reentrant variant is
    used: the reentrant one silently drops the parameter gradients of a block whose input
    needs no gradient, and fails on blocks that return non-tensors (Paddle 3.3.1).
    """

    def __init__(self, dim, layers=2, heads=8, ffn_ratio=4, dropout=0.1, moe=None, recompute=False):
        super().__init__()
        self.layers = nn.LayerList([EncoderLayer(dim, heads, ffn_ratio, dropout, moe) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.recompute = recompute

    def forward(self, x, key_padding_mask=None):
        attentions, routings = [], []
        for layer in self.layers:
            if self.recompute and self.training:
                from paddle.distributed.fleet.utils import recompute

                x, weights, routing = recompute(layer, x, key_padding_mask, use_reentrant=False)
            else:
                x, weights, routing = layer(x, key_padding_mask)
            attentions.append(weights)
            routings.append(routing)
        return self.norm(x), attentions, routings
