"""The one place ppeye imports Paddle: threads set first, import-time noise silenced."""
import contextlib
import io
import os
import sys
import warnings

from .errors import ConfigError

SET_BY_PPEYE = "PPEYE_SET_OMP_NUM_THREADS"      # marks an OMP_NUM_THREADS that ppeye chose, not the user


def child_environment():
    """The environment for a child process that picks its own threads: ours without the
    OMP_NUM_THREADS ppeye set (``paddle.distributed.launch`` then gives each of its processes
    one thread, as when started from a shell; a user's own setting is kept)."""
    env = dict(os.environ)
    if env.pop(SET_BY_PPEYE, None):
        env.pop("OMP_NUM_THREADS", None)
    return env


def import_paddle(num_threads=None):
    """Import and return ``paddle``.

    Paddle sets ``OMP_NUM_THREADS=1`` on import unless it is already set, so it is set
    here first: to ``num_threads`` if given, else to the machine's cores (a user's own
    setting always wins). The import-time "No ccache found" warning (about compiling
    C++ extensions, which ppeye does not do), the OMP_NUM_THREADS > 1 notice and BatchNorm's
    per-call "we now always track global mean and variance" are silenced; other warnings
    pass through.
    """
    if "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(num_threads or os.cpu_count() or 1)
        os.environ[SET_BY_PPEYE] = "1"
    # Paddle's C++ INFO lines (e.g. each launched process's "create libuv server" and
    # "Successfully connected" from its TCP store) are read at load time from GLOG_minloglevel:
    # warnings and errors still print; a user's own setting wins
    os.environ.setdefault("GLOG_minloglevel", "1")
    # Paddle prints a two-line "OMP_NUM_THREADS set to N, not 1 ... USE OMP_NUM_THREADS WISELY"
    # to stderr on import whenever N > 1, which is our deliberate, measured choice; anything
    # else it prints is passed on.
    captured = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stderr(captured):
        warnings.filterwarnings("ignore", message="No ccache found")
        try:
            import paddle
        except ImportError as e:
            raise ConfigError(f"PaddlePaddle is not installed ({e}): on a CPU, pip install 'ppeye[cpu]' (or "
                              f"paddlepaddle); on GPUs, paddlepaddle-gpu 3.x from Paddle's own package index, e.g. "
                              f"pip install paddlepaddle-gpu -i https://www.paddlepaddle.org.cn/packages/stable/cu126/ "
                              f"(README, 'Paddle on GPUs'). The PyPI package named 'paddle' is another project.") from None
    rest = [line for line in captured.getvalue().splitlines()
            if not line.startswith(("WARNING: OMP_NUM_THREADS set to", "PLEASE USE OMP_NUM_THREADS WISELY"))]
    if rest:
        print("\n".join(rest), file=sys.stderr)
    # Paddle's BatchNorm warns on every training call that it tracks running statistics
    # (which it always does): pure noise in training logs.
    warnings.filterwarnings("ignore", message="When training, we now always track global mean")
    return paddle


@contextlib.contextmanager
def native_stdout_filtered(drop=("ReduceMeanCheckIfOneDNNSupport",)):
    """Drop the lines Paddle's C++ code prints straight to file descriptor 1 that start with
    ``drop`` (oneDNN's kernel-selection debug line on the first run of a predictor); other
    lines are written on."""
    sys.stdout.flush()
    saved = os.dup(1)
    import tempfile

    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().decode(errors="replace").splitlines(keepends=True)
                    if not line.startswith(drop)]
            if kept:
                sys.stdout.write("".join(kept))
                sys.stdout.flush()
