"""One process at a time in a run directory (ppeye/core/runlock.py)."""
import json
import os
import socket
import subprocess
import sys

import pytest

from ppeye.core.errors import InputError
from ppeye.core.runlock import LOCK_FILE, DirectoryLock


class Log:
    def __init__(self):
        self.lines = []

    def warning(self, text):
        self.lines.append(text)


def dead_pid():
    """The id of a process that has exited."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_second_holder_is_refused_while_the_first_runs_and_admitted_after(tmp_path):
    with DirectoryLock(str(tmp_path), "training"):
        holder = json.load(open(tmp_path / LOCK_FILE))
        assert holder["pid"] == os.getpid() and holder["what"] == "training"
        other = subprocess.run([sys.executable, "-c", "from ppeye.core.runlock import DirectoryLock; "
                                f"DirectoryLock({str(tmp_path)!r}, 'training').acquire()"],
                               capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
        assert other.returncode != 0
        assert f"is in use by another training (process {os.getpid()} on this host" in other.stderr
    assert not (tmp_path / LOCK_FILE).exists()                  # released
    with DirectoryLock(str(tmp_path), "training"):
        pass


def test_a_stale_lock_of_a_dead_process_is_replaced_and_reported(tmp_path):
    pid = dead_pid()
    (tmp_path / LOCK_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "what": "training",
                                                  "started": "2026-01-01 00:00:00"}))
    log = Log()
    with DirectoryLock(str(tmp_path), "training", log):
        assert json.load(open(tmp_path / LOCK_FILE))["pid"] == os.getpid()
    assert len(log.lines) == 1 and f"stale lock of a training (process {pid}" in log.lines[0]


def test_a_lock_from_another_host_is_refused_with_how_to_clear_it(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"host": "elsewhere", "pid": 1, "what": "training",
                                                  "started": "2026-01-01 00:00:00"}))
    with pytest.raises(InputError, match="on host elsewhere.*if that run is gone, remove"):
        DirectoryLock(str(tmp_path), "training").acquire()
    assert (tmp_path / LOCK_FILE).exists()                      # not ours to remove
    (tmp_path / LOCK_FILE).write_text("{not json")
    with pytest.raises(InputError, match="cannot be read"):
        DirectoryLock(str(tmp_path), "training").acquire()
