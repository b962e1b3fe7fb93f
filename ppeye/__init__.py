"""ppeye: eye-disease onset from ERA5-Land weather and UK Biobank features, in PaddlePaddle.

The stable public interface::

    cfg = ppeye.load_config("configs/demo.yaml", ["train.epochs=2"])
    shapes = ppeye.input_shapes(cfg)     # {"T", "C", "D", "H", "W", "F"}
    model = ppeye.build_model(cfg)
"""
import csv
import json
import os

from .core.config import load_config
from .core.errors import ConfigError
from .core.registry import MODELS
from .data.era5.variables import resolve_variables

__version__ = "0.1.0"


def input_shapes(cfg):
    """The sizes the model takes: ``T`` days, ``C`` variables, ``D`` hours, ``H x W`` cells, ``F`` features."""
    data = cfg["data"]
    box = data["box"]
    if not (isinstance(box, (list, tuple)) and len(box) == 2):
        raise ConfigError(f"data.box must be [height, width], got {box!r}")
    shapes = {
        "T": int(data["window_days"]),
        "C": len(resolve_variables(data["variables"])),
        "D": int(data["hours"]),
        "H": int(box[0]),
        "W": int(box[1]),
        "F": int(data["num_features"]),
    }
    bad = [k for k, v in shapes.items() if v < 1]
    if bad:
        raise ConfigError(f"input sizes must be positive: {', '.join(f'{k}={shapes[k]}' for k in bad)}")
    if 24 % shapes["D"]:
        raise ConfigError(f"data.hours must divide 24 (1, 2, 3, 4, 6, 8, 12, 24), got {shapes['D']}")
    return shapes


def build_model(cfg):
    """The model described by ``cfg.model``, built through the MODELS registry."""
    # imported here, not above: `import ppeye` (configs, input sizes) must not import Paddle
    from . import modeling  # noqa: F401  (registers the models)

    section = cfg["model"]
    missing = section.get("missing") or {}
    if missing.get("enabled") and missing.get("blocks", "auto") == "auto":
        section = dict(section, missing=dict(missing, blocks=feature_blocks(cfg)))
    return MODELS.build(section, **{"input_shapes": input_shapes(cfg)})


def feature_blocks(cfg):
    """The cohort's blocks of features missing together, as lists of feature indices (read from
    ``<work_dir>/missingness_blocks.csv`` and ``features/tab_stats.json``)."""
    work = cfg["data"]["work_dir"]
    paths = [os.path.join(work, "missingness_blocks.csv"), os.path.join(work, "features", "tab_stats.json")]
    for path in paths:
        if not os.path.isfile(path):
            raise ConfigError(f"model.missing.blocks: auto needs {path} (tools/preprocess.py --stage ukb and "
                              f"--stage impute), or give the blocks as lists of feature indices")
    columns = json.load(open(paths[1]))["columns"]
    position = {c: i for i, c in enumerate(columns)}
    with open(paths[0]) as f:
        blocks = [[position[c] for c in row["columns"].split() if c in position] for row in csv.DictReader(f)]
    return [b for b in blocks if b]


__all__ = ["load_config", "build_model", "input_shapes", "__version__"]
