"""A progress line at least every ``every`` seconds in a long loop, and none in a fast one.

The logs of a run (``demo.log``, ``log.txt``) should never go quiet for long: a reader cannot
tell a slow stage from a hung one. :class:`Heartbeat` logs ``<what>: <done>/<total> (<pct>%),
<elapsed>, eta <remaining>`` when ``every`` seconds have passed since its start or its last
line, so a loop that ends sooner writes nothing.
"""
import time


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

    def __init__(self, log, what, total=None, every=20.0, clock=time.perf_counter):
        self.log, self.what, self.total, self.every, self.clock = log, what, total, float(every), clock
        self.start = self.last = clock()
        self.done = 0

    def step(self, n=1):
        self.done += n
        now = self.clock()
        if now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.start
        if self.total:
            eta = elapsed / max(self.done, 1) * max(self.total - self.done, 0)
            self.log.info(f"{self.what}: {self.done}/{self.total} ({100 * self.done / self.total:.0f}%), "
                          f"{elapsed:.0f} s, eta {eta:.0f} s")
        else:
            self.log.info(f"{self.what}: {self.done} done, {elapsed:.0f} s")
