"""Checkpoints: one directory per saved epoch, written atomically, plus pointer files.

``<run>/checkpoints/epoch_0007/`` holds ``model.pdparams``, ``optimizer.pdopt`` (optimizer and
scheduler) and ``state.json`` (epoch, step, best metric, early-stopping counters, the config
fingerprint). Each is written in a temporary directory that is renamed into place only when
complete, and ``latest.json`` / ``best.json`` (also written atomically) point at a directory
only after it exists, so a kill at any moment leaves the previous checkpoint loadable.
Older epoch directories are pruned to ``keep`` (never the best).
"""
import json
import os
import shutil

from ..core.errors import PpeyeError
from ..core.io import atomic_directory, atomic_write
from ..core.paddle_env import import_paddle

paddle = import_paddle()

MODEL_FILE, OPT_FILE, STATE_FILE = "model.pdparams", "optimizer.pdopt", "state.json"


class CheckpointError(PpeyeError, ValueError):
    """A checkpoint that cannot be used for this model or run."""


def save_checkpoint(ckpt_root, epoch, model, optimizer, state, best=False, keep=3):
    """Save epoch ``epoch``; returns its directory."""
    name = f"epoch_{epoch:04d}"
    path = os.path.join(ckpt_root, name)
    with atomic_directory(path, overwrite=True) as tmp:
        paddle.save(model.state_dict(), os.path.join(tmp, MODEL_FILE))
        if optimizer is not None:
            paddle.save(optimizer.state_dict(), os.path.join(tmp, OPT_FILE))
        with open(os.path.join(tmp, STATE_FILE), "w") as f:
            json.dump(state, f, indent=1, sort_keys=True)
    _point(ckpt_root, "latest", name)
    if best:
        _point(ckpt_root, "best", name)
    _prune(ckpt_root, keep)
    return path


def _point(root, which, name):
    with atomic_write(os.path.join(root, f"{which}.json")) as f:
        json.dump({"checkpoint": name}, f)


def _pointed(root, which):
    p = os.path.join(root, f"{which}.json")
    return json.load(open(p))["checkpoint"] if os.path.isfile(p) else None


def _prune(root, keep):
    if not keep:
        return
    names = sorted(n for n in os.listdir(root) if n.startswith("epoch_") and os.path.isdir(os.path.join(root, n)))
    protected = {_pointed(root, "best"), _pointed(root, "latest")}
    for n in names[:-keep]:
        if n not in protected:
            shutil.rmtree(os.path.join(root, n), ignore_errors=True)


def resolve(path, prefer=("best", "latest")):
    """A checkpoint directory from a run directory, a checkpoints folder, a checkpoint
    directory or a ``model.pdparams`` file (for a run: ``best``, else ``latest``; resuming
    prefers ``latest``)."""
    if os.path.isfile(path) and path.endswith(".pdparams"):
        return os.path.dirname(path)
    for root in (os.path.join(path, "checkpoints"), path):
        for which in prefer:
            name = _pointed(root, which) if os.path.isdir(root) else None
            if name:
                return os.path.join(root, name)
    if os.path.isfile(os.path.join(path, MODEL_FILE)):
        return path
    raise CheckpointError(f"{path}: no checkpoint here (expected a run directory, its checkpoints/ folder, "
                          f"an epoch_NNNN directory or a {MODEL_FILE} file)")


def load_weights(model, path, prefer=("best", "latest")):
    """Load model weights from ``path`` (see ``resolve``); shape or name mismatches are errors."""
    ckpt = resolve(path, prefer)
    state = paddle.load(os.path.join(ckpt, MODEL_FILE))
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k}: checkpoint {list(state[k].shape)} vs model {list(own[k].shape)}"
             for k in own if k in state and list(state[k].shape) != list(own[k].shape)]
    if missing or unexpected or wrong:
        detail = "; ".join(filter(None, [
            f"missing {len(missing)} (e.g. {missing[:3]})" if missing else "",
            f"unexpected {len(unexpected)} (e.g. {unexpected[:3]})" if unexpected else "",
            f"shape mismatches: {wrong[:3]}" if wrong else ""]))
        raise CheckpointError(f"{ckpt} does not fit this model ({detail}): was it trained with another "
                              f"model config? Use the config the run saved (<run>/config.yaml)")
    model.set_state_dict(state)
    return ckpt


def load_pretrained(model, path):
    """Start ``model`` from the parameters it shares by name with the checkpoint at ``path``
    (a contrastive pretraining run for an onset model). Shared parameters of another shape are
    an error naming them; returns (checkpoint, {"loaded", "not_in_checkpoint", "unused"})."""
    ckpt = resolve(path)
    state = paddle.load(os.path.join(ckpt, MODEL_FILE))
    own = model.state_dict()
    shared = [k for k in own if k in state]
    wrong = [f"{k}: checkpoint {list(state[k].shape)} vs model {list(own[k].shape)}"
             for k in shared if list(state[k].shape) != list(own[k].shape)]
    if wrong:
        raise CheckpointError(f"the pretraining checkpoint {ckpt} does not fit this model: {len(wrong)} shared "
                              f"parameters differ in shape (e.g. {'; '.join(wrong[:3])}). Pretrain with the model "
                              f"settings of this config (width, backbone, temporal, tabular)")
    if not shared:
        raise CheckpointError(f"{ckpt} shares no parameter with this model: not a pretraining run of it?")
    model.set_state_dict({k: state[k] if k in state else v for k, v in own.items()})
    heads = lambda keys: sorted({k.split(".")[0] for k in keys})   # noqa: E731
    return ckpt, {"loaded": len(shared), "not_in_checkpoint": heads(set(own) - set(state)),
                  "unused": heads(set(state) - set(own))}


RESUME = ("latest",)


def read_state(path):
    """The ``state.json`` of the checkpoint a resume from ``path`` continues (see ``resolve``)."""
    return json.load(open(os.path.join(resolve(path, RESUME), STATE_FILE)))


def load_checkpoint(path, model, optimizer=None):
    """Restore model (and optimizer with its scheduler) from ``path`` (a run resumes from its
    latest checkpoint); returns the state dict."""
    ckpt = load_weights(model, path, RESUME)
    if optimizer is not None:
        opt_path = os.path.join(ckpt, OPT_FILE)
        if not os.path.isfile(opt_path):
            raise CheckpointError(f"{ckpt} has no {OPT_FILE}: it cannot be resumed, only evaluated")
        optimizer.set_state_dict(paddle.load(opt_path))
    return json.load(open(os.path.join(ckpt, STATE_FILE)))
