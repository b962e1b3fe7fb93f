"""Bi-directional cross-attention fusion of the patient and the weather.

- The patient tokens P [B, k, E] (one per TabM member) query the weather sequence S [B, T, E]:
  ``P' = P + Attn(LN(P), LN(S))``; its map [B, heads, k, T] says which days each member used.
- A weather summary token (the mean of S) queries the patient tokens:
  ``s' = s + Attn(LN(s), LN(P))``; its map is [B, heads, 1, k].
- Per member, ``[P'_i, s']`` [2E] goes through a LayerNorm and an MLP (or a mixture of experts)
  to the fused embedding [B, k, E]; OnsetNet's classifier maps it to 4 logits per member.
"""
from ...core.paddle_env import import_paddle
from .attention import MultiHeadAttention
from .moe import apply_ffn, build_ffn

paddle = import_paddle()
nn = paddle.nn


class CrossAttentionFusion(nn.Layer):
    """(patient [B, k, E], weather [B, T, E]) -> (fused [B, k, E], maps, routing or None).

    >>> fusion = CrossAttentionFusion(16, heads=4)
    >>> fused, maps, routing = fusion(paddle.randn([2, 3, 16]), paddle.randn([2, 10, 16]))
    >>> list(fused.shape), list(maps["patient_to_weather"].shape), list(maps["weather_to_patient"].shape)
    ([2, 3, 16], [2, 4, 3, 10], [2, 4, 1, 3])
    """

    def __init__(self, dim, heads=8, dropout=0.1, hidden_ratio=2, moe=None):
        super().__init__()
        self.norm_p, self.norm_w = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.patient_to_weather = MultiHeadAttention(dim, heads, dropout)
        self.norm_s, self.norm_p2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.weather_to_patient = MultiHeadAttention(dim, heads, dropout)
        self.norm_head = nn.LayerNorm(2 * dim)
        self.head = build_ffn(2 * dim, int(hidden_ratio * dim), dim, dropout, moe)

    def forward(self, patient, weather, weather_padding_mask=None, modality_weights=None):
        """``modality_weights`` [B, 2] (patient, weather; rows sum to 1): each modality's part of
        the joint representation is scaled by 2 x its weight (see layers/missing.py)."""
        p_upd, p2w = self.patient_to_weather(self.norm_p(patient), self.norm_w(weather),
                                             key_padding_mask=weather_padding_mask)
        patient = patient + p_upd
        summary = weather.mean(axis=1, keepdim=True)
        s_upd, w2p = self.weather_to_patient(self.norm_s(summary), self.norm_p2(patient))
        summary = summary + s_upd
        if modality_weights is not None:
            patient = patient * (2 * modality_weights[:, 0:1]).unsqueeze(-1)
            summary = summary * (2 * modality_weights[:, 1:2]).unsqueeze(-1)
        joint = paddle.concat([patient, summary.expand([-1, patient.shape[1], -1])], -1)
        fused, routing = apply_ffn(self.head, self.norm_head(joint))
        return fused, {"patient_to_weather": p2w, "weather_to_patient": w2p}, routing
