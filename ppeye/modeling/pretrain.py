"""Contrastive weather-patient pretraining (CLIP-style; Radford et al., 2021).

Every participant has a weather window and patient features, whether or not they ever develop
an eye disease. ``ContrastivePretrainer`` is OnsetNet's two encoders without the fusion and
the classifier, plus:

- weather pooling over the T days (``pretrain.pool``): ``mean``, ``max``, or ``cls``: a learned
  query token that attends over the encoded days (one attention layer, as a CLS token would);
- projection heads (Linear-GELU-Linear) to ``proj_dim``, L2-normalised;
- a learned temperature: ``logit_scale = log(1 / temperature)``, similarities scaled by
  ``exp(logit_scale)`` (capped at 100);
- the symmetric InfoNCE loss (:class:`InfoNCE`): cross-entropy of patient -> weather and of
  weather -> patient over the in-batch pairs, the matching pair being the positive.

Its parameters keep OnsetNet's names (``backbone.*``, ``temporal``, ``tabular.*``, ...), so an
onset config starts from a pretraining checkpoint with ``pretrained: <run>``
(:func:`ppeye.engine.checkpoint.load_pretrained`), which loads the shared parts and says what
it left out.
"""
import math

from ..core.errors import InputError
from ..core.paddle_env import import_paddle
from ..core.registry import LOSSES, MODELS
from .inputs import unpack_batch
from .layers.attention import MultiHeadAttention
from .onset_net import OnsetNet

paddle = import_paddle()
nn = paddle.nn
F = paddle.nn.functional

POOLS = ("mean", "max", "cls")


def _head(dim, out):
    return nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, out))


@MODELS.register
class ContrastivePretrainer(OnsetNet):
    """``forward(...)`` returns the [B, B] patient-to-weather similarity logits (row i's positive
    is column i), or ``(logits, explain)`` with ``patient_projection`` and
    ``weather_projection`` [B, proj_dim] (unit norm), ``logit_scale`` and ``aux_loss``."""

    contrastive = True

    def __init__(self, input_shapes, pretrain=None, **onset):
        pc = {"pool": "mean", "proj_dim": 128, "temperature": 0.07, "learn_temperature": True, "heads": 4}
        unknown = sorted(set(pretrain or {}) - set(pc))
        if unknown:
            raise InputError(f"model.pretrain: unknown keys {unknown} (known: {sorted(pc)})")
        pc.update(pretrain or {})
        if pc["pool"] not in POOLS:
            raise InputError(f"model.pretrain.pool must be one of {POOLS}, got {pc['pool']!r}")
        if not (onset.get("weather_branch", True) and onset.get("patient_branch", True)):
            raise InputError("contrastive pretraining needs both branches (weather_branch and patient_branch on)")
        if not 0 < float(pc["temperature"]) <= 1:
            raise InputError(f"model.pretrain.temperature must be in (0, 1], got {pc['temperature']}")
        onset.pop("missing", None)          # pretraining pairs are complete people
        super().__init__(input_shapes, **onset)
        self.fusion = None                  # not used: the encoders are what is pretrained
        self.classifier = None
        w = self.width
        self.pool = pc["pool"]
        if self.pool == "cls":
            self.cls = self.create_parameter([1, 1, w], default_initializer=nn.initializer.TruncatedNormal(std=0.02))
            self.cls_attention = MultiHeadAttention(w, int(pc["heads"]), 0.0)
            self.cls_norm = nn.LayerNorm(w)
        self.weather_head = _head(w, int(pc["proj_dim"]))
        self.patient_head = _head(w, int(pc["proj_dim"]))
        self.logit_scale = self.create_parameter(
            [1], default_initializer=nn.initializer.Constant(math.log(1.0 / float(pc["temperature"]))))
        self.logit_scale.stop_gradient = not pc["learn_temperature"]

    def pool_weather(self, seq):
        """[B, T, E] -> [B, E] by ``pretrain.pool``."""
        if self.pool == "mean":
            return seq.mean(axis=1)
        if self.pool == "max":
            return seq.max(axis=1)
        query = self.cls.expand([paddle.shape(seq)[0], 1, self.width])
        pooled, _ = self.cls_attention(query, self.cls_norm(seq))
        return (query + pooled)[:, 0]

    def forward(self, weather_unique, day_index=None, tab=None, tab_mask=None, return_explain=False,
                weather_present=None):
        if isinstance(weather_unique, dict):     # model(batch), as OnsetNet
            weather_unique, day_index, tab, tab_mask, weather_present = unpack_batch(weather_unique)
        if day_index is None:
            raise InputError("contrastive pretraining takes shared-day batches (weather_unique, day_index)")
        self._check_inputs(weather_unique, day_index, tab, tab_mask)
        out = {"routing": {}}
        days = self.embed_pooled(weather_unique) if len(weather_unique.shape) == 2 else self.encode_days(weather_unique)[0]
        seq = self.temporal_encode(days, day_index, out)
        patient = self.patient_encode(tab, tab_mask, out).mean(axis=1)
        zw = F.normalize(self.weather_head(self.pool_weather(seq)), axis=-1)
        zp = F.normalize(self.patient_head(patient), axis=-1)
        scale = paddle.clip(paddle.exp(self.logit_scale), max=100.0)
        logits = scale * paddle.matmul(zp, zw, transpose_y=True)
        if not return_explain:
            return logits
        aux = [self.aux_loss_weight * r["aux_loss"] for r in out["routing"].values()]
        out.update({"patient_projection": zp, "weather_projection": zw, "logit_scale": scale, "similarity": logits,
                    "aux_loss": paddle.add_n(aux) if aux else paddle.zeros([], "float32")})
        return logits, out


@LOSSES.register
class InfoNCE(nn.Layer):
    """Symmetric InfoNCE over a batch's [B, B] similarity logits: the mean of the cross-entropy
    of each row (patient -> weather) and each column (weather -> patient), the diagonal being
    the matching pairs. Labels are not used."""

    uses_explain = True

    def __init__(self, prevalence=None, **unused):
        super().__init__()

    def forward(self, explain, labels=None):
        logits = explain["similarity"]
        target = paddle.arange(logits.shape[0], dtype="int64")
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
