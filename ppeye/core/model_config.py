"""OnsetNet's settings: the one typed source of the model's defaults.

Every key of the ``model:`` config section is a field here, with its default, the types it takes
and one line on what it does. ``ModelConfig.from_dict`` fills what a section leaves out and
refuses an unknown key (naming the nearest ones) or a value of the wrong type, naming its full
path. ``configs/_base_/model/onset_net.yaml`` shows the same defaults to users: its ``model:``
block is written from here (``python -m ppeye.tools.model_defaults --write``; a test checks that
the file is up to date), so the YAML and the code cannot disagree.

>>> cfg = ModelConfig.from_dict({"width": 64, "temporal": {"afno": {"enabled": False}}})
>>> cfg.width, cfg.temporal.afno.enabled, cfg.temporal.transformer.layers
(64, False, 2)
>>> ModelConfig.from_dict({"fusion": {"head": 4}})
Traceback (most recent call last):
...
ppeye.core.errors.InputError: model.fusion: unknown key 'head' (did you mean heads, lag_head?); its keys: heads, dropout, hidden_ratio, branch_heads, lag_head, moe
"""
import copy
import dataclasses
import difflib
from dataclasses import dataclass, field

from .errors import InputError

NUMBER = (int, float)


def setting(default, doc, types=None, choices=None):
    """A field with its default, a one-line doc (or a tuple of lines) and what it accepts.

    ``types`` defaults to the default's own type (an int also accepted where a float is);
    ``choices`` limits a string to a few values."""
    meta = {"doc": doc, "types": types, "choices": choices}
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def section(cls, doc, flow=False, **overrides):
    """A nested section, with some of its defaults changed for this place (e.g. a MoE switched on)."""
    return field(default_factory=lambda: cls(**copy.deepcopy(overrides)),
                 metadata={"doc": doc, "section": cls, "flow": flow})


class Settings:
    """Validation and conversion shared by every section."""

    @classmethod
    def from_dict(cls, data, prefix="model"):
        if isinstance(data, cls):
            return copy.deepcopy(data)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InputError(f"{prefix} must be a mapping of settings, got {data!r}")
        known = [f.name for f in dataclasses.fields(cls)]
        values = {}
        for key, value in data.items():
            if key not in known:
                near = difflib.get_close_matches(str(key), known, n=3, cutoff=0.6)
                hint = f" (did you mean {', '.join(near)}?)" if near else ""
                raise InputError(f"{prefix}: unknown key {key!r}{hint}; its keys: {', '.join(known)}")
            values[key] = value
        out = cls()
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            path, value = f"{prefix}.{f.name}", values[f.name]
            if "section" in f.metadata:
                base = dataclasses.asdict(getattr(out, f.name))
                if value is not None and not isinstance(value, dict):
                    raise InputError(f"{path} must be a mapping of settings, got {value!r}")
                base.update(value or {})
                setattr(out, f.name, f.metadata["section"].from_dict(base, path))
            else:
                setattr(out, f.name, _checked(path, value, f))
        return out

    def to_dict(self):
        return dataclasses.asdict(self)


def _checked(path, value, f):
    default, meta = f.default if f.default is not dataclasses.MISSING else f.default_factory(), f.metadata
    types = meta["types"] or ((bool,) if isinstance(default, bool) else
                              (int,) if isinstance(default, int) else
                              NUMBER if isinstance(default, float) else (type(default),))
    ok = any(isinstance(value, t) if t is not None else value is None for t in types)
    if isinstance(value, bool) and bool not in types:
        ok = False
    if not ok:
        names = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
                 list: "a list", dict: "a mapping", None: "null"}
        wanted = " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))
        raise InputError(f"{path} must be {wanted}, got {value!r}")
    if meta["choices"] and value not in meta["choices"]:
        raise InputError(f"{path} must be one of {', '.join(meta['choices'])}, got {value!r}")
    if isinstance(default, float) and not isinstance(value, bool) and isinstance(value, int):
        value = float(value)
    return copy.deepcopy(value)


@dataclass
class MoEPlace(Settings):
    enabled: bool = setting(False, "a mixture of experts here (if model.moe.enabled)")
    num_experts: int = setting(4, "experts")
    top_k: int = setting(2, "experts per token")


@dataclass
class Summary(Settings):
    enabled: bool = setting(False, ("also output each variable average-pooled to grid (hours, rows, cols):",
                                    "fixed numbers beside the learned features, projected by their own",
                                    "zero-initialised layer (see resnet3d.py; docs/results.md)"))
    grid: list = setting([1, 4, 4], "(hours, rows, cols)")


@dataclass
class Backbone(Settings):
    type: str = setting("ResNet3D", "the day encoder", choices=("ResNet3D",))
    depth: int = setting(18, "10 | 18 | 34")
    base_width: int = setting(64, "channels of the first stage (64/128/256/512)")
    stem_stride: list = setting([1, 1, 1], "[d, h, w]; no max pool (see resnet3d.py for the choice)",
                                types=(list, int))
    strides: list = setting([1, 2, 2, 1], "per stage: 24x20x20 -> last map 6x5x5")
    recompute: bool = setting(False, "recompute block activations in backward (saves memory)")
    pool: str = setting("avg", "avg (global mean) | positional (keeps where: see resnet3d.py)",
                        choices=("avg", "positional"))
    pool_heads: int = setting(4, "positional: weighted means per day (embedding = heads x channels)")
    coords: bool = setting(False, "feed each cell's row/column to the stem (CoordConv; see resnet3d.py)")
    norm: str = setting("batch", ("batch | sync_batch (statistics over every GPU's batch in each step) |",
                                  "group (GroupNorm: no batch statistics; see resnet3d.py)"),
                        choices=("batch", "sync_batch", "group"))
    channels_last: bool = setting(False, ("convolutions on NDHWC (faster with half precision on GPUs; same",
                                          "numbers, same checkpoints; see resnet3d.py)"))
    summary: Summary = section(Summary, "a coarse summary of each day beside the learned features")


@dataclass
class DayReconstruction(Settings):
    enabled: bool = setting(False, ("auxiliary: each day embedding decodes a coarse copy of its volume",
                                    "(a dense training signal for the day encoder; see docs/model.md)"))
    weight: float = setting(1.0, "its loss weight")
    grid: list = setting([1, 4, 4], "(hours, rows, cols) per variable the input is average-pooled to")
    target: str = setting("volume", ("volume | deviation (each variable's pooled cells minus their box mean) |",
                                     "deviation_and_mean (those and the box mean of each variable and pooled hour)"),
                          choices=("volume", "deviation", "deviation_and_mean"))
    standardise: bool = setting(False, "scale each target to unit variance (statistics fitted on training days)")


@dataclass
class Transformer(Settings):
    enabled: bool = setting(True, "self-attention over the days")
    layers: int = setting(2, "blocks")
    heads: int = setting(8, "attention heads")
    ffn_ratio: int = setting(4, "feed-forward width / model width")
    dropout: float = setting(0.1, "dropout in attention and feed-forward")
    recompute: bool = setting(False, "recompute block activations in backward (saves memory)")
    moe: MoEPlace = section(MoEPlace, "its feed-forward as a mixture of experts", flow=True, enabled=True)


@dataclass
class AFNO(Settings):
    enabled: bool = setting(True, "Fourier token mixing over the days")
    layers: int = setting(1, "blocks")
    num_blocks: int = setting(8, "block-diagonal groups of the spectral weights")
    sparsity_threshold: float = setting(0.01, "soft-shrinkage of the filtered spectrum")
    hard_thresholding_fraction: float = setting(1.0, "fraction of the frequencies kept")
    mlp_ratio: int = setting(2, "MLP width / model width")
    dropout: float = setting(0.0, "dropout in the MLP")
    moe: MoEPlace = section(MoEPlace, "its MLP as a mixture of experts", flow=True)


@dataclass
class Temporal(Settings):
    positions: str = setting("learned", "learned | sinusoidal", choices=("learned", "sinusoidal"))
    transformer: Transformer = section(Transformer, "temporal Transformer (own attention; FFN or MoE)")
    afno: AFNO = section(AFNO, "AFNO blocks over the days (Fourier filter; MLP or MoE)")


@dataclass
class NumEmbeddings(Settings):
    enabled: bool = setting(False, "piecewise-linear embeddings of the features")
    bins: int = setting(16, "bins per feature")
    d_embedding: int = setting(8, "embedding size per feature")


@dataclass
class Tabular(Settings):
    type: str = setting("TabM", "the patient encoder", choices=("TabM",))
    variant: str = setting("tabm", "tabm | tabm-mini", choices=("tabm", "tabm-mini"))
    k: int = setting(32, "ensemble members")
    layers: int = setting(3, "blocks")
    hidden: int = setting(512, "width of the blocks")
    dropout: float = setting(0.1, "dropout in the blocks")
    use_mask: bool = setting(True, "feed the observed-value mask beside the imputed values")
    num_embeddings: NumEmbeddings = section(NumEmbeddings, "piecewise-linear embeddings", flow=True)
    moe: MoEPlace = section(MoEPlace, "MoE projection to the width", flow=True)


@dataclass
class Fusion(Settings):
    heads: int = setting(8, "cross-attention heads")
    dropout: float = setting(0.1, "dropout in the fusion")
    hidden_ratio: int = setting(2, "feed-forward width / model width")
    branch_heads: bool = setting(False, "+ each branch's own linear logits (patient members, mean weather token)")
    lag_head: bool = setting(False, "+ a distributed-lag read-out of the day embeddings (layers/lag_head.py)")
    moe: MoEPlace = section(MoEPlace, "its feed-forward as a mixture of experts", flow=True, enabled=True)


@dataclass
class OffsetWeather(Settings):
    enabled: bool = setting(False, ("+ the frozen ResNet's day features averaged over lag bins: a penalised",
                                    "distributed-lag read-out (layers/weather_offset.py)"))
    lag_edges: list = setting([7, 14, 28], ("the bins' last lags in days before the index date: [7, 14, 28]",
                                            "= days 1-7, 8-14, 15-28 and 29 to the window's start"))
    penalty: list = setting([1.0, 10.0, 100.0], ("its columns' L2 penalty relative to the patient columns',",
                                                 "chosen with C per disease on validation"))


@dataclass
class PatientOffset(Settings):
    enabled: bool = setting(False, ("add the logits of a logistic regression on the patient features, fitted",
                                    "before training and frozen; the network learns a residual on them"))
    c_grid: list = setting([0.001, 0.01, 0.1, 1.0, 10.0], "its C per disease, chosen on validation ROC-AUC")
    weather: OffsetWeather = section(OffsetWeather, "+ the weather in the same regression (needs the ResNet frozen)")


@dataclass
class ModalityDropout(Settings):
    weather: float = setting(0.0, "probability of dropping the weather")
    patient: float = setting(0.0, "probability of dropping the patient features")


@dataclass
class Missing(Settings):
    enabled: bool = setting(False, "presence flags, missing tokens, dropout, reconstruction, weighting")
    modality_dropout: ModalityDropout = section(ModalityDropout, "training only; never both for one person",
                                                flow=True)
    reconstruct: bool = setting(True, "cross-modal imputer in embedding space (+ reconstruction loss)")
    reconstruct_weight: float = setting(0.1, ("the embedding MSE starts several times the BCE",
                                              "(tiny data: first-epoch loss 5.1 at 1.0)"))
    weighting: bool = setting(True, "per-person modality weights in the fusion (reported)")
    blocks: str = setting("auto", "feature blocks missing together: auto (the cohort's) or index lists",
                          types=(str, list))


@dataclass
class MoE(Settings):
    enabled: bool = setting(True, "false switches every MoE off (ablation)")
    gate_noise: bool = setting(True, "noisy top-k gating in training")
    capacity_factor: float = setting(None, "null: no capacity limit; see ppeye/modeling/layers/moe.py",
                                     types=(int, float, None))
    aux_loss_weight: float = setting(0.01, "weight of the load-balancing loss")


@dataclass
class ModelConfig(Settings):
    type: str = setting("OnsetNet", "the registered model", choices=("OnsetNet",))
    width: int = setting(512, "embedding width of days, members and fusion")
    weather_branch: bool = setting(True, "false: patient-only model (ablation / baseline)")
    patient_branch: bool = setting(True, "false: weather-only model")
    backbone: Backbone = section(Backbone, "the day encoder: one 3D CNN per (site, day) volume")
    day_reconstruction: DayReconstruction = section(DayReconstruction, "auxiliary day decoder")
    temporal: Temporal = section(Temporal, "the year of day embeddings")
    tabular: Tabular = section(Tabular, "the patient features")
    fusion: Fusion = section(Fusion, "bi-directional cross-attention of weather and patient")
    patient_offset: PatientOffset = section(PatientOffset, "weather as a residual on a patient-only regression")
    missing: Missing = section(Missing, "missing modalities (ppeye/modeling/layers/missing.py)")
    moe: MoE = section(MoE, "shared by every MoE switched on above")
