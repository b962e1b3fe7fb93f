"""Training a variant of a config as its own run, for the tools that train several models
(``tools/compare.py``, ``tools/sweep.py``).

``processes="auto"`` trains in a child process under ``paddle.distributed.launch`` (see
:func:`ppeye.core.launch.launch_prefix`); ``1`` trains in a single child process;
``"inline"`` trains in this process (tests, or a tool itself run under fleetrun).
"""
import os
import subprocess
import sys

from ..core.config import apply_overrides, save_config
from ..core.errors import PpeyeError
from ..core.launch import launch_prefix
from ..core.paddle_env import child_environment


class TrainingFailed(PpeyeError):
    pass


def train_variant(cfg, output_dir, run_name, overrides=(), processes="auto", log=None):
    """Train ``cfg`` with ``overrides`` (``key=value`` strings, validated like ``-o``) into
    ``<output_dir>/<run_name>`` with validation every epoch; returns ``(run_dir, cfg)``."""
    import copy

    variant = copy.deepcopy(cfg)
    apply_overrides(variant, list(overrides))
    variant["output_dir"], variant["run_name"] = output_dir, run_name   # set, not parsed: any path works
    variant["train"]["eval"] = True
    variant["weights"] = None                 # a variant trains from scratch (or from its ``pretrained``)
    run_dir = os.path.join(output_dir, run_name)
    os.makedirs(output_dir, exist_ok=True)
    if processes == "inline":
        from .trainer import Trainer

        Trainer(variant).train()
        return run_dir, variant
    config_path = os.path.join(output_dir, f"{run_name}.yaml")
    save_config(variant, config_path)
    launch = launch_prefix(os.path.join(run_dir, "launch"), processes)
    from ..tools import train as entry          # inside the package: there after a normal install too

    argv = [sys.executable, *launch, os.path.abspath(entry.__file__), "-c", config_path]
    if log:
        log.info(f"{run_name}: python {' '.join(argv[1:])}")
    code = subprocess.call(argv, env=child_environment())
    if code != 0:
        where = f"{run_dir}/log.txt" + (f" and {run_dir}/launch/" if launch else "")
        raise TrainingFailed(f"training {run_name} failed (exit {code}): see {where}")
    return run_dir, variant

