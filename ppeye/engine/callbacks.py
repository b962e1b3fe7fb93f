"""Training callbacks: what a run reports and where (the loop itself lives in trainer.py).

A callback gets ``on_train_begin(trainer, info)``, ``on_step_end(trainer, info)`` after every
optimizer update, ``on_epoch_end(trainer, row)`` with the epoch's metrics row and
``on_train_end(trainer, history)``. Only rank 0 builds the writing callbacks.

- :class:`LogCallback`: loss, lr, throughput and ETA every ``log_iter`` batches, and a tqdm
  progress bar when stderr is a terminal.
- :class:`VisualDLCallback`: scalars (losses, lr, throughput, per-disease and macro validation
  metrics, MoE load balance), expert-usage histograms, hyper-parameters, evaluation curves.
"""
import contextlib
import os
import sys
import time

import numpy as np

from ..core.optional import require
from ..core.registry import CALLBACKS
from ..metrics import DISEASES


class Callback:
    def on_train_begin(self, trainer, info):
        pass

    def on_step_end(self, trainer, info):
        pass

    def on_epoch_end(self, trainer, row):
        pass

    def on_train_end(self, trainer, history):
        pass


def step_report(epoch, batch, step, loss, mean_loss, lr, samples, explain):
    """What ``on_step_end`` hooks get: the step's numbers (``loss`` already on the host) and, as
    device tensors, the MoE ``aux_loss`` and ``routing`` and the ``attention`` maps ({name: [...,
    keys]}). Nothing here copies a tensor to the host: a hook that wants one converts it (the
    VisualDL hook on its ``log_iter`` steps), so a step without such a hook waits for the device
    only for its loss (tested by counting)."""
    attention = {f"temporal.{i}": a for i, a in enumerate(explain.get("temporal_attention") or []) if a is not None}
    if explain.get("patient_to_weather") is not None:
        attention["fusion.patient_to_weather"] = explain["patient_to_weather"]
    return {"epoch": epoch, "batch": batch, "step": step, "loss": loss, "mean_loss": mean_loss, "lr": lr,
            "samples": samples, "aux_loss": explain.get("aux_loss"), "attention": attention,
            "routing": dict(explain.get("routing") or {})}


def _host(value):
    """A tensor (or number) as numpy on the host."""
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _duration(seconds):
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


@CALLBACKS.register()
class LogCallback(Callback):
    """Loss, lr, samples/s and ETA in the log; a progress bar on a terminal."""

    def __init__(self, log_iter=20, progress=None):
        self.log_iter = int(log_iter or 0)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.bar = None

    def on_train_begin(self, trainer, info):
        self.t_start = time.perf_counter()
        self.first_epoch, self.epochs, self.batches = info["start_epoch"], info["epochs"], info["batches"]
        self._epoch = None

    def on_step_end(self, trainer, info):
        if info["epoch"] != self._epoch:
            self._epoch, self.t_epoch, self.seen = info["epoch"], time.perf_counter(), 0
            if self.progress:
                from tqdm import tqdm

                if self.bar is not None:
                    self.bar.close()
                self.bar = tqdm(total=self.batches, desc=f"epoch {info['epoch'] + 1}/{self.epochs}",
                                leave=False, dynamic_ncols=True)
        self.seen += info["samples"]
        now = time.perf_counter()
        rate = self.seen / max(now - self.t_epoch, 1e-9)
        done = (info["epoch"] - self.first_epoch) * self.batches + info["batch"]
        remaining = (self.epochs - self.first_epoch) * self.batches - done
        eta = (now - self.t_start) / max(done, 1) * remaining
        if self.bar is not None:
            self.bar.update(info["batch"] - self.bar.n)
            self.bar.set_postfix(loss=f"{info['mean_loss']:.4f}", lr=f"{info['lr']:.1e}", eta=_duration(eta))
        if self.log_iter and info["batch"] % self.log_iter == 0:
            trainer.log.info(f"epoch {info['epoch'] + 1} batch {info['batch']}/{self.batches}: loss "
                             f"{info['mean_loss']:.4f}, lr {info['lr']:.2e}, {rate:.1f} samples/s, "
                             f"eta {_duration(eta)}")

    def on_epoch_end(self, trainer, row):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_train_end(self, trainer, history):
        self.on_epoch_end(trainer, None)
        trainer.log.info(f"training took {_duration(time.perf_counter() - self.t_start)}")


def attention_entropy(weights):
    """Entropy of each attention row (over its keys, the last axis) divided by log(keys): 0 = all
    weight on one key, 1 = spread evenly. ``weights`` [..., keys] -> a flat array of rows.

    >>> [round(float(v), 3) for v in attention_entropy(np.array([[1.0, 0, 0, 0], [0.25] * 4]))]
    [0.0, 1.0]
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1, np.shape(weights)[-1])
    if w.shape[1] < 2:
        return np.zeros(len(w))
    h = np.abs((w * np.log(np.clip(w, 1e-12, None))).sum(1))      # abs: -0.0 for a one-hot row
    return h / np.log(w.shape[1])


def _hparams(cfg):
    """The hyper-parameters a dashboard compares runs by (scalars and strings only), named with
    underscores (``model_width``): VisualDL's hparams table shows nothing for names with dots."""
    keys = ["model.width", "model.backbone.depth", "model.backbone.base_width", "model.temporal.transformer.layers",
            "model.temporal.afno.enabled", "model.tabular.k", "model.moe.enabled", "optimizer.type",
            "optimizer.learning_rate", "optimizer.weight_decay", "scheduler.type", "loader.batch_size",
            "train.epochs", "train.accum_steps", "loss.type", "seed", "data.window_days"]
    out = {}
    for key in keys:
        value = cfg.get_path(key) if hasattr(cfg, "get_path") else None
        name = key.replace(".", "_")
        if isinstance(value, bool):
            out[name] = str(value).lower()          # VisualDL's hparams take numbers and strings
        elif isinstance(value, (int, float, str)):
            out[name] = value
    return out


@CALLBACKS.register()
class VisualDLCallback(Callback):
    """Writes a VisualDL log directory (``visualdl --logdir DIR`` to watch it)."""

    def __init__(self, log_dir, log_iter=20):
        LogWriter = require("visualdl").LogWriter

        os.makedirs(log_dir, exist_ok=True)
        self.log_dir = log_dir
        self.writer = LogWriter(logdir=log_dir)
        self.log_iter = max(1, int(log_iter or 1))
        self._last = None

    def on_train_begin(self, trainer, info):
        self.hparams = _hparams(trainer.cfg)

    def on_step_end(self, trainer, info):
        w, step = self.writer, info["step"]
        w.add_scalar("train/loss", info["loss"], step)
        w.add_scalar("train/lr", info["lr"], step)
        now = time.perf_counter()
        if self._last is not None and now > self._last:
            w.add_scalar("train/samples_per_s", info["samples"] / (now - self._last), step)
        self._last = now
        if step % self.log_iter == 0:                # the device's values, copied on these steps only
            if info.get("aux_loss") is not None:
                w.add_scalar("train/moe_aux_loss", float(_host(info["aux_loss"])), step)
            for name, weights in (info.get("attention") or {}).items():
                ent = attention_entropy(_host(weights))
                w.add_scalar(f"attention/{name}/entropy", float(ent.mean()), step)
                w.add_histogram(f"attention/{name}/entropy_of_rows", ent, step, buckets=20)   # a tag holds one kind
            for place, r in (info.get("routing") or {}).items():
                load = _host(r["load"]).astype(np.float64)
                # coefficient of variation of the expert loads: 0 = perfectly balanced
                w.add_scalar(f"moe/{place}/load_cv", float(load.std() / max(load.mean(), 1e-12)), step)
                w.add_scalar(f"moe/{place}/dropped", float(_host(r["dropped"])), step)
                w.add_histogram(f"moe/{place}/expert_usage", _host(r["indices"]).ravel(), step,
                                buckets=max(2, len(load)))

    def on_epoch_end(self, trainer, row):
        self._last = None           # the next epoch's first step would include validation and the loader's start
        epoch = row["epoch"]
        self.writer.add_scalar("epoch/train_loss", row["train_loss"], epoch)
        self.writer.add_scalar("epoch/samples_per_s", row.get("samples_per_s", 0.0), epoch)
        for key, value in row.items():
            if key.endswith(("_threshold", "_positives", "_n", "_diseases")):
                continue                   # bookkeeping, not measurements
            if key.startswith("val_") and isinstance(value, float) and np.isfinite(value):
                group = "val_macro" if key.startswith(("val_macro", "val_micro", "val_hamming")) else "val_disease"
                self.writer.add_scalar(f"{group}/{key[4:]}", value, epoch)

    def on_train_end(self, trainer, history):
        final = {k: v for k, v in (history[-1] if history else {}).items()
                 if k.startswith("val_macro") and isinstance(v, float) and np.isfinite(v)}
        if final:
            for k, v in final.items():
                self.writer.add_scalar(f"hparams/{k}", v, 0)
            self.writer.add_hparams(self.hparams, [f"hparams/{k}" for k in final])
        self.writer.close()

    # used by the evaluator: the figures and headline numbers of one split. (VisualDL 2.5.3's
    # own add_pr_curve uses np.float, which numpy 2 removed: the PR figure stands in for it.)
    def eval_report(self, name, labels, probs, metrics, images, step=0):
        """At ``step``: the epoch of the evaluated checkpoint, so evaluations of a run's checkpoints
        line up with its validation curves (epoch/...) in the same log directory."""
        for kind, image in images.items():
            self.writer.add_image(f"eval_{name}/{kind}", image, step)
        keys = ["macro_roc_auc", "macro_pr_auc", "macro_brier", "micro_roc_auc"]
        keys += [f"{d}_{m}" for d in DISEASES for m in ("roc_auc", "pr_auc")]
        for key in keys:
            value = metrics[key]["value"]
            if value is not None and np.isfinite(value):
                self.writer.add_scalar(f"eval_{name}/{key}", value, step)
        self.writer.flush()

    def close(self):
        self.writer.close()


@contextlib.contextmanager
def visualdl_for(cfg, run_dir):
    """``with visualdl_for(cfg, run_dir) as vdl``: the VisualDL writer a tool should use
    (``use_vdl``; else None), closed when the block ends."""
    vdl = VisualDLCallback(cfg.get("vdl_log_dir") or os.path.join(run_dir, "vdl")) if cfg.get("use_vdl") else None
    try:
        yield vdl
    finally:
        if vdl is not None:
            vdl.close()
