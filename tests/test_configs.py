"""The shipped configs are complete and describe the sizes of DESIGN.md."""
import os

import pytest

import ppeye
from conftest import ROOT

SECTIONS = ["data", "synthetic", "loader", "model", "loss", "optimizer", "scheduler", "train",
            "device", "seed", "output_dir", "weights", "use_vdl", "fleet"]


@pytest.mark.parametrize("name", ["demo", "full", "pretrain", "demo_pretrain"])
def test_leaf_configs_have_every_section(name):
    cfg = ppeye.load_config(os.path.join(ROOT, "configs", f"{name}.yaml"))
    missing = [s for s in SECTIONS if s not in cfg]
    assert not missing


def test_full_config_is_the_paper_size_model():
    cfg = ppeye.load_config(os.path.join(ROOT, "configs", "full.yaml"))
    assert ppeye.input_shapes(cfg) == {"T": 365, "C": 50, "D": 24, "H": 20, "W": 20, "F": 205}
    assert cfg.model.width == 512 and cfg.model.backbone.depth == 18
    assert len(cfg.data.labels) == 4


def test_demo_config_is_small():
    cfg = ppeye.load_config(os.path.join(ROOT, "configs", "demo.yaml"))
    s = ppeye.input_shapes(cfg)
    assert s["T"] * s["C"] * s["D"] * s["H"] * s["W"] < 365 * 50 * 24 * 20 * 20 / 200  # >= 200x less weather per person
    assert cfg.model.width <= 128


def test_input_shapes_validates_sizes():
    cfg = ppeye.load_config(os.path.join(ROOT, "configs", "demo.yaml"), ["data.hours=7"])
    with pytest.raises(ppeye.ConfigError, match="data.hours must divide 24"):
        ppeye.input_shapes(cfg)
    cfg = ppeye.load_config(os.path.join(ROOT, "configs", "demo.yaml"), ["data.variables=[t2m, nope]"])
    with pytest.raises(ppeye.ConfigError, match="unknown ERA5-Land variable 'nope'"):
        ppeye.input_shapes(cfg)


def test_build_model_builds_onset_net_with_the_configured_sizes():
    import ppeye.modeling

    cfg = ppeye.load_config(os.path.join(ROOT, "configs", "demo.yaml"),
                            ["model.width=32", "model.backbone.base_width=4", "model.tabular.k=2"])
    model = ppeye.build_model(cfg)
    assert isinstance(model, ppeye.modeling.OnsetNet)
    assert model.shapes == ppeye.input_shapes(cfg)
    assert model.classifier.weight.shape == [32, 4]
