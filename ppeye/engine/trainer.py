"""The single-process trainer: data, model, loss, optimizer, schedule, loop, evaluation,
checkpoints, early stopping, resume.

Determinism: the model is built after ``seed``; every epoch starts with ``paddle.seed(seed +
epoch)`` and the sampler's order depends only on (seed, epoch), so a run resumed from the
checkpoint of epoch e continues exactly as the uninterrupted run would (checkpoints are taken
at epoch ends).
"""
import hashlib
import json
import math
import os
import time

import numpy as np

from ..core.config import save_config
from ..core.errors import ConfigError, PpeyeError
from ..core.io import atomic_write
from ..core.logger import get_logger
from ..core.paddle_env import import_paddle
from ..core.seed import seed_everything
from ..metrics import DISEASES, multilabel_metrics
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint

paddle = import_paddle()

# Keys that change how a run is watched or where it writes, not what it computes.
RUNTIME_KEYS = ("output_dir", "run_name", "weights", "log_iter", "use_vdl", "vdl_log_dir", "fleet", "num_threads",
                "device", "train.eval", "loader.num_workers", "train.checkpoint_every", "train.keep_checkpoints")


def select_device(name="auto"):
    """'auto' -> the first GPU when Paddle has CUDA and sees one, else the CPU."""
    has_gpu = paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    if name in (None, "auto"):
        name = "gpu" if has_gpu else "cpu"
    if name.startswith("gpu") and not has_gpu:
        raise ConfigError(f"device: {name} was asked for but Paddle sees no GPU; use device: auto or cpu")
    paddle.set_device(name)
    return name


def config_fingerprint(cfg):
    """A hash of everything in ``cfg`` that changes the computation (not paths or logging)."""
    data = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    for key in RUNTIME_KEYS:
        node, *rest = key.split(".")
        if rest and isinstance(data.get(node), dict):
            data[node] = {k: v for k, v in data[node].items() if k != rest[0]}
        elif not rest:
            data.pop(node, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def build_optimizer(cfg, model, steps_per_epoch):
    """(optimizer, scheduler) from cfg.optimizer / cfg.scheduler; the scheduler steps per update."""
    oc, sc = cfg["optimizer"], cfg["scheduler"]
    epochs = int(cfg["train"]["epochs"])
    total = max(1, epochs * steps_per_epoch)
    lr = float(oc["learning_rate"])
    kind = sc["type"]
    if kind == "WarmupCosine":
        warm = min(total - 1, int(round(float(sc.get("warmup_epochs", 0)) * steps_per_epoch)))
        cosine = paddle.optimizer.lr.CosineAnnealingDecay(lr, T_max=max(1, total - warm), eta_min=float(sc["min_lr"]))
        sched = paddle.optimizer.lr.LinearWarmup(cosine, warm, 0.0, lr) if warm > 0 else cosine
    elif kind == "Step":
        sched = paddle.optimizer.lr.StepDecay(lr, step_size=int(sc["step_epochs"]) * steps_per_epoch,
                                              gamma=float(sc.get("gamma", 0.1)))
    elif kind == "Constant":
        sched = paddle.optimizer.lr.LambdaDecay(lr, lambda step: 1.0)
    else:
        raise ConfigError(f"scheduler.type must be WarmupCosine, Step or Constant, got {kind!r}")
    clip = paddle.nn.ClipGradByGlobalNorm(float(oc["grad_clip"])) if oc.get("grad_clip") else None
    params = [p for p in model.parameters() if not p.stop_gradient]
    wd = float(oc.get("weight_decay") or 0.0)
    name = oc["type"]
    if name == "Adam":
        opt = paddle.optimizer.Adam(sched, parameters=params, weight_decay=wd or None, grad_clip=clip,
                                    use_multi_tensor=bool(oc.get("multi_tensor", True)))
    elif name == "AdamW":
        opt = paddle.optimizer.AdamW(sched, parameters=params, weight_decay=wd, grad_clip=clip,
                                     use_multi_tensor=bool(oc.get("multi_tensor", True)))
    elif name == "SGD":
        opt = paddle.optimizer.Momentum(sched, momentum=float(oc.get("momentum", 0.9)), parameters=params,
                                        weight_decay=wd or None, grad_clip=clip)
    else:
        raise ConfigError(f"optimizer.type must be Adam, AdamW or SGD, got {name!r}")
    return opt, sched


def to_tensors(batch):
    return {k: paddle.to_tensor(v) for k, v in batch.items()}


class Trainer:
    """``Trainer(cfg).train(resume=None)``; ``evaluate(split)`` for a trained model."""

    def __init__(self, cfg, log=None):
        from .. import build_model
        from ..data.dataset import OnsetDataset
        from ..modeling import build_loss

        self.cfg = cfg
        self.device = select_device(cfg.get("device", "auto"))
        run = cfg.get("run_name") or "run"
        self.run_dir = os.path.join(cfg["output_dir"], run)
        os.makedirs(self.run_dir, exist_ok=True)
        self.log = log or get_logger("ppeye.engine", output_dir=self.run_dir)
        self.seed = seed_everything(cfg["seed"])
        self.train_set = OnsetDataset(cfg, "train")
        self.val_set = OnsetDataset(cfg, "val") if cfg["train"].get("eval") else None
        # Paddle keys optimizer state by generated variable names (conv3d_40.w_0_moment1_0); a
        # name generator of our own makes them the same in every run, in or out of one process,
        # so a checkpoint's optimizer state always finds its parameters.
        from paddle.base.unique_name import UniqueNameGenerator

        self._names = UniqueNameGenerator()
        with paddle.utils.unique_name.guard(self._names):
            self._build(cfg, build_model, build_loss)

    def _build(self, cfg, build_model, build_loss):
        self.model = build_model(cfg)
        emb = getattr(getattr(self.model, "tabular", None), "embedding", None)
        if emb is not None:
            emb.fit(self.train_set.tab, self.train_set.tab_mask)
        prevalence = self.train_set.labels.mean(0)
        self.criterion = build_loss(cfg, prevalence=prevalence.tolist())
        self.loader = self._loader(self.train_set, shuffle=True)
        self.accum = max(1, int(cfg["train"].get("accum_steps", 1)))
        self.steps_per_epoch = math.ceil(len(self.loader) / self.accum)
        self.optimizer, self.scheduler = build_optimizer(cfg, self.model, self.steps_per_epoch)
        self.fingerprint = config_fingerprint(cfg)

    def _loader(self, dataset, shuffle):
        from ..data.dataset import SiteDateBatchSampler, WeatherCollator

        lc = self.cfg["loader"]
        if lc.get("group_by_site", True):
            sampler = SiteDateBatchSampler(dataset, int(lc["batch_size"]), shuffle=shuffle, seed=self.seed)
        else:
            sampler = paddle.io.BatchSampler(dataset, batch_size=int(lc["batch_size"]), shuffle=shuffle)
        loader = paddle.io.DataLoader(dataset, batch_sampler=sampler, collate_fn=WeatherCollator(dataset.store),
                                      num_workers=int(lc.get("num_workers", 0)), return_list=True)
        loader.ppeye_sampler = sampler
        return loader

    # ---------------------------------------------------------------- evaluation
    def predict(self, dataset):
        """(labels [N, 4], probabilities [N, 4]) in dataset order."""
        self.model.eval()
        loader = self._loader(dataset, shuffle=False)
        order = [i for batch in loader.ppeye_sampler for i in batch]   # unshuffled: the loader's order
        probs = []
        with paddle.no_grad():
            for batch in loader:
                b = to_tensors(batch)
                logits = self.model(b["weather_unique"], b["day_index"], b["tab"], b["tab_mask"])
                probs.append(paddle.nn.functional.sigmoid(logits).numpy())
        p = np.empty((len(dataset), len(DISEASES)), dtype=np.float64)
        p[np.asarray(order)] = np.concatenate(probs)
        return dataset.labels, p

    def evaluate(self, dataset, thresholds=None):
        labels, probs = self.predict(dataset)
        return multilabel_metrics(labels, probs, thresholds), labels, probs

    # ---------------------------------------------------------------- training
    def _state(self, epoch, step, best, bad_epochs, history):
        return {"epoch": epoch, "step": step, "best": best, "bad_epochs": bad_epochs, "history": history,
                "config_fingerprint": self.fingerprint}

    def train(self, resume=None, stop_after=None):
        """Train to ``train.epochs`` (``stop_after``: return after that many epochs, as an interrupted run)."""
        with paddle.utils.unique_name.guard(self._names):
            return self._train(resume, stop_after)

    def _train(self, resume, stop_after):
        cfg, tc = self.cfg, self.cfg["train"]
        epochs = int(tc["epochs"])
        es = tc.get("early_stop") or {}
        metric = es.get("metric", "macro_roc_auc")
        ckpt_root = os.path.join(self.run_dir, "checkpoints")
        save_config(cfg, os.path.join(self.run_dir, "config.yaml"))
        start, step, best, bad, history = 0, 0, None, 0, []
        if resume:
            state = load_checkpoint(resume, self.model, self.optimizer)
            if state.get("config_fingerprint") != self.fingerprint:
                raise CheckpointError(f"{resume} was trained with a different config (model, data, loss or "
                                      f"optimizer settings differ): resume with the run's own config.yaml")
            start, step, best, bad, history = (state["epoch"] + 1, state["step"], state["best"],
                                               state["bad_epochs"], state["history"])
            self.log.info(f"resumed from {resume} after epoch {state['epoch'] + 1}")
        n_params = sum(int(p.size) for p in self.model.parameters() if not p.stop_gradient)
        self.log.info(f"training {type(self.model).__name__} ({n_params / 1e6:.2f} M parameters) on {self.device}: "
                      f"{len(self.train_set)} people, {len(self.loader)} batches per epoch, {epochs} epochs")
        for epoch in range(start, epochs):
            paddle.seed(self.seed + epoch)
            if hasattr(self.loader.ppeye_sampler, "set_epoch"):
                self.loader.ppeye_sampler.set_epoch(epoch)
            step, train_loss = self._epoch(epoch, step, ckpt_root)
            row = {"epoch": epoch + 1, "step": step, "train_loss": train_loss, "lr": self.optimizer.get_lr()}
            if self.val_set is not None:
                m, _, _ = self.evaluate(self.val_set)
                row.update({f"val_{k}": v for k, v in m.items()})
            history.append(row)
            score = row.get(f"val_{metric}")
            improved = score is not None and np.isfinite(score) and (best is None or score > best)
            if improved:
                best, bad = float(score), 0
            elif score is not None:
                bad += 1
            last = epoch + 1 == epochs
            stop = bool(es.get("enabled")) and score is not None and bad >= int(es.get("patience", 5))
            if (epoch + 1) % int(tc.get("checkpoint_every", 1)) == 0 or last or stop or improved:
                save_checkpoint(ckpt_root, epoch, self.model, self.optimizer,
                                self._state(epoch, step, best, bad, history),
                                best=improved or (self.val_set is None), keep=int(tc.get("keep_checkpoints", 3)))
            self._write_history(history)
            shown = f", val {metric} {score:.4f}" if score is not None else ""
            self.log.info(f"epoch {epoch + 1}/{epochs}: train loss {train_loss:.4f}{shown}")
            if stop_after is not None and epoch + 1 >= stop_after:
                break
            if stop:
                self.log.info(f"early stop: no better val {metric} for {bad} epochs (best {best:.4f})")
                break
        return history

    def _epoch(self, epoch, step, ckpt_root):
        self.model.train()
        policy = self.cfg["train"].get("nan_policy", "stop")
        total, count, t0 = 0.0, 0, time.perf_counter()
        log_iter = int(self.cfg.get("log_iter", 20))
        from ..modeling import total_loss

        for i, batch in enumerate(self.loader):
            b = to_tensors(batch)
            _, ex = self.model(b["weather_unique"], b["day_index"], b["tab"], b["tab_mask"], return_explain=True)
            loss = total_loss(self.criterion, ex, b["labels"])
            value = loss.item()
            if not np.isfinite(value):
                if policy == "skip":
                    self.log.warning(f"epoch {epoch + 1} batch {i + 1}: loss is {value}; step skipped (nan_policy: skip)")
                    self.optimizer.clear_grad()
                    continue
                raise PpeyeError(f"epoch {epoch + 1} batch {i + 1}: the loss is {value}; training stopped "
                                 f"(nan_policy: stop). The last good checkpoint in {ckpt_root} is intact; "
                                 f"try a lower optimizer.learning_rate or nan_policy: skip")
            (loss / self.accum).backward()
            if (i + 1) % self.accum == 0 or i + 1 == len(self.loader):
                self.optimizer.step()
                self.optimizer.clear_grad()
                self.scheduler.step()
                step += 1
            total, count = total + value, count + 1
            if log_iter and (i + 1) % log_iter == 0:
                rate = (i + 1) * int(self.cfg["loader"]["batch_size"]) / (time.perf_counter() - t0)
                self.log.info(f"epoch {epoch + 1} batch {i + 1}/{len(self.loader)}: loss {total / count:.4f}, "
                              f"lr {self.optimizer.get_lr():.2e}, {rate:.1f} samples/s")
        return step, total / max(count, 1)

    def _write_history(self, history):
        with atomic_write(os.path.join(self.run_dir, "metrics.json")) as f:
            json.dump(history, f, indent=1)
        keys = list(dict.fromkeys(k for row in history for k in row))
        with atomic_write(os.path.join(self.run_dir, "metrics.csv")) as f:
            f.write(",".join(keys) + "\n")
            for row in history:
                f.write(",".join("" if row.get(k) is None else str(row.get(k)) for k in keys) + "\n")

