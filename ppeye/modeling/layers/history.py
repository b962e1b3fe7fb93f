"""A person's diagnosis history as tokens: code and category embeddings, time before the index
date, a small Transformer, and an attention-pooled summary (issue #29).

- Each record is ``code_embedding(code) + category_embedding(category) + time(days)``: the
  category (``E11`` of ``E113``) carries what a rare code shares with its common relatives; the
  time encoding is sinusoids of ``log(1 + days)``, so a week and ten years both resolve.
- With description vectors (one per code id, from ``tools/embed_codes.py``), a code's embedding
  is ``Linear(description) + residual(code)``, the residual starting at zero: a rare code starts
  where its description puts it and the projection is learned from the common codes.
- A pre-norm Transformer over the records (padding masked), then a learned query attends over
  them: the summary [B, E] and its weights [B, heads, 1, L] (which records it used). A person
  with no record gets a learned "no history" summary; their tokens are all padding.

Ids: 0 is padding, 1 "other" (``ppeye/data/history.py``).
"""
import math

from ...core.errors import InputError
from ...core.paddle_env import import_paddle
from .attention import MultiHeadAttention
from .transformer import TemporalTransformer

paddle = import_paddle()
nn = paddle.nn


class TimeBeforeIndex(nn.Layer):
    """days [B, L] (float) -> [B, L, E]: sinusoids of log(1 + days) at ``frequencies`` scales, projected."""

    def __init__(self, dim, frequencies=8):
        super().__init__()
        scales = [2.0 ** (i - 2) for i in range(frequencies)]          # log-days from ~0.25 to ~32 cycles per unit
        self.register_buffer("scales", paddle.to_tensor(scales, dtype="float32"), persistable=False)
        self.proj = nn.Linear(2 * frequencies, dim)

    def forward(self, days):
        x = paddle.log1p(days.astype("float32").clip(min=0)).unsqueeze(-1) * self.scales * math.pi
        return self.proj(paddle.concat([paddle.sin(x), paddle.cos(x)], -1))


class HistoryEncoder(nn.Layer):
    """(codes [B, L] int64, categories [B, L] int64, days [B, L] float32) ->
    (summary [B, E], tokens [B, L, E], padding [B, L] bool, explain dict).

    >>> enc = HistoryEncoder(num_codes=10, num_categories=6, dim=16, heads=4)
    >>> codes = paddle.to_tensor([[3, 4, 0], [0, 0, 0]], dtype="int64")
    >>> summary, tokens, padding, explain = enc(codes, codes.clip(max=5), paddle.to_tensor([[10., 400., 0.], [0., 0., 0.]]))
    >>> list(tokens.shape), padding.tolist(), list(summary.shape), list(explain["history_pooling"].shape)
    ([2, 3, 16], [[False, False, True], [True, True, True]], [2, 16], [2, 4, 1, 3])
    """

    def __init__(self, num_codes, num_categories, dim, heads=4, layers=1, ffn_ratio=2, dropout=0.1,
                 descriptions=None):
        super().__init__()
        self.num_codes, self.num_categories = int(num_codes), int(num_categories)
        if descriptions is not None:
            if len(descriptions.shape) != 2 or int(descriptions.shape[0]) != self.num_codes:
                raise InputError(f"history descriptions must be [num_codes={self.num_codes}, D], "
                                 f"got {list(descriptions.shape)}")
            self.register_buffer("descriptions", paddle.to_tensor(descriptions, dtype="float32"))
            self.description_proj = nn.Linear(int(descriptions.shape[1]), dim)
            self.code_embedding = nn.Embedding(self.num_codes, dim, padding_idx=0,
                                               weight_attr=nn.initializer.Constant(0.0))
        else:
            self.descriptions = None
            self.code_embedding = nn.Embedding(self.num_codes, dim, padding_idx=0)
        self.category_embedding = nn.Embedding(self.num_categories, dim, padding_idx=0)
        self.time = TimeBeforeIndex(dim)
        self.encoder = TemporalTransformer(dim, layers, heads, ffn_ratio, dropout) if layers else None
        self.query = self.create_parameter([1, 1, dim], default_initializer=nn.initializer.TruncatedNormal(std=0.02))
        self.pool = MultiHeadAttention(dim, heads, dropout)
        self.no_history = self.create_parameter([1, dim], default_initializer=nn.initializer.TruncatedNormal(std=0.02))

    def code_vectors(self, codes):
        """Each code's embedding [.., E] (its description's projection plus its residual, when described)."""
        vectors = self.code_embedding(codes)
        if self.descriptions is not None:
            vectors = vectors + self.description_proj(paddle.gather(self.descriptions, codes.flatten()).reshape(
                [*codes.shape, int(self.descriptions.shape[1])]))
        return vectors

    def forward(self, codes, categories, days):
        for name, ids, size in (("codes", codes, self.num_codes), ("categories", categories, self.num_categories)):
            if len(ids.shape) != 2 or ids.dtype not in (paddle.int64, paddle.int32):
                raise InputError(f"history {name} must be int64 [B, L], got {ids.dtype} {list(ids.shape)}")
            if paddle.in_dynamic_mode() and ids.size > 0 and (int(ids.min()) < 0 or int(ids.max()) >= size):
                raise InputError(f"history {name} must be ids in 0..{size - 1}, got {int(ids.min())}..{int(ids.max())}: "
                                 f"a vocabulary other than the model's?")
        if list(days.shape) != list(codes.shape):
            raise InputError(f"history days must have the shape of codes {list(codes.shape)}, got {list(days.shape)}")
        padding = codes == 0
        x = self.code_vectors(codes) + self.category_embedding(categories) + self.time(days)
        attentions = []
        if self.encoder is not None:
            x, attentions, _ = self.encoder(x, key_padding_mask=padding)
        x = x * (~padding).astype(x.dtype).unsqueeze(-1)          # padding tokens are zero, whatever went in
        query = self.query.expand([paddle.shape(codes)[0], 1, self.query.shape[-1]])
        pooled, weights = self.pool(query, x, key_padding_mask=padding)
        present = (~padding).any(axis=1, keepdim=True).astype(x.dtype)
        summary = present * pooled.squeeze(1) + (1 - present) * self.no_history
        return summary, x, padding, {"history_pooling": weights, "history_attention": attentions,
                                     "history_present": present.squeeze(-1)}
