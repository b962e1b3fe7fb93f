"""How the tools start training processes.

On GPU machines one process per visible GPU; on CPU one single-thread gloo process per core,
measured 2.3x the samples/s of one two-thread process (bench/bench_train.py). Nothing here
imports Paddle, so a driver script (tools/demo.py) stays light.
"""
import os
import subprocess


def process_count(processes="auto"):
    """How many training processes ``processes`` means: ``auto`` is one per visible GPU, else one
    per CPU core; ``inline`` is this process."""
    if processes == "inline":
        return 1
    if processes == "auto":
        return _visible_gpus() or os.cpu_count() or 1
    return int(processes)


# the launcher's own lines: its 40-line configuration dump at INFO, and Paddle's warning, on import,
# that ccache (for compiling C++ extensions, which ppeye never does) is absent. Rank 0's output and
# the launcher's warnings and errors still reach the log; every rank's output is in log_dir.
LAUNCH_QUIET = ["-W", "ignore:No ccache found:UserWarning"]


def launch_prefix(log_dir, processes="auto"):
    """The ``python -m paddle.distributed.launch`` arguments for ``processes`` (empty for one),
    the launcher's own INFO lines left out (``--log_level WARNING``).

    >>> launch_prefix("out/launch", 2)[-6:]
    ['--nproc_per_node', '2', '--log_dir', 'out/launch', '--log_level', 'WARNING']
    """
    processes = process_count(processes)
    if processes < 2:
        return []
    return [*LAUNCH_QUIET, "-m", "paddle.distributed.launch", "--nproc_per_node", str(processes), "--log_dir", log_dir,
            "--log_level", "WARNING"]


def _visible_gpus():
    """GPUs CUDA_VISIBLE_DEVICES allows, without importing Paddle (0 when none are listed or
    nvidia-smi is absent)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines()) if out.returncode == 0 else 0


def add_processes_arg(parser, per):
    """``--processes`` for a tool that trains several runs (``per``: "trial", "baseline")."""
    import argparse

    def parse(text):
        if text in ("auto", "inline"):
            return text
        if text.isdigit() and int(text) > 0:
            return int(text)
        raise argparse.ArgumentTypeError(f"expected auto, inline or a positive number of processes, got {text!r}")

    parser.add_argument("--processes", default="auto", type=parse,
                        help=f"training processes per {per}: auto (one per GPU, or per CPU core), a number, "
                             f"or inline (this process)")
