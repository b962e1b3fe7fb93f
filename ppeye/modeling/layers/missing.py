"""Missing modalities: presence flags, missing tokens, modality dropout, cross-modal
reconstruction and per-sample modality weights, between OnsetNet's encoders and its fusion.

Presence flags per person, ``[B, 2 + n_blocks]``: weather present (the whole window is in the
store; ``data.incomplete_weather: include`` keeps people without it), patient present (any
feature observed), and one flag per feature block (any feature of the block observed; blocks
are the features missing together, ``missingness_blocks.csv`` of the cohort stage).

- An absent modality's tokens are replaced by a learned *missing* embedding (weather: one
  token [E] for every day; patient: one per ensemble member), plus, when ``reconstruct`` is
  on, its embedding reconstructed from the present modality.
- Modality dropout (training only): each present modality is dropped with its probability,
  never both for the same person.
- Reconstruction (``reconstruct``): a residual MLP (a small cascade of residual autoencoder
  blocks) maps the mean patient embedding to the mean weather embedding and another the
  reverse; trained with a mean squared error to the true embedding on the people who have
  both (which includes those whose modality was dropped for training), with the encoders'
  outputs detached so that the loss trains the imputers and never the encoders.
- Modality weighting (``weighting``): per person, a softmax over (patient, weather) from the
  two mean embeddings and the flags; the fusion scales each modality's part of the joint
  representation by 2 x its weight (1 each when equal). Reported as ``modality_weights``.
- The flags are embedded and added to the fused embedding, so the classifier knows what was
  missing.
"""
from ...core.errors import InputError
from ...core.paddle_env import import_paddle

paddle = import_paddle()
nn = paddle.nn
F = paddle.nn.functional


class ResidualImputer(nn.Layer):
    """[B, E] -> [B, E]: ``depth`` residual blocks x + MLP(LN(x)), then a linear read-out."""

    def __init__(self, dim, depth=2, hidden_ratio=2):
        super().__init__()
        self.blocks = nn.LayerList([nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden_ratio * dim), nn.GELU(),
                                                  nn.Linear(hidden_ratio * dim, dim)) for _ in range(depth)])
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        for block in self.blocks:
            x = x + block(x)
        return self.out(x)


def _probability(name, value):
    p = float(value)
    if not 0.0 <= p <= 1.0:
        raise InputError(f"model.missing.modality_dropout.{name} must be a probability in [0, 1], got {value}")
    return p


class MissingModalities(nn.Layer):
    """See the module docstring. ``blocks``: lists of feature indices, one list per block."""

    def __init__(self, dim, k, num_features, blocks=(), modality_dropout=None, reconstruct=True,
                 reconstruct_weight=0.1, weighting=True):
        super().__init__()
        drop = dict(modality_dropout or {})
        unknown = sorted(set(drop) - {"weather", "patient"})
        if unknown:
            raise InputError(f"model.missing.modality_dropout: unknown modalities {unknown} (weather, patient)")
        self.p_weather = _probability("weather", drop.get("weather", 0.0))
        self.p_patient = _probability("patient", drop.get("patient", 0.0))
        self.dim, self.k = dim, k
        blocks = [list(b) for b in blocks]
        bad = [i for b in blocks for i in b if not 0 <= int(i) < num_features]
        if bad:
            raise InputError(f"model.missing.blocks: feature indices {bad[:5]} outside 0..{num_features - 1}")
        membership = paddle.zeros([num_features, max(len(blocks), 1)], "float32")
        for j, b in enumerate(blocks):
            for i in b:
                membership[int(i), j] = 1.0
        self.num_blocks = len(blocks)
        self.register_buffer("membership", membership)
        self.num_flags = 2 + self.num_blocks
        init = nn.initializer.TruncatedNormal(std=0.02)
        self.missing_weather = self.create_parameter([1, 1, dim], default_initializer=init)
        self.missing_patient = self.create_parameter([1, k, dim], default_initializer=init)
        self.flag_proj = nn.Linear(self.num_flags, dim)
        self.reconstruct_weight = float(reconstruct_weight)
        self.to_weather = ResidualImputer(dim) if reconstruct else None
        self.to_patient = ResidualImputer(dim) if reconstruct else None
        self.gate = nn.Linear(2 * dim + self.num_flags, 2) if weighting else None

    def flags(self, weather_present, tab_mask):
        """[B, 2 + n_blocks] presence flags (1 present)."""
        observed = (tab_mask > 0).astype("float32")
        patient = (observed.sum(axis=1, keepdim=True) > 0).astype("float32")
        cols = [weather_present.reshape([-1, 1]).astype("float32"), patient]
        if self.num_blocks:
            cols.append((paddle.matmul(observed, self.membership) > 0).astype("float32"))
        return paddle.concat(cols, axis=1)

    def drop(self, flags):
        """Modality dropout (training only): new weather and patient presence [B] each."""
        w, p = flags[:, 0], flags[:, 1]
        if not self.training or (self.p_weather == 0 and self.p_patient == 0):
            return w, p
        drop_w = (paddle.rand(w.shape) < self.p_weather).astype("float32") * w
        drop_p = (paddle.rand(p.shape) < self.p_patient).astype("float32") * p
        both = drop_w * drop_p                           # never both: keep the patient then
        drop_p = drop_p - both
        return w - drop_w, p - drop_p

    def forward(self, seq, patient, weather_present, tab_mask, out):
        """(seq [B, T, E], patient [B, k, E]) with absent modalities filled in; records ``flags``,
        ``modality_weights`` (or None), ``reconstruction_loss`` in ``out``."""
        flags = self.flags(weather_present, tab_mask)
        w, p = self.drop(flags)
        w3, p3 = w.reshape([-1, 1, 1]), p.reshape([-1, 1, 1])
        seq_mean, patient_mean = seq.mean(axis=1), patient.mean(axis=1)
        fill_w = self.missing_weather
        fill_p = self.missing_patient
        if self.to_weather is not None:
            # reconstructions from the modality that is there (after dropout). Inputs and targets
            # are detached: the reconstruction loss trains the imputers only. Through the encoders
            # it would pull both embeddings towards whatever the other modality can predict,
            # down to constants when the modalities share little (measured: a collapsed demo model)
            w_hat = self.to_weather(patient_mean.detach())
            p_hat = self.to_patient(seq_mean.detach())
            both = flags[:, 0] * flags[:, 1]                # truly both present: the training pairs
            err = ((w_hat - seq_mean.detach()) ** 2).mean(axis=1) + ((p_hat - patient_mean.detach()) ** 2).mean(axis=1)
            out["reconstruction_loss"] = (err * both).sum() / paddle.clip(both.sum(), min=1.0)
            fill_w = fill_w + (w_hat * p.reshape([-1, 1])).unsqueeze(1)
            fill_p = fill_p + (p_hat * w.reshape([-1, 1])).unsqueeze(1)
        seq = seq * w3 + fill_w * (1 - w3)
        patient = patient * p3 + fill_p * (1 - p3)
        used = paddle.concat([w.unsqueeze(1), p.unsqueeze(1), flags[:, 2:]], axis=1)
        out["presence"] = used
        weights = None
        if self.gate is not None:
            weights = F.softmax(self.gate(paddle.concat([patient.mean(axis=1), seq.mean(axis=1), used], 1)), axis=-1)
        out["modality_weights"] = weights                   # [B, 2]: patient, weather
        return seq, patient, weights, self.flag_proj(used).unsqueeze(1)

    def loss(self, out):
        rec = out.get("reconstruction_loss")
        return None if rec is None else self.reconstruct_weight * rec
