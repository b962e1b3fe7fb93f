"""The command-line entry points of the lag-response over several runs (``tools/visualize.py
--what lag_response --runs``) and of the climate scenarios (``tools/simulate.py``)."""
import os

from .. import build_model
from ..core.device import select_device
from ..core.logger import get_logger
from ..data.dataset import OnsetDataset
from ..engine.checkpoint import load_weights, run_dir_of
from . import lag_response, scenario
from .truth import load_gt


def pooled_lag_response(cfg, runs, out_dir, split="test", max_people=None, log=None):
    """``tools/visualize.py --what lag_response --runs ...``: the lag-response of several runs of
    ``cfg`` (seeds) on the same people, pooled (:func:`ppeye.explain.lag_response.analyse`)."""
    log = log or get_logger("ppeye.explain")
    select_device(cfg.get("device", "auto"))
    models = []
    for run in runs:
        model = build_model(cfg)
        load_weights(model, run)
        models.append(model)
    ds = OnsetDataset(cfg, split)
    lag_response.check(cfg, ds)
    os.makedirs(out_dir, exist_ok=True)
    log.info(f"lag-response of {len(runs)} runs on {split} ({len(ds)} people)")
    return lag_response.analyse(cfg, models, ds, OnsetDataset(cfg, "train"), out_dir, gt=load_gt(cfg),
                                max_people=max_people, log=log)


def simulate_scenarios(cfg, out_dir=None, split="test", max_people=None, log=None):
    """``tools/simulate.py``: the scenarios of ``simulate`` on ``split`` with the model of
    ``cfg.weights`` (:func:`ppeye.explain.scenario.simulate`), to ``out_dir`` (default <run>/simulate)."""
    log = log or get_logger("ppeye.simulate")
    select_device(cfg.get("device", "auto"))
    model = build_model(cfg)
    checkpoint = load_weights(model, cfg["weights"])
    out_dir = out_dir or os.path.join(run_dir_of(checkpoint), "simulate")
    ds = OnsetDataset(cfg, split)
    scenario.settings(cfg, ds)                    # checked before anything is written
    os.makedirs(out_dir, exist_ok=True)
    log.info(f"scenarios on {split} ({len(ds)} people)")
    return scenario.simulate(cfg, model, ds, out_dir, log=log, max_people=max_people)

