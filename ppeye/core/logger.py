"""Logging for ppeye: one format, rank-aware, optionally to a file in the run directory.

Never log participant ids, raw feature rows or credentials: log counts and row numbers.
"""
import logging
import os
import sys
import time

_FORMAT = "[%(asctime)s] %(name)s %(levelname)s: %(message)s"
_DATEFMT = "%Y-%m-%d %H:%M:%S"


_last_line = [time.perf_counter()]


def last_line_at():
    """``time.perf_counter()`` when this process last wrote a log line (or imported this module):
    a progress line (``ppeye.core.progress.Heartbeat``) is due when the log has been quiet long."""
    return _last_line[0]


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time of the record (it may be redirected)."""

    def emit(self, record):
        _last_line[0] = time.perf_counter()
        super().emit(record)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _):
        pass


def get_logger(name="ppeye", output_dir=None, rank=None):
    """Return the ``ppeye`` logger (or a child), configured once per process.

    Only rank 0 logs INFO; other ranks log warnings and errors. With ``output_dir``
    a ``log.txt`` there receives the same lines (rank 0 only).
    """
    if rank is None:
        rank = int(os.environ.get("PADDLE_TRAINER_ID", os.environ.get("RANK", 0)))
    root = logging.getLogger("ppeye")
    if not getattr(root, "_ppeye_configured", False):
        handler = _StdoutHandler()
        handler.setFormatter(logging.Formatter(_FORMAT, _DATEFMT))
        root.addHandler(handler)
        root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
        root.propagate = False
        root._ppeye_configured = True
    if output_dir is not None and rank == 0:
        path = os.path.abspath(os.path.join(output_dir, "log.txt"))
        if not any(getattr(h, "baseFilename", None) == path for h in root.handlers):
            os.makedirs(output_dir, exist_ok=True)
            handler = logging.FileHandler(path)
            handler.setFormatter(logging.Formatter(_FORMAT, _DATEFMT))
            root.addHandler(handler)
    return root if name == "ppeye" else root.getChild(name.removeprefix("ppeye."))
