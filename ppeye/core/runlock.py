"""One process at a time in a directory: ``with DirectoryLock(path, "training"): ...``.

Two trainings in one run directory used to both run, moving each other's checkpoints aside and
writing the same ``epoch_000N``; the first run's weights then existed nowhere. The lock is a file
``.ppeye.lock`` created with ``O_CREAT | O_EXCL`` (atomic on local and NFS v3+ file systems)
holding the owner's host, process id and start time. A second process is refused with those
details. A lock left by a process that no longer runs on this host is stale: it is replaced,
and the log says so. A lock from another host cannot be checked from here: it is refused, and
the message says how to remove it once that run is known to be gone.
"""
import json
import os
import socket
import time

from .errors import InputError

LOCK_FILE = ".ppeye.lock"


def alive(pid):
    """Whether process ``pid`` runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:           # exists, owned by someone else
        return True
    return True


class DirectoryLock:
    """Hold ``<path>/.ppeye.lock`` for the ``with`` block (``what``: the job, for messages).
    ``log``: where a replaced stale lock is reported (a logger; default: nowhere)."""

    def __init__(self, path, what="job", log=None):
        self.path, self.what, self.log = path, what, log
        self.file = os.path.join(path, LOCK_FILE)
        self.held = False

    def _owner(self):
        try:
            return json.load(open(self.file))
        except (OSError, ValueError):
            return None

    def acquire(self):
        os.makedirs(self.path, exist_ok=True)
        me = {"host": socket.gethostname(), "pid": os.getpid(), "what": self.what,
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(3):
            try:
                fd = os.open(self.file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is None:                  # being written this instant, or unreadable
                    time.sleep(0.2)
                    owner = self._owner()
                if owner is None:
                    raise InputError(f"{self.file} exists but cannot be read: another {self.what} may be using "
                                     f"{self.path}; remove the file if none is")
                same_host = owner.get("host") == me["host"]
                if same_host and owner.get("pid") == me["pid"]:
                    raise InputError(f"{self.path} is already locked by this process ({owner.get('what')})")
                if same_host and not alive(int(owner.get("pid", -1))):
                    os.remove(self.file)
                    if self.log is not None:
                        self.log.warning(f"{self.path}: removed the stale lock of a {owner.get('what')} "
                                         f"(process {owner.get('pid')}, started {owner.get('started')}) "
                                         f"that no longer runs")
                    continue
                where = "this host" if same_host else f"host {owner.get('host')}"
                raise InputError(f"{self.path} is in use by another {owner.get('what')} (process {owner.get('pid')} "
                                 f"on {where}, started {owner.get('started')}): wait for it, or choose another "
                                 f"directory" + ("" if same_host else f"; if that run is gone, remove {self.file}"))
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise InputError(f"could not lock {self.path}: {self.file} keeps reappearing")

    def release(self):
        if self.held:
            owner = self._owner()
            if owner and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
                os.remove(self.file)
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
