"""OnsetNet: eye-disease onset from a year of local weather and a patient's features.

::

    weather_unique [U, C, D, H, W] -- ResNet3D --> [U, 8b] -- Linear --> day embeddings [U, E]
        -- gather by day_index [B, T] --> [B, T, E] + day positions
        |-- temporal Transformer (own attention, FFN or MoE)      } concatenated, Linear -> [B, T, E]
        '-- AFNO blocks over T (Fourier filter, MLP or MoE)        }   (or whichever is on)
    tab [B, F] (+ tab_mask) -- TabM --> k member embeddings [B, k, h] -- projection --> [B, k, E]
    bi-directional cross-attention fusion --> [B, k, E] -- Linear --> member logits [B, k, 4]
    logits [B, 4] = logit(mean over members of sigmoid(member logits))

Shared days: a batch grouped by site and nearby dates needs far fewer distinct (site, day)
volumes U than B * T; each is encoded once and gathered, so its gradient is the sum over the
windows that use it (identical to encoding the expanded batch; tested).

Branches switch off in the config for ablations and baselines: ``weather_branch: false``
(patient-only: a learned token stands in for the weather sequence), ``patient_branch: false``
(weather-only: a learned patient token, k = 1), ``temporal.transformer.enabled`` /
``temporal.afno.enabled``, and ``moe.enabled: false`` turns every mixture of experts off.

The day reconstruction (``model.day_reconstruction``) and the patient offset
(``model.patient_offset``) are described, with why they exist, in docs/model.md.
"""
from ..core.errors import InputError
from ..core.model_config import ModelConfig
from ..core.paddle_env import import_paddle
from ..core.registry import MODELS
from ..data.ukb.fields import DISEASES
from .backbones.resnet3d import ResNet3D
from .inputs import check_inputs, unpack_batch
from .layers.afno import AFNOBlock
from .layers.day_decoder import DayDecoder
from .layers.fusion import CrossAttentionFusion
from .layers.lag_head import LagHead
from .layers.missing import MissingModalities
from .layers.moe import MoE, build_ffn
from .layers.tabm import BatchEnsembleLinear, TabM
from .layers.transformer import TemporalTransformer, build_positions
from .layers.weather_offset import WeatherOffset

paddle = import_paddle()
nn = paddle.nn
F = paddle.nn.functional


@MODELS.register
class OnsetNet(nn.Layer):
    """The model of ``configs/_base_/model/onset_net.yaml``; ``input_shapes`` from ``ppeye.input_shapes``.

    ``forward(weather_unique, day_index, tab, tab_mask=None, return_explain=False)`` returns
    logits [B, 4], or ``(logits, explain)``; see ``forward``.
    """

    def __init__(self, input_shapes, num_classes=len(DISEASES), **settings):
        super().__init__()
        cfg = self.config = ModelConfig.from_dict(dict(settings, type="OnsetNet"))
        width, missing = cfg.width, cfg.missing
        if not (cfg.weather_branch or cfg.patient_branch):
            raise InputError("model: weather_branch and patient_branch cannot both be off")
        self.shapes = {k: int(v) for k, v in input_shapes.items()}
        self.width, self.num_classes = width, num_classes
        self.weather_branch, self.patient_branch = cfg.weather_branch, cfg.patient_branch
        self.aux_loss_weight = float(cfg.moe.aux_loss_weight)

        def moe_cfg(place):
            return dict(place.to_dict(), enabled=cfg.moe.enabled and place.enabled,
                        gate_noise=cfg.moe.gate_noise, capacity_factor=cfg.moe.capacity_factor)

        t = self.shapes["T"]
        if self.weather_branch:
            bb = cfg.backbone.to_dict()
            del bb["type"]
            self.backbone = ResNet3D(self.shapes["C"], **bb, input_size=(self.shapes["D"], self.shapes["H"], self.shapes["W"]))
            self.day_proj = nn.Linear(self.backbone.features, width)
            # the coarse summary's own projection, zero at the start: a run from a pretrained day
            # encoder (pretrained without it) starts as that encoder and learns what to add
            self.summary_proj = (nn.Linear(self.backbone.summary_width, width, bias_attr=False,
                                           weight_attr=nn.initializer.Constant(0.0))
                                 if self.backbone.summary_width else None)
            tr, af = cfg.temporal.transformer, cfg.temporal.afno
            self.positions = build_positions(cfg.temporal.positions, t, width)
            self.transformer = None
            if tr.enabled:
                self.transformer = TemporalTransformer(width, tr.layers, tr.heads, tr.ffn_ratio, tr.dropout,
                                                       moe_cfg(tr.moe), tr.recompute)
            self.afno = None
            if af.enabled:
                self.afno = nn.LayerList([
                    AFNOBlock(width, af.num_blocks, af.sparsity_threshold, af.hard_thresholding_fraction,
                              af.mlp_ratio, af.dropout, moe_cfg(af.moe))
                    for _ in range(af.layers)])
            self.temporal_mix = nn.Linear(2 * width, width) if (self.transformer and self.afno) else None
            self.day_decoder, self.day_weight = self._day_reconstruction(cfg.day_reconstruction, width)
        else:
            self.null_weather = self.create_parameter([1, 1, width], default_initializer=nn.initializer.TruncatedNormal(std=0.02))

        if self.patient_branch:
            tb = cfg.tabular.to_dict()
            del tb["type"], tb["moe"]
            tab_moe = moe_cfg(cfg.tabular.moe)
            self.k = int(tb["k"])
            self.tabular = TabM(self.shapes["F"], **tb)
            if tab_moe["enabled"]:
                self.patient_proj = build_ffn(tb["hidden"], tb["hidden"], width, tb["dropout"], tab_moe)
            else:
                self.patient_proj = BatchEnsembleLinear(tb["hidden"], width, self.k)
        else:
            self.k = 1
            self.null_patient = self.create_parameter([1, 1, width], default_initializer=nn.initializer.TruncatedNormal(std=0.02))

        self.missing = None
        if missing.enabled:
            if not (self.weather_branch and self.patient_branch):
                raise InputError("model.missing needs both branches (weather_branch and patient_branch on)")
            if isinstance(missing.blocks, str):
                raise InputError(f"model.missing.blocks must be resolved to lists of feature indices before the "
                                 f"model is built (ppeye.build_model does it), got {missing.blocks!r}")
            ms = missing.to_dict()
            del ms["enabled"]
            self.missing = MissingModalities(width, self.k, self.shapes["F"], **ms)

        fu, po = cfg.fusion, cfg.patient_offset
        self.fusion = CrossAttentionFusion(width, fu.heads, fu.dropout, fu.hidden_ratio, moe_cfg(fu.moe))
        self.patient_offset = None
        if po.enabled:
            if not self.patient_branch:
                raise InputError("model.patient_offset needs the patient features: patient_branch must be on")
            # fitted before training (ppeye.engine.offset.fit_patient_offset, which reads c_grid), then frozen
            self.offset_c_grid = [float(c) for c in po.c_grid]
            frozen = paddle.ParamAttr(trainable=False, initializer=nn.initializer.Constant(0.0))
            self.patient_offset = nn.Linear(self.shapes["F"], num_classes, weight_attr=frozen,
                                            bias_attr=paddle.ParamAttr(trainable=False,
                                                                       initializer=nn.initializer.Constant(0.0)))
        self.weather_offset = None
        if po.enabled and po.weather.enabled:      # + the day features over lag bins, in the same frozen regression
            if not self.weather_branch:
                raise InputError("model.patient_offset.weather needs the weather branch (weather_branch on)")
            self.offset_weather_penalty = [float(r) for r in po.weather.penalty]
            if not self.offset_weather_penalty or min(self.offset_weather_penalty) <= 0:
                raise InputError(f"model.patient_offset.weather.penalty must be positive numbers, got {po.weather.penalty!r}")
            self.weather_offset = WeatherOffset(self.backbone.out_channels, self.shapes["T"],
                                                po.weather.lag_edges, num_classes)
        # with a patient offset the network is a residual on it and starts at zero (the classifier
        # and branch heads; the lag head always does): the model begins as the fitted patient-only
        # regression and learns only what it can add
        zero = nn.initializer.Constant(0.0) if po.enabled else None
        self.classifier = nn.Linear(width, num_classes, weight_attr=zero, bias_attr=zero)
        # branch heads: each branch's own linear logits added to the fused ones (the additive main
        # effects a late fusion has; the fusion then carries what the two say together)
        self.patient_head = (nn.Linear(width, num_classes, weight_attr=zero, bias_attr=zero)
                             if fu.branch_heads and self.patient_branch else None)
        self.weather_head = (nn.Linear(width, num_classes, weight_attr=zero, bias_attr=zero)
                             if fu.branch_heads and self.weather_branch else None)
        # lag head: a distributed-lag read-out of the day embeddings themselves (before the
        # temporal encoder), added to the logits; see layers/lag_head.py
        self.lag_head = (LagHead(width, self.shapes["T"], num_classes)
                         if fu.lag_head and self.weather_branch else None)

    def _day_reconstruction(self, rec, width):
        if not rec.enabled:
            return None, 0.0
        grid, limit = rec.grid, [self.shapes[k] for k in ("D", "H", "W")]
        if (len(grid) != 3 or not all(isinstance(g, int) and 1 <= g <= n for g, n in zip(grid, limit))):
            raise InputError(f"model.day_reconstruction.grid must be 3 integers (hours, rows, cols) between 1 and the "
                             f"day's {limit}, got {grid!r}")
        if rec.weight < 0:
            raise InputError(f"model.day_reconstruction.weight must be a number >= 0, got {rec.weight!r}")
        return DayDecoder(width, self.shapes["C"], grid, rec.target, rec.standardise), float(rec.weight)

    def day_reconstruction_loss(self, days, weather_unique):
        """The day decoder's mean squared error for day embeddings [U, E] of volumes [U, C, D, H, W]
        (``ppeye.modeling.layers.day_decoder``; the target carries no gradient)."""
        return self.day_decoder.loss(days, weather_unique)

    def _check_inputs(self, weather_unique, day_index, tab, tab_mask):
        widths = None
        if self.weather_branch:
            p = self.backbone.out_channels
            widths = p if self.day_decoder is None else (p, p + self.day_decoder.pooled_size)
        check_inputs(self.shapes, widths,
                     weather_unique, day_index, tab, tab_mask)

    # ------------------------------------------------------------------ branches
    def encode_days(self, weather_unique):
        """[U, C, D, H, W] -> (day embeddings [U, E], last ResNet feature map)."""
        pooled, fmap = self.backbone(weather_unique, return_features=True)
        return self.embed_pooled(pooled), fmap

    def _split_cache_rows(self, rows):
        """Cache rows [U, P] or [U, P + the day decoder's pooled volume] -> (features, pooled volumes or None)."""
        p = self.backbone.out_channels
        return (rows, None) if rows.shape[1] == p else (rows[:, :p], rows[:, p:])

    def pool_days(self, weather_unique):
        """The ResNet's pooled output [U, P] of volumes [U, C, D, H, W]; pooled features (a cache
        row, or this method's own output) pass through. ``forward`` on the result computes what it
        computes on the volumes, so several forwards of one batch (a modality dropped in each) run
        the ResNet once."""
        if len(weather_unique.shape) == 2:
            return weather_unique
        return self.backbone(weather_unique, return_features=True)[0]

    def embed_pooled(self, pooled):
        """The ResNet's output [U, out_channels] (or a cache row of it) -> day embeddings [U, E]."""
        if self.summary_proj is None:
            return self.day_proj(pooled)
        p = self.backbone.features
        return self.day_proj(pooled[:, :p]) + self.summary_proj(pooled[:, p:])

    def temporal_encode(self, days, day_index, out):
        """Day embeddings [U, E] gathered by day_index [B, T] -> weather sequence [B, T, E]."""
        seq = paddle.gather(days, day_index.reshape([-1]).astype("int64")).reshape([-1, self.shapes["T"], self.width])
        seq = self.positions(seq)
        branches = []
        if self.transformer is not None:
            h, attentions, routings = self.transformer(seq)
            out["temporal_attention"] = attentions
            for i, r in enumerate(routings):
                if r is not None:
                    out["routing"][f"transformer.{i}"] = r
            branches.append(h)
        if self.afno is not None:
            h, spectra = seq, []
            for i, block in enumerate(self.afno):
                h, spectrum, r = block(h)
                spectra.append(spectrum)
                if r is not None:
                    out["routing"][f"afno.{i}"] = r
            out["afno_spectrum"] = spectra
            branches.append(h)
        if len(branches) == 2:
            return self.temporal_mix(paddle.concat(branches, axis=-1))
        return branches[0] if branches else seq

    def patient_encode(self, tab, tab_mask, out):
        """tab [B, F] -> member embeddings [B, k, E]."""
        members = self.tabular(tab, tab_mask)
        if isinstance(self.patient_proj, MoE):
            emb, routing = self.patient_proj(members)
            out["routing"]["tabular"] = routing
            return emb
        return self.patient_proj(members)

    # ------------------------------------------------------------------ forward
    def forward(self, weather_unique, day_index=None, tab=None, tab_mask=None, return_explain=False,
                weather_present=None):
        """Risks of the 4 diseases: ``model(batch)`` or ``model(batch, return_explain=True)`` with a
        batch dict of tensors (``ppeye.modeling.inputs.unpack_batch``), or the tensors themselves.

        Args:
            weather_unique: [U, C, D, H, W] distinct (site, day) volumes, or a plain
                [B, T, C, D, H, W] batch when ``day_index`` is None, or [U, P] pooled ResNet
                features of the volumes from a day-feature cache (``ppeye.engine.features``;
                the ResNet is then skipped: frozen-encoder training).
            day_index: [B, T] int64, row of weather_unique for each day of each window.
            tab: [B, F] patient features (imputed, standardised); tab_mask: [B, F], 1 = observed.
            return_explain: also return the dict described below.
            weather_present: [B] 1.0 / 0.0, whose weather window is usable (``model.missing``;
                None: everyone's).

        Returns logits [B, 4] (sigmoid = mean member probability), or ``(logits, explain)``
        with ``member_logits`` [B, k, 4], ``aux_loss`` (weighted MoE losses and, with
        ``model.missing.reconstruct``, the weighted reconstruction loss; scalar), ``presence``
        [B, 2 + blocks] and ``modality_weights`` [B, 2] (patient, weather) with ``model.missing``,
        ``temporal_attention`` (list per layer of [B, heads, T, T]), ``patient_to_weather``
        [B, heads, k, T], ``weather_to_patient`` [B, heads, 1, k], ``afno_spectrum`` (list per
        block of {"in", "out"} [B, T//2+1]), ``routing`` ({place: MoE routing}),
        ``embedding`` [B, E] (fused, member mean), ``patient_embedding`` and
        ``weather_embedding`` [B, E], ``day_embeddings`` [U, E] and ``weather_features``
        (the ResNet's last feature map, for Grad-CAM). Keys of switched-off parts are absent;
        every key is declared in ``ppeye.modeling.outputs.Explain``.
        """
        if isinstance(weather_unique, dict):
            weather_unique, day_index, tab, tab_mask, weather_present = unpack_batch(weather_unique)
        if not self.weather_branch:
            weather_unique = day_index = None   # patient-only: the weather inputs may be None
        elif day_index is None:
            if len(weather_unique.shape) != 6:
                raise InputError(f"without day_index, weather must be [B, T, C, D, H, W], got {list(weather_unique.shape)}")
            b, t = weather_unique.shape[0], weather_unique.shape[1]
            day_index = paddle.arange(b * t, dtype="int64").reshape([b, t])
            weather_unique = weather_unique.reshape([-1] + list(weather_unique.shape[2:]))
        self._check_inputs(weather_unique, day_index, tab, tab_mask)
        days = pooled = fmap = coarse = None
        if self.weather_branch:
            if len(weather_unique.shape) == 2:    # pooled ResNet features from a day-feature cache
                pooled, coarse = self._split_cache_rows(weather_unique)
            else:
                pooled, fmap = self.backbone(weather_unique, return_features=True)
            days = self.embed_pooled(pooled)
        result = self.forward_days(days, day_index, tab, tab_mask, return_explain, weather_present, pooled=pooled)
        if return_explain and self.weather_branch:
            result[1]["day_embeddings"] = days
            if fmap is not None:
                result[1]["weather_features"] = fmap
            if (fmap is not None or coarse is not None) and self.day_decoder is not None and self.training:
                loss = (self.day_reconstruction_loss(days, weather_unique) if coarse is None
                        else self.day_decoder.loss_from_pooled(days, coarse))
                result[1]["day_reconstruction_loss"] = loss
                result[1]["aux_loss"] = result[1]["aux_loss"] + self.day_weight * loss
        return result

    def forward_days(self, days, day_index, tab, tab_mask=None, return_explain=False, weather_present=None,
                     pooled=None):
        """Everything after the ResNet: from day embeddings [U, E] (``encode_days``; None when the
        weather branch is off) to logits, as ``forward``. Training from cached day embeddings
        (the frozen-encoder mode) calls this directly. ``pooled`` [U, P], the ResNet's output the
        embeddings were made from, is needed by ``model.patient_offset.weather`` only."""
        out = {"routing": {}}
        batch = paddle.shape(tab)[0]
        if self.weather_branch:
            seq = self.temporal_encode(days, day_index, out)
        else:
            seq = self.null_weather.expand([batch, 1, self.width])
        if self.patient_branch:
            patient = self.patient_encode(tab, tab_mask, out)
        else:
            patient = self.null_patient.expand([batch, 1, self.width])

        weights, flag_embedding = None, None
        if self.missing is not None:
            present = weather_present if weather_present is not None else paddle.ones([batch], "float32")
            mask = tab_mask if tab_mask is not None else paddle.ones_like(tab)
            seq, patient, weights, flag_embedding = self.missing(seq, patient, present, mask, out)
        fused, maps, routing = self.fusion(patient, seq, modality_weights=weights)
        if flag_embedding is not None:
            fused = fused + flag_embedding
        out.update(maps)
        if routing is not None:
            out["routing"]["fusion"] = routing
        member_logits = self.classifier(fused)                                  # [B, k, 4]
        if self.patient_head is not None:
            member_logits = member_logits + self.patient_head(patient)          # per member
        if self.weather_head is not None:
            member_logits = member_logits + self.weather_head(seq.mean(axis=1)).unsqueeze(1)
        if self.patient_offset is not None:                                     # frozen patient-only logits
            member_logits = member_logits + self.patient_offset(tab).unsqueeze(1)
        if self.weather_offset is not None:                                     # its weather part, frozen too
            if pooled is None:
                raise InputError("model.patient_offset.weather reads the ResNet's pooled day features: pass pooled "
                                 "to forward_days")
            member_logits = member_logits + self.weather_offset(pooled, day_index, weather_present).unsqueeze(1)
        if self.lag_head is not None:
            raw = paddle.gather(days, day_index.reshape([-1]).astype("int64")).reshape([-1, self.shapes["T"], self.width])
            lagged = self.lag_head(raw)                                         # [B, 4], from the days before positions
            if self.missing is not None:                                        # absent or dropped weather adds nothing
                lagged = lagged * out["presence"][:, :1]
            member_logits = member_logits + lagged.unsqueeze(1)
        if self.k == 1:
            logits = member_logits[:, 0]
        else:
            p = paddle.clip(F.sigmoid(member_logits.astype("float32")).mean(axis=1), 1e-7, 1 - 1e-7)
            # log(p / (1 - p)), not log(p) - log(1 - p): Paddle Inference 3.3.1 with oneDNN
            # computes the latter wrongly (off by up to ~1.8; measured), the former exactly.
            logits = paddle.log(p / (1 - p))
        if not return_explain:
            return logits
        aux = [self.aux_loss_weight * r["aux_loss"] for r in out["routing"].values()]
        reconstruction = self.missing.loss(out) if self.missing is not None else None
        if reconstruction is not None:
            aux.append(reconstruction)
        out["aux_loss"] = paddle.add_n(aux) if aux else paddle.zeros([], "float32")
        out["member_logits"] = member_logits
        out["embedding"] = fused.mean(axis=1)
        out["patient_embedding"] = patient.mean(axis=1)
        out["weather_embedding"] = seq.mean(axis=1)
        return logits, out

    # ------------------------------------------------------------------ reporting
    def parameter_counts(self):
        """Trainable parameters per branch, and the total."""
        groups = {"backbone": ["backbone", "day_proj", "summary_proj", "day_decoder"], "temporal": ["positions", "transformer", "afno", "temporal_mix"],
                  "tabular": ["tabular", "patient_proj"], "fusion": ["fusion", "classifier", "patient_head", "weather_head", "lag_head"],
                  "null_tokens": ["null_weather", "null_patient"]}
        counts = {g: 0 for g in groups}
        for name, p in self.named_parameters():
            if p.stop_gradient:  # BatchNorm running statistics
                continue
            head = name.split(".")[0]
            group = next((g for g, heads in groups.items() if head in heads), "other")
            counts[group] = counts.get(group, 0) + int(p.size)
        counts["total"] = sum(counts.values())
        return counts
