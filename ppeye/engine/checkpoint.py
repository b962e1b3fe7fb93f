"""Checkpoints: one directory per saved epoch, written atomically, plus pointer files.

``<run>/checkpoints/epoch_0007/`` holds ``model.pdparams``, ``optimizer.pdopt`` (optimizer and
scheduler) and ``state.json`` (epoch, step, best metric, early-stopping counters, the config
fingerprint). Each is written in a temporary directory that is renamed into place only when
complete, and ``latest.json`` / ``best.json`` (also written atomically) point at a directory
only after it exists, so a kill at any moment leaves the previous checkpoint loadable.
Older epoch directories are pruned to ``keep`` (never the best).

Each checkpoint also holds ``checksums.json`` (SHA-256 of its files), verified before anything
is read: a file truncated, emptied or altered on disk is named, never unpickled. From a run
directory a damaged pointer (``latest.json``/``best.json``) or a damaged checkpoint falls back to
the newest intact ``epoch_NNNN``, with a warning saying which and why. A checkpoint named
explicitly (its directory or its ``model.pdparams``) is refused when damaged. A bare weights
file of the user's (a ``model.pdparams`` with no checksums or state beside it) is loaded as given.
"""
import json
import os
import shutil

from ..core.errors import PpeyeError
from ..core.io import atomic_directory, atomic_write, sha256
from ..core.logger import get_logger
from ..core.paddle_env import import_paddle

paddle = import_paddle()

MODEL_FILE, OPT_FILE, STATE_FILE = "model.pdparams", "optimizer.pdopt", "state.json"
CHECKSUM_FILE = "checksums.json"


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
        with open(os.path.join(tmp, CHECKSUM_FILE), "w") as f:
            json.dump({n: sha256(os.path.join(tmp, n)) for n in sorted(os.listdir(tmp)) if n != CHECKSUM_FILE}, f,
                      indent=1)
    _point(ckpt_root, "latest", name)
    if best:
        _point(ckpt_root, "best", name)
    _prune(ckpt_root, keep)
    return path


def _point(root, which, name):
    with atomic_write(os.path.join(root, f"{which}.json")) as f:
        json.dump({"checkpoint": name}, f)


def _pointed(root, which):
    """The checkpoint name ``<which>.json`` points at; None if absent; CheckpointError if damaged."""
    p = os.path.join(root, f"{which}.json")
    if not os.path.isfile(p):
        return None
    try:
        name = json.load(open(p))["checkpoint"]
    except (ValueError, KeyError, TypeError, OSError) as e:
        raise CheckpointError(f"{p} is damaged ({type(e).__name__}: {e})") from None
    if not isinstance(name, str) or os.sep in name or not name.startswith("epoch_"):
        raise CheckpointError(f"{p} is damaged (points at {name!r}, not an epoch_NNNN directory)")
    return name


def damage(ckpt):
    """Why checkpoint directory ``ckpt`` cannot be used (a sentence naming the file), or None.
    Checkpoints written before checksums are checked for their files and a readable state."""
    if not os.path.isfile(os.path.join(ckpt, MODEL_FILE)):
        return f"{os.path.join(ckpt, MODEL_FILE)} is missing"
    sums_path = os.path.join(ckpt, CHECKSUM_FILE)
    if os.path.isfile(sums_path):
        try:
            sums = json.load(open(sums_path))
            assert isinstance(sums, dict) and MODEL_FILE in sums
        except (ValueError, AssertionError, OSError):
            return f"{sums_path} is damaged"
        for name, expected in sorted(sums.items()):
            path = os.path.join(ckpt, name)
            if not os.path.isfile(path):
                return f"{path} is missing"
            if sha256(path) != expected:
                return f"{path} does not match its checksum (truncated or altered since it was written)"
    state = os.path.join(ckpt, STATE_FILE)
    if os.path.isfile(state):
        try:
            json.load(open(state))
        except (ValueError, OSError):
            return f"{state} is damaged"
    elif os.path.isfile(sums_path) or os.path.basename(ckpt).startswith("epoch_"):
        return f"{state} is missing"
    return None


def _prune(root, keep):
    if not keep:
        return
    names = sorted(n for n in os.listdir(root) if n.startswith("epoch_") and os.path.isdir(os.path.join(root, n)))
    protected = set()
    for which in ("best", "latest"):
        try:
            protected.add(_pointed(root, which))
        except CheckpointError:
            return                                  # a damaged pointer: prune nothing until it is rewritten
    for n in names[:-keep]:
        if n not in protected:
            shutil.rmtree(os.path.join(root, n), ignore_errors=True)


def resolve(path, prefer=("best", "latest")):
    """A checkpoint directory from a run directory, a checkpoints folder, a checkpoint
    directory or a ``model.pdparams`` file (for a run: ``best``, else ``latest``; resuming
    prefers ``latest``)."""
    if os.path.isfile(path) and path.endswith(".pdparams"):
        return _intact(os.path.dirname(path))
    for root in (os.path.join(path, "checkpoints"), path):
        if not os.path.isdir(root):
            continue
        problems = []
        for which in prefer:
            try:
                name = _pointed(root, which)
            except CheckpointError as e:
                problems.append(str(e))
                continue
            if name:
                bad = damage(os.path.join(root, name))
                if bad is None:
                    if problems:
                        _warn(f"{'; '.join(problems)}: using {which} ({name}) instead")
                    return os.path.join(root, name)
                problems.append(bad)
        if problems:
            for name in sorted((n for n in os.listdir(root) if n.startswith("epoch_")), reverse=True):
                if os.path.isdir(os.path.join(root, name)) and damage(os.path.join(root, name)) is None:
                    _warn(f"{'; '.join(problems)}: using the newest intact checkpoint, {name}, instead of "
                          f"{' / '.join(prefer)}")
                    return os.path.join(root, name)
            raise CheckpointError(f"{root}: no intact checkpoint ({'; '.join(problems)})")
    if os.path.isfile(os.path.join(path, MODEL_FILE)):
        return _intact(path)
    raise CheckpointError(f"{path}: no checkpoint here (expected a run directory, its checkpoints/ folder, "
                          f"an epoch_NNNN directory or a {MODEL_FILE} file)")


def _intact(ckpt):
    bad = damage(ckpt)
    if bad:
        raise CheckpointError(f"{bad}: this checkpoint cannot be used")
    return ckpt


def _warn(text):
    get_logger("ppeye.checkpoint").warning(text)


def _load_file(path):
    """``paddle.load`` of a file whose checksum ``damage`` verified; any failure names the file."""
    try:
        return paddle.load(path)
    except Exception as e:      # noqa: BLE001  (Paddle raises many types for a damaged file)
        raise CheckpointError(f"{path} cannot be read ({type(e).__name__}): damaged?") from None


def load_weights(model, path, prefer=("best", "latest")):
    """Load model weights from ``path`` (see ``resolve``); shape or name mismatches are errors."""
    ckpt = resolve(path, prefer)
    state = _load_file(os.path.join(ckpt, MODEL_FILE))
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
    state = _load_file(os.path.join(ckpt, MODEL_FILE))
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
    ckpt = resolve(path, RESUME)
    if not os.path.isfile(os.path.join(ckpt, STATE_FILE)):
        raise CheckpointError(f"{ckpt} holds weights only (no {STATE_FILE}): it can be evaluated or exported, "
                              f"not resumed")
    return json.load(open(os.path.join(ckpt, STATE_FILE)))


def check_resumable(resume, fingerprint, world):
    """Refuse (CheckpointError) to resume ``resume`` with another config's ``fingerprint`` or on
    another number of processes ``world`` (each rank's share of an epoch, the steps per epoch and
    so the schedule follow it: the run would not continue as it started)."""
    state = read_state(resume)
    if state.get("config_fingerprint") != fingerprint:
        raise CheckpointError(f"{resume} was trained with a different config (model, data, loss or "
                              f"optimizer settings differ): resume with the run's own config.yaml")
    before = state.get("world_size")
    if before is not None and int(before) != world:
        raise CheckpointError(f"{resume} was trained on {before} process(es), this resume has {world}: the batches "
                              f"each process sees, the steps per epoch and the learning-rate schedule would change, so "
                              f"the run would not continue as it started. Resume on {before} process(es) "
                              f"(--nproc_per_node {before}), or start a new run from its weights (-o pretrained={resume})")


def load_checkpoint(path, model, optimizer=None):
    """Restore model (and optimizer with its scheduler) from ``path`` (a run resumes from its
    latest checkpoint); returns the state dict."""
    ckpt = load_weights(model, path, RESUME)
    if optimizer is not None:
        opt_path = os.path.join(ckpt, OPT_FILE)
        if not os.path.isfile(opt_path):
            raise CheckpointError(f"{ckpt} has no {OPT_FILE}: it cannot be resumed, only evaluated")
        optimizer.set_state_dict(_load_file(opt_path))
    return json.load(open(os.path.join(ckpt, STATE_FILE)))


def run_dir_of(checkpoint):
    """``<run>`` for ``<run>/checkpoints/epoch_NNNN``; else the checkpoint's own directory."""
    parent = os.path.dirname(os.path.abspath(checkpoint))
    return os.path.dirname(parent) if os.path.basename(parent) == "checkpoints" else os.path.abspath(checkpoint)


def keep_previous_checkpoints(run_dir, log):
    """A new run in an old run's directory: its checkpoints move one generation back, to
    ``<run>/previous_checkpoints`` (an older generation there is removed)."""
    root = os.path.join(run_dir, "checkpoints")
    if os.path.isdir(root) and os.listdir(root):
        previous = os.path.join(run_dir, "previous_checkpoints")
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(root, previous)
        log.warning(f"{run_dir} held checkpoints of an earlier run: moved to {previous} "
                    f"(use -r {run_dir} to resume instead)")
