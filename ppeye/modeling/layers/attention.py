"""Multi-head scaled dot-product attention that returns its weights (Vaswani et al., 2017).

Paddle's own ``nn.MultiHeadAttention`` decides ``need_weights`` at construction, breaks inside
``TransformerEncoderLayer`` when asked for them, and returns weights after dropout; this one
returns the softmax itself, so every row of ``weights`` sums to 1 in train mode too.

Mask convention (one for both masks): a boolean tensor where **True means "may not attend"**.

- ``key_padding_mask`` [B, Lk]: True marks padding keys.
- ``attn_mask`` [Lq, Lk], [B, Lq, Lk] or [B, heads, Lq, Lk]: True blocks that query-key pair.

A query whose keys are all blocked attends to nothing: its weights are all zero and its
output is the output projection's bias (never NaN).
"""
import math

from ...core.errors import InputError
from ...core.paddle_env import import_paddle

paddle = import_paddle()
nn = paddle.nn
F = paddle.nn.functional


class MultiHeadAttention(nn.Layer):
    """Self- or cross-attention with ``heads`` heads.

    Shapes: ``query`` [B, Lq, E]; ``key``/``value`` [B, Lk, E] (default: the query);
    returns ``out`` [B, Lq, E] and ``weights`` [B, heads, Lq, Lk] (None when
    ``need_weights=False``, which may use Paddle's fused attention kernel).

    >>> attn = MultiHeadAttention(16, 4)
    >>> out, w = attn(paddle.randn([2, 5, 16]), paddle.randn([2, 7, 16]))
    >>> list(out.shape), list(w.shape)
    ([2, 5, 16], [2, 4, 5, 7])
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True):
        super().__init__()
        if embed_dim % num_heads:
            raise InputError(f"attention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias_attr=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias_attr=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias_attr=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias_attr=bias)

    def _heads(self, x):
        return x.reshape([0, 0, self.num_heads, self.head_dim]).transpose([0, 2, 1, 3])

    def _blocked(self, key_padding_mask, attn_mask):
        """The combined boolean mask, broadcastable to [B, heads, Lq, Lk] (None if no mask)."""
        blocked = None
        if key_padding_mask is not None:
            if len(key_padding_mask.shape) != 2:
                raise InputError(f"key_padding_mask must be [B, Lk], got shape {list(key_padding_mask.shape)}")
            blocked = key_padding_mask.astype("bool").unsqueeze([1, 2])
        if attn_mask is not None:
            rank = len(attn_mask.shape)
            if rank not in (2, 3, 4):
                raise InputError(f"attn_mask must be [Lq, Lk], [B, Lq, Lk] or [B, heads, Lq, Lk], "
                                 f"got shape {list(attn_mask.shape)}")
            m = attn_mask.astype("bool")
            m = m.unsqueeze([0, 1]) if rank == 2 else (m.unsqueeze(1) if rank == 3 else m)
            blocked = m if blocked is None else paddle.logical_or(blocked, m)
        return blocked

    def forward(self, query, key=None, value=None, key_padding_mask=None, attn_mask=None, need_weights=True):
        key = query if key is None else key
        value = key if value is None else value
        if len(query.shape) != 3 or len(key.shape) != 3 or query.shape[-1] != self.embed_dim:
            raise InputError(f"attention expects query and key [B, L, {self.embed_dim}], "
                             f"got {list(query.shape)} and {list(key.shape)}")
        q = self._heads(self.q_proj(query))
        k = self._heads(self.k_proj(key))
        v = self._heads(self.v_proj(value))
        blocked = self._blocked(key_padding_mask, attn_mask)

        if not need_weights and blocked is None:
            # [B, L, heads, head_dim] layout; the fused kernel where the device has one.
            out = F.scaled_dot_product_attention(
                q.transpose([0, 2, 1, 3]), k.transpose([0, 2, 1, 3]), v.transpose([0, 2, 1, 3]),
                dropout_p=self.dropout, training=self.training)
            return self.out_proj(out.reshape([0, 0, self.embed_dim])), None

        scores = paddle.matmul(q, k, transpose_y=True) * (1.0 / math.sqrt(self.head_dim))
        if blocked is not None:
            low = paddle.full([1], paddle.finfo(scores.dtype).min, dtype=scores.dtype)
            scores = paddle.where(blocked, low, scores)
        weights = F.softmax(scores, axis=-1)
        if blocked is not None:
            # Exact zeros where blocked; this also zeroes a fully blocked row, whose softmax
            # would otherwise be uniform over forbidden keys.
            weights = weights * paddle.logical_not(blocked).astype(weights.dtype)
        attn = F.dropout(weights, self.dropout, training=self.training) if self.dropout else weights
        out = paddle.matmul(attn, v).transpose([0, 2, 1, 3]).reshape([0, 0, self.embed_dim])
        return self.out_proj(out), (weights if need_weights else None)
