"""The one place ppeye imports Paddle: threads set first, import-time noise silenced."""
import os
import warnings


def import_paddle(num_threads=None):
    """Import and return ``paddle``.

    Paddle sets ``OMP_NUM_THREADS=1`` on import unless it is already set, so it is set
    here first: to ``num_threads`` if given, else to the machine's cores (a user's own
    setting always wins). The import-time "No ccache found" warning (about compiling
    C++ extensions, which ppeye does not do) and BatchNorm's per-call "we now always track
    global mean and variance" are silenced; other warnings pass through.
    """
    if "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(num_threads or os.cpu_count() or 1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No ccache found")
        import paddle
    # Paddle's BatchNorm warns on every training call that it tracks running statistics
    # (which it always does): pure noise in training logs.
    warnings.filterwarnings("ignore", message="When training, we now always track global mean")
    return paddle
