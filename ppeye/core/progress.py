"""A progress line at least every ``every`` seconds in a long loop, and none in a fast one.

The logs of a run (``demo.log``, ``log.txt``) should never go quiet for long: a reader cannot
tell a slow stage from a hung one. :class:`Heartbeat` logs ``<what>: <done>/<total> (<pct>%),
<elapsed>, eta <remaining>`` when the log has been quiet for ``every`` seconds (no line from
this heartbeat since its start, nor any other line of the process: ``ppeye.core.logger``), so a
loop that ends sooner writes nothing, and a run of short loops after a quiet spell still does.
Used as a context manager (``with Heartbeat(...) as beat:``) it also speaks *during* an item
that takes longer than ``every`` (a batch of full-size day volumes through the ResNet on a CPU
takes minutes): a thread logs ``<what>: <done>/<total> done, <elapsed>, the next still running``
whenever the log has been quiet that long.
"""
import threading
import time

from .logger import last_line_at


class Heartbeat:
    """``beat = Heartbeat(log, "day pretraining epoch 2/8", total=56)``; ``beat.step()`` per item.

    >>> class Log:
    ...     lines = []
    ...     def info(self, text): self.lines.append(text)
    >>> clock = iter([0.0, 5.0, 21.0, 30.0, 45.0])
    >>> beat = Heartbeat(Log(), "batches", total=4, every=20.0, clock=lambda: next(clock))
    >>> for _ in range(4): beat.step()
    >>> Log.lines
    ['batches: 2/4 (50%), 21 s, eta 21 s', 'batches: 4/4 (100%), 45 s, eta 0 s']
    """

    def __init__(self, log, what, total=None, every=20.0, clock=time.perf_counter, quiet_since=None):
        self.log, self.what, self.total, self.every, self.clock = log, what, total, float(every), clock
        self.start, self.last = clock(), float("-inf")
        self.last_step = self.start          # when the item now running began
        self.done = 0
        # when the process's log last wrote anything: ppeye's last line on the real clock; with
        # another clock (tests), this heartbeat's start
        self.quiet_since = quiet_since or (last_line_at if clock is time.perf_counter else (lambda: self.start))

    def __enter__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pulse, name="ppeye-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False

    def pulse_due(self, now):
        """Whether the pulse speaks at ``now``: one item has run for ``every`` seconds and the log
        has been quiet that long (items that keep finishing leave the talking to ``step``)."""
        return now - max(self.last, self.quiet_since(), self.last_step) >= self.every

    def _pulse(self):
        while not self._stop.wait(min(self.every, 1.0)):
            now = self.clock()
            if not self.pulse_due(now):
                continue
            self.last = now
            total = f"/{self.total}" if self.total else ""
            self.log.info(f"{self.what}: {self.done}{total} done, {now - self.start:.0f} s, the next still running")

    def step(self, n=1):
        self.done += n
        now = self.last_step = self.clock()
        if now - max(self.last, self.quiet_since()) < self.every:
            return
        self.last = now
        elapsed = now - self.start
        if self.total:
            eta = elapsed / max(self.done, 1) * max(self.total - self.done, 0)
            self.log.info(f"{self.what}: {self.done}/{self.total} ({100 * self.done / self.total:.0f}%), "
                          f"{elapsed:.0f} s, eta {eta:.0f} s")
        else:
            self.log.info(f"{self.what}: {self.done} done, {elapsed:.0f} s")
