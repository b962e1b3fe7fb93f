"""Where Paddle runs: the device (``auto``: a GPU when Paddle has CUDA and sees one, else the CPU)
and the distributed context (fleet, when asked for or when launched by fleetrun / launch)."""
import contextlib
import io
import math
import os
import sys
import warnings

from .errors import ConfigError
from .paddle_env import import_paddle

paddle = import_paddle()


def resolve_device(name="auto"):
    """'auto' -> 'gpu' when Paddle has CUDA and sees a GPU, else 'cpu'; a GPU asked for but
    absent is an error."""
    has_gpu = paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    if name in (None, "auto"):
        name = "gpu" if has_gpu else "cpu"
    if name.startswith("gpu") and not has_gpu:
        raise ConfigError(f"device: {name} was asked for but Paddle sees no GPU; use device: auto or cpu")
    return name


def select_device(name="auto"):
    """Set Paddle's device by ``resolve_device``'s rule; returns its name."""
    name = resolve_device(name)
    paddle.set_device(name)
    return name


def init_distributed(cfg):
    """(world, rank): start fleet when asked for or when launched by fleetrun/launch."""
    launched = int(os.environ.get("PADDLE_TRAINERS_NUM", "1")) > 1
    if not (cfg.get("fleet") or launched):
        return 1, 0
    from paddle.distributed import fleet

    if not getattr(init_distributed, "done", False):
        # fleet.init prints a "Modified FLAGS detected" banner of Paddle 3's own runtime defaults
        # (FLAGS_enable_pir_in_executor) and warns that the rank "is not in group _default_pg":
        # three lines of noise per launched run. Anything else it prints is passed on.
        captured = io.StringIO()
        with warnings.catch_warnings(), contextlib.redirect_stderr(captured):
            warnings.filterwarnings("ignore", message="Current global rank .* is not in group")
            fleet.init(is_collective=True)
        rest = _without_flags_banner(captured.getvalue())
        if rest:
            print(rest, file=sys.stderr)
        init_distributed.done = True
    return fleet.worker_num(), fleet.worker_index()


def _without_flags_banner(text):
    r"""``text`` without Paddle's "Modified FLAGS detected" block (its rule lines and FLAGS(...) lines).

    >>> _without_flags_banner("== Modified FLAGS detected ==\nFLAGS(name='F', current_value=True, default_value=False)\n"
    ...                       "=====\nkept\n")
    'kept'
    """
    keep = [line for line in text.splitlines()
            if not ("Modified FLAGS detected" in line or line.startswith("FLAGS(name=") or set(line) == {"="})]
    return "\n".join(keep)


def average_batchnorm_statistics(model, world):
    """Average BatchNorm running statistics over ranks: each rank tracks them on its own
    batches (gradients are all-reduced, buffers are not), and the checkpoint should hold
    the statistics of the whole training set, the same on every rank."""
    if world == 1:
        return
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.layer.norm._BatchNormBase):
            for buf in (layer._mean, layer._variance):
                total = buf.clone()
                paddle.distributed.all_reduce(total)
                buf.set_value(total / world)


def agreed_loss(value, world):
    """``value`` (a step's loss), or NaN on every rank when it is not finite on any: ranks must take
    the same decision about a bad loss (skip or stop), or the collective calls desynchronise."""
    if world > 1:
        flag = paddle.to_tensor([0.0 if math.isfinite(value) else 1.0])
        paddle.distributed.all_reduce(flag)
        return value if flag.item() == 0 else float("nan")
    return value


def sync_batchnorm(model, device, world, log=None):
    """``model.backbone.norm: sync_batch``: every BatchNorm of ``model`` as a SyncBatchNorm
    (statistics over all ranks' batches in each step; same parameters and state-dict keys, so
    checkpoints load either way). With one rank that is plain BatchNorm and the model is returned
    as it is; several ranks need GPUs (Paddle 3.3.1 registers no CPU kernel for it)."""
    if world == 1:
        return model
    if not str(device).startswith("gpu"):
        raise ConfigError(f"model.backbone.norm: sync_batch over {world} CPU processes: Paddle has no CPU kernel "
                          f"for SyncBatchNorm. Use norm: batch (each rank's statistics, averaged at each epoch's end) "
                          f"or group, or train on GPUs")
    converted = paddle.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if log is not None:
        count = sum(isinstance(layer, paddle.nn.SyncBatchNorm) for layer in converted.sublayers())
        log.info(f"train.sync_batchnorm: {count} BatchNorm layers synchronised over {world} ranks")
    return converted
