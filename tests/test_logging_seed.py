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


def test_a_progress_line_comes_when_the_log_has_been_quiet_not_only_when_one_loop_has():
    import time

    from ppeye.core import logger as logger_module
    from ppeye.core.progress import Heartbeat

    class Log:
        def __init__(self):
            self.lines = []

        def info(self, text):
            self.lines.append(text)

    # short loops one after another (the splits a prediction runs through): the first one after
    # 20 quiet seconds of the whole log speaks, though it started 2 s ago
    clock = iter([100.0, 101.0, 102.0])
    log = Log()
    beat = Heartbeat(log, "val batches", total=3, every=20.0, clock=lambda: next(clock), quiet_since=lambda: 75.0)
    beat.step()
    beat.step()
    assert log.lines == ["val batches: 1/3 (33%), 1 s, eta 2 s"]
    # a loop that starts right after another line stays quiet
    clock = iter([100.0, 101.0, 102.0])
    beat = Heartbeat(log, "test batches", total=3, every=20.0, clock=lambda: next(clock), quiet_since=lambda: 95.0)
    beat.step()
    beat.step()
    assert len(log.lines) == 1
    # the real clock follows the process's log: a line written now resets the quiet time
    get_logger("ppeye.test").info("a line")
    assert time.perf_counter() - logger_module.last_line_at() < 5


def test_a_heartbeat_speaks_during_an_item_longer_than_its_interval_and_stops_with_its_block():
    """A full-size batch takes minutes on a CPU: with ``with Heartbeat(...)`` the log says the
    loop is alive while one item runs, and nothing more once the block has ended."""
    import threading

    from ppeye.core.progress import Heartbeat

    lines, spoke = [], threading.Event()

    class Log:
        def info(self, text):
            lines.append(text)
            spoke.set()

    quiet = [0.0]                                  # the process's log: quiet since long ago
    with Heartbeat(Log(), "predicting 13 people, batches", total=2, every=0.05,
                   quiet_since=lambda: quiet[0]) as beat:
        beat.step()                                # the first batch done (its own line), the second "running"
        assert any(line.startswith("predicting 13 people, batches: 1/2 (50%)") for line in lines)
        spoke.clear()
        assert spoke.wait(30), "no line while the second batch ran"
    assert lines[-1].startswith("predicting 13 people, batches: 1/2 done, ") and lines[-1].endswith("still running")
    ended = len(lines)
    threading.Event().wait(0.3)
    assert len(lines) == ended                     # the thread stopped with the block
    # items that keep finishing leave the talking to step(): the pulse waits for one long item
    clock = iter([100.0, 105.0])
    beat = Heartbeat(Log(), "batches", total=9, every=20.0, clock=lambda: next(clock), quiet_since=lambda: 0.0)
    beat.step()                                    # at 105: the step speaks (quiet since 0)
    assert not beat.pulse_due(118.0)               # 13 s into the next item, 13 s after a line
    assert beat.pulse_due(125.5)                   # 20.5 s into it
    beat.last = 0.0                                # the log quiet, but an item finished 5 s ago
    beat.last_step = 120.5
    assert not beat.pulse_due(125.5)

