"""What the models return besides their logits: ``model(batch, return_explain=True)`` gives
``(logits [B, 4], explain)``, and ``explain`` holds only keys declared here (tested over every
model switch). The loss, the callbacks, the explanations and the exporters read these names.
Keys of parts switched off are absent (``total=False``)."""
from typing import TypedDict

from ..core.paddle_env import import_paddle

paddle = import_paddle()
Tensor = paddle.Tensor


class Explain(TypedDict, total=False):
    member_logits: Tensor           # [B, k, 4]: each TabM member's logits (k = 1 without the patient)
    aux_loss: Tensor                # scalar: weighted MoE balancing + weighted reconstruction losses
    embedding: Tensor               # [B, E]: the fused representation, mean over members
    patient_embedding: Tensor       # [B, E]: the patient branch alone
    weather_embedding: Tensor       # [B, E]: the weather branch alone (mean over days)
    patient_to_weather: Tensor      # [B, heads, k, T]: fusion attention of the members over the days
    weather_to_patient: Tensor      # [B, heads, 1, k]: the weather summary over the members
    temporal_attention: list        # per Transformer layer: [B, heads, T, T]
    afno_spectrum: list             # per AFNO block: {"in", "out"} amplitudes [B, T // 2 + 1]
    routing: dict                   # {place: {"load", "indices", "dropped", ...}} of every MoE switched on
    day_embeddings: Tensor          # [U, E]: one per distinct (site, day) volume
    weather_features: Tensor        # the ResNet's last feature map (for Grad-CAM)
    day_reconstruction_loss: Tensor  # scalar: the day decoder's MSE (model.day_reconstruction)
    reconstruction_loss: Tensor     # scalar: the cross-modal imputer's MSE (model.missing.reconstruct)
    presence: Tensor                # [B, 2 + blocks]: modality and feature-block presence (model.missing)
    modality_weights: Tensor        # [B, 2]: (patient, weather) weights in the fusion (model.missing.weighting)
    patient_projection: Tensor      # [B, P]: contrastive pretraining only
    weather_projection: Tensor      # [B, P]: contrastive pretraining only
    similarity: Tensor              # [B, B]: contrastive pretraining only
    logit_scale: Tensor             # scalar: contrastive pretraining only (the learned temperature)


EXPLAIN_KEYS = frozenset(Explain.__annotations__)
