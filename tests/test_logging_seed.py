"""Logging is rank-aware and can go to the run directory; seeding makes runs repeatable."""
import logging
import random

import numpy as np

from ppeye.core.logger import get_logger
from ppeye.core.seed import seed_everything


def test_logger_writes_to_the_run_directory(tmp_path, capsys):
    log = get_logger("ppeye.test", output_dir=str(tmp_path), rank=0)
    log.info("epoch 1 done")
    for h in logging.getLogger("ppeye").handlers:
        h.flush()
    assert "epoch 1 done" in (tmp_path / "log.txt").read_text()
    assert "ppeye.test INFO: epoch 1 done" in capsys.readouterr().out


def test_seed_everything_repeats_random_streams():
    seed_everything(7)
    a = (random.random(), np.random.rand())
    seed_everything(7)
    assert (random.random(), np.random.rand()) == a
