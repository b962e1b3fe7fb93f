"""The model's defaults exist once (ppeye/core/model_config.py): the base YAML shows them (its
block is written from the dataclasses), the layers' own defaults agree with them, and a bad key
or value is refused when the config is loaded, naming its full path."""
import copy
import dataclasses
import inspect

import numpy as np
import pytest
import yaml

from ppeye.core.config import load_config
from ppeye.core.errors import ConfigError, InputError
from ppeye.core.model_config import Backbone, Missing, ModelConfig, Tabular
from ppeye.core.paddle_env import import_paddle
from ppeye.modeling import OnsetNet
from ppeye.modeling.outputs import EXPLAIN_KEYS
from ppeye.modeling.backbones.resnet3d import ResNet3D
from ppeye.modeling.layers.missing import MissingModalities
from ppeye.modeling.layers.tabm import TabM
from ppeye.tools import model_defaults

BASE = "configs/_base_/model/onset_net.yaml"
paddle = import_paddle()


def test_the_base_yaml_shows_exactly_the_dataclass_defaults(capsys):
    assert model_defaults.main(["--check", "--file", BASE]) == 0
    assert yaml.safe_load(open(BASE))["model"] == ModelConfig().to_dict()


def test_a_stale_base_yaml_is_found_and_rewritten(tmp_path, capsys):
    stale = tmp_path / "onset_net.yaml"
    stale.write_text(open(BASE).read().replace("  width: 512", "  width: 256"))
    assert model_defaults.main(["--check", "--file", str(stale)]) == 1
    assert "differs" in capsys.readouterr().out
    assert model_defaults.main(["--write", "--file", str(stale)]) == 0
    assert stale.read_text() == open(BASE).read()
    (tmp_path / "no_markers.yaml").write_text("model:\n  width: 3\n")
    with pytest.raises(SystemExit, match="needs one line starting"):
        model_defaults.main(["--write", "--file", str(tmp_path / "no_markers.yaml")])


def _same(layer_default, config_default):
    if isinstance(layer_default, tuple):
        layer_default = list(layer_default)
    if layer_default is None and isinstance(config_default, dict):      # a section switched off, or all zero
        return config_default.get("enabled") is False or not any(config_default.values())
    return layer_default == config_default


@pytest.mark.parametrize("layer, section", [(ResNet3D, Backbone), (TabM, Tabular), (MissingModalities, Missing)])
def test_the_layers_own_defaults_agree_with_the_config(layer, section):
    config = section().to_dict()
    checked = 0
    for name, p in inspect.signature(layer.__init__).parameters.items():
        if name in config and p.default is not inspect.Parameter.empty and name != "blocks":
            assert _same(p.default, config[name]), f"{layer.__name__}({name}={p.default!r}) vs config {config[name]!r}"
            checked += 1
    assert checked >= 4


def test_sections_are_filled_from_the_defaults_and_typed():
    cfg = ModelConfig.from_dict({"width": 64, "temporal": {"afno": {"enabled": False}}, "moe": {"capacity_factor": 2}})
    assert (cfg.width, cfg.temporal.afno.enabled, cfg.temporal.transformer.layers) == (64, False, 2)
    assert cfg.moe.capacity_factor == 2.0 and cfg.temporal.transformer.moe.enabled and not cfg.temporal.afno.moe.enabled
    for bad, match in (({"width": True}, "model.width must be an integer, got True"),
                       ({"fusion": {"branch_heads": 1}}, "model.fusion.branch_heads must be true or false, got 1"),
                       ({"backbone": {"pool": "max"}}, "model.backbone.pool must be one of avg, positional"),
                       ({"tabular": {"dropuot": 0.2}}, "model.tabular: unknown key 'dropuot' \\(did you mean dropout\\?\\)"),
                       ({"missing": {"blocks": 3}}, "model.missing.blocks must be a string or a list, got 3"),
                       ({"temporal": []}, "model.temporal must be a mapping")):
        with pytest.raises(InputError, match=match):
            ModelConfig.from_dict(bad)


def test_a_bad_model_value_fails_when_the_config_is_loaded():
    with pytest.raises(ConfigError, match="model.backbone.pool must be one of avg, positional, got 'max'"):
        load_config("configs/demo.yaml", ["model.backbone.pool=max"])
    with pytest.raises(ConfigError, match="model.fusion: unknown key 'head' \\(did you mean heads"):
        load_config("configs/demo.yaml", ["+model.fusion.head=4"])
    load_config("configs/full.yaml")


SHAPES = {"T": 6, "C": 2, "D": 2, "H": 4, "W": 4, "F": 5}
TINY = {"width": 8, "backbone": {"depth": 10, "base_width": 2, "strides": [1, 2, 1, 1], "pool_heads": 2},
        "temporal": {"transformer": {"heads": 2, "layers": 1}, "afno": {"num_blocks": 2}},
        "tabular": {"k": 2, "hidden": 8}, "fusion": {"heads": 2},
        "day_reconstruction": {"grid": [1, 2, 2]}, "missing": {"blocks": [[0, 1], [3]]},
        "patient_offset": {"weather": {"lag_edges": [2, 4]}}}


def _variants(cls=ModelConfig, path=()):
    """Every switch of the model (each boolean flipped from its default, each choice of a string
    taken), found from the dataclasses, so a switch added later is covered without editing this."""
    out = []
    default = cls()
    for f in dataclasses.fields(cls):
        here = path + (f.name,)
        if "section" in f.metadata:
            out += _variants(f.metadata["section"], here)
        elif isinstance(getattr(default, f.name), bool):
            out.append((here, not getattr(default, f.name)))
        elif f.metadata.get("choices"):
            out += [(here, c) for c in f.metadata["choices"] if c != getattr(default, f.name)]
    return out


def _settings(path, value):
    """TINY with ``path`` set to ``value`` and the section it sits in switched on."""
    out = copy.deepcopy(TINY)
    node = out
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    if path[-1] != "enabled" and "enabled" in _section_fields(path[:-1]):
        node["enabled"] = True
    return out


def _section_fields(path):
    cls = ModelConfig
    for part in path:
        cls = next(f.metadata["section"] for f in dataclasses.fields(cls) if f.name == part)
    return {f.name for f in dataclasses.fields(cls)}


VARIANTS = _variants()


def test_the_switches_are_all_found():
    names = {".".join(p) for p, _ in VARIANTS}
    assert len(VARIANTS) >= 29
    assert {"weather_branch", "patient_offset.enabled", "missing.enabled", "backbone.summary.enabled",
            "tabular.moe.enabled", "backbone.pool", "day_reconstruction.target"} <= names


@pytest.mark.parametrize("path, value", VARIANTS, ids=[f"{'.'.join(p)}={v}" for p, v in VARIANTS])
def test_every_model_switch_builds_a_model_that_trains(path, value):
    """forward, backward and finite gradients for every switch (as timm tests every model)."""
    paddle.seed(0)
    model = OnsetNet(SHAPES, **_settings(path, value))
    model.train()
    rng = np.random.default_rng(0)
    weather = paddle.to_tensor(rng.normal(size=(9, 2, 2, 4, 4)).astype("float32"))
    day_index = paddle.to_tensor(rng.integers(0, 9, (3, 6)).astype("int64"))
    tab = paddle.to_tensor(rng.normal(size=(3, 5)).astype("float32"))
    batch = {"weather_unique": weather, "day_index": day_index, "tab": tab, "tab_mask": paddle.ones([3, 5])}
    logits, ex = model(batch, return_explain=True)          # the loader's batch dict, as the trainer calls it
    assert logits.shape == [3, 4] and np.isfinite(logits.numpy()).all()
    assert set(ex) <= EXPLAIN_KEYS, f"undeclared explain keys {sorted(set(ex) - EXPLAIN_KEYS)} (ppeye/modeling/outputs.py)"
    model.eval()
    np.testing.assert_array_equal(model(batch).numpy(), model(weather, day_index, tab, paddle.ones([3, 5])).numpy())
    model.train()
    (logits.sum() + ex["aux_loss"]).backward()
    grads = [p.grad.numpy() for p in model.parameters() if p.grad is not None]
    assert grads and all(np.isfinite(g).all() for g in grads)
