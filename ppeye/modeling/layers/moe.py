"""Feed-forward networks and a top-k mixture of FFN experts.

``MoE`` follows the sparsely-gated mixture of experts (Shazeer et al., 2017) with the Switch
Transformer's load-balancing loss and capacity factor (Fedus et al., 2022):

- Router: ``probs = softmax(x W_g + noise)``; the noise ``N(0, 1) * softplus(x W_n)`` is added
  in training only, when ``gate_noise`` is on.
- Each token goes to its ``top_k`` experts. With ``top_k=1`` the gate weight is the chosen
  expert's probability (Switch: the router still gets a gradient); with ``top_k>=2`` the
  chosen probabilities are renormalised to sum to 1.
- Load-balancing loss ``E * sum_e f_e * P_e``: ``f_e`` is the share of the token-expert
  assignments that went to expert e, ``P_e`` the mean router probability of e. It is 1 for
  perfectly uniform routing and reaches ``E`` when every token goes to one expert.
- Capacity (optional): each expert takes at most ``ceil(capacity_factor * N * top_k / E)``
  of the N tokens in a call, first come first served in token order. An assignment over
  capacity is dropped: the token gets nothing from that expert (its other experts still
  count, their weights are not renormalised). Used with a residual connection, as
  everywhere in OnsetNet, a token dropped by all its experts passes through unchanged.

Dispatch gathers each expert's tokens, runs the expert on them and adds the weighted result
back, so the work is that of ``top_k`` experts per token, not ``E``. One zero token is
appended to every expert's batch so no expert ever runs on an empty batch (Paddle's matmul
gradient fails on empty inputs); its output is discarded. This works on CPU and GPU and
exports with ``paddle.jit.save``.
"""

from ...core.errors import InputError
from ...core.paddle_env import import_paddle

paddle = import_paddle()
nn = paddle.nn
F = paddle.nn.functional


class FeedForward(nn.Layer):
    """Two-layer MLP ``in -> hidden -> out`` with GELU and dropout. [..., in] -> [..., out]."""

    def __init__(self, in_dim, hidden, out_dim=None, dropout=0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.fc2 = nn.Linear(hidden, out_dim or in_dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.fc2(self.drop(F.gelu(self.fc1(x))))


class MoE(nn.Layer):
    """Top-k mixture of ``FeedForward`` experts. [..., in_dim] -> ([..., out_dim], routing).

    ``routing`` is a dict over the N = prod(leading dims) tokens:
    ``indices`` [N, top_k] int64 (chosen experts), ``gates`` [N, top_k] (their weights, zero
    where the assignment was dropped for capacity), ``probs`` [N, E] (router probabilities),
    ``load`` [E] (share of assignments per expert, before capacity), ``dropped`` (share of
    assignments dropped) and ``aux_loss`` (the load-balancing loss, a scalar).

    >>> moe = MoE(8, 16, num_experts=4, top_k=2)
    >>> y, routing = moe(paddle.randn([3, 5, 8]))
    >>> list(y.shape), list(routing["indices"].shape)
    ([3, 5, 8], [15, 2])
    """

    def __init__(self, in_dim, hidden, out_dim=None, num_experts=4, top_k=2, gate_noise=True,
                 capacity_factor=None, dropout=0.0):
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise InputError(f"MoE: top_k must be between 1 and num_experts={num_experts}, got {top_k}")
        if capacity_factor is not None and capacity_factor <= 0:
            raise InputError(f"MoE: capacity_factor must be positive or null, got {capacity_factor}")
        self.in_dim, self.out_dim = in_dim, out_dim or in_dim
        self.num_experts, self.top_k = num_experts, top_k
        self.capacity_factor = capacity_factor
        self.gate = nn.Linear(in_dim, num_experts, bias_attr=False)
        self.noise = (nn.Linear(in_dim, num_experts, bias_attr=False,
                                weight_attr=nn.initializer.Constant(0.0)) if gate_noise else None)
        self.experts = nn.LayerList([FeedForward(in_dim, hidden, self.out_dim, dropout) for _ in range(num_experts)])

    def route(self, x):
        """Router for tokens x [N, in]: (probs [N, E], indices [N, k], gates [N, k])."""
        logits = self.gate(x)
        if self.noise is not None and self.training:
            logits = logits + paddle.randn(logits.shape, dtype=logits.dtype) * F.softplus(self.noise(x))
        probs = F.softmax(logits.astype("float32"), axis=-1)
        top, indices = paddle.topk(probs, self.top_k, axis=-1)
        gates = top if self.top_k == 1 else top / top.sum(axis=-1, keepdim=True)
        return probs, indices, gates

    def forward(self, x):
        if x.shape[-1] != self.in_dim:
            raise InputError(f"MoE expects [..., {self.in_dim}], got {list(x.shape)}")
        lead = x.shape[:-1]
        tokens = x.reshape([-1, self.in_dim])
        probs, indices, gates = self.route(tokens)
        e = self.num_experts

        # assigned[n, e] = 1 if token n chose expert e; combine[n, e] = its gate weight.
        onehots = F.one_hot(indices, e)                                   # [N, k, E]
        assigned = onehots.sum(axis=1)
        combine = (onehots * gates.unsqueeze(-1)).sum(axis=1)
        load = assigned.mean(axis=0) / self.top_k
        aux_loss = e * (load * probs.mean(axis=0)).sum()

        if self.capacity_factor is not None:
            n = paddle.shape(tokens)[0].astype("float32")
            capacity = paddle.ceil(self.capacity_factor * n * self.top_k / e)
            position = paddle.cumsum(assigned, axis=0) - 1.0              # queue place per expert
            kept = assigned * (position < capacity).astype(assigned.dtype)
            dropped = 1.0 - kept.sum() / assigned.sum()
            combine = combine * kept
            gates = paddle.take_along_axis(combine, indices, axis=1)
            assigned = kept
        else:
            dropped = paddle.zeros([], dtype="float32")

        padded = paddle.concat([tokens, paddle.zeros_like(tokens[:1])], axis=0)
        weight = paddle.concat([combine, paddle.zeros_like(combine[:1])], axis=0).astype(x.dtype)
        pad_index = paddle.shape(tokens)[0:1].astype("int64")
        out = paddle.zeros([padded.shape[0], self.out_dim], dtype=x.dtype)
        for i, expert in enumerate(self.experts):
            index = paddle.concat([paddle.nonzero(assigned[:, i] > 0).flatten(), pad_index])
            y = expert(paddle.gather(padded, index)) * paddle.gather(weight[:, i], index).unsqueeze(-1)
            out = paddle.index_add(out, index, 0, y)
        out = out[:-1].reshape(list(lead) + [self.out_dim])
        routing = {"indices": indices, "gates": gates, "probs": probs, "load": load,
                   "dropped": dropped, "aux_loss": aux_loss}
        return out, routing


def build_ffn(in_dim, hidden, out_dim=None, dropout=0.0, moe=None):
    """A ``FeedForward``, or a ``MoE`` when the ``moe`` config section is enabled.

    ``moe``: {enabled, num_experts, top_k, gate_noise, capacity_factor}. Both kinds are called
    through ``apply_ffn`` so callers need not know which one they hold.
    """
    if moe and moe.get("enabled"):
        return MoE(in_dim, hidden, out_dim, num_experts=moe.get("num_experts", 4), top_k=moe.get("top_k", 2),
                   gate_noise=moe.get("gate_noise", True), capacity_factor=moe.get("capacity_factor"),
                   dropout=dropout)
    return FeedForward(in_dim, hidden, out_dim, dropout)


def apply_ffn(ffn, x):
    """(y, routing or None) for a FeedForward or MoE."""
    if isinstance(ffn, MoE):
        return ffn(x)
    return ffn(x), None

