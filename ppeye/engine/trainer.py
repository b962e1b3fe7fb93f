"""The trainer: data, model, loss, optimizer, schedule, loop, evaluation, checkpoints, early
stopping, resume; on one process or under fleet (``fleetrun`` / ``paddle.distributed.launch``).

Determinism: the model is built after ``seed``; every epoch starts with ``paddle.seed`` of
(seed, epoch, rank) and the sampler's order depends only on (seed, epoch), so a run resumed
from the checkpoint of epoch e continues exactly as the uninterrupted run would (checkpoints
are taken at epoch ends).

Distributed: each rank trains on every ``world``-th batch of the same shuffled batch list
(cut to a multiple of ``world`` so every rank makes the same number of steps); gradients are
all-reduced by ``fleet.distributed_model``; validation predictions are sharded and gathered,
so every rank computes the same metrics and takes the same early-stopping decision; only rank
0 writes checkpoints, logs, metrics and VisualDL.
"""
import contextlib
import math
import os
import time

import numpy as np
from paddle.base.unique_name import UniqueNameGenerator

from .. import build_model
from ..core.config import save_config
from ..core.device import (agreed_loss, average_batchnorm_statistics, init_distributed, select_device,
                           sync_batchnorm)
from ..core.errors import ConfigError, PpeyeError
from ..core.fingerprint import config_fingerprint
from ..core.logger import get_logger
from ..core.paddle_env import import_paddle
from ..core.runlock import DirectoryLock
from ..core.seed import seed_everything
from ..data.dataset import OnsetDataset
from ..metrics import multilabel_metrics
from ..modeling import build_loss, total_loss
from ..retrieval import build_index
from .amp import amp_settings, autocast
from .callbacks import LogCallback, VisualDLCallback, step_report
from .checkpoint import (check_resumable, keep_previous_checkpoints, load_checkpoint, load_pretrained, load_weights,
                         read_state, save_checkpoint)
from .day_pretrain import fit_day_decoder, settings, training_days_end
from .features import open_cache
from .offset import fit_patient_offset
from .optim import EarlyStopping, build_optimizer, build_scheduler, frozen_epochs
from .predict import check_weather_presence, make_loader, predict, to_tensors
from .pretrain import retrieval_metrics
from .records import write_history, write_run_records

paddle = import_paddle()

class Trainer:
    """``Trainer(cfg).train(resume=None)``; ``predict(dataset)`` / ``evaluate(dataset)`` after.

    ``self.model`` is the plain network (saved, evaluated); ``self.net`` is what the training
    step calls (the fleet-wrapped model when distributed).
    """

    def __init__(self, cfg, log=None, callbacks=None):
        self.cfg = cfg
        self.world, self.rank = init_distributed(cfg)
        self.device = select_device(cfg.get("device", "auto"))
        if self.world > 1 and self.device.startswith("gpu"):
            self.device = select_device(f"gpu:{int(os.environ.get('FLAGS_selected_gpus', '0').split(',')[0])}")
        self.run_dir = os.path.join(cfg["output_dir"], str(cfg.get("run_name") or "run"))   # a YAML run_name may be a number
        if self.rank == 0:
            os.makedirs(self.run_dir, exist_ok=True)
        self.log = log or get_logger("ppeye.engine", output_dir=self.run_dir if self.rank == 0 else None,
                                     rank=self.rank)
        self.seed = seed_everything(cfg["seed"])
        self.train_set = OnsetDataset(cfg, "train")
        fraction = float(cfg["data"].get("label_fraction", 1.0))          # checked at load: in (0, 1]
        if fraction < 1:   # a seeded share of the training people (limited-label experiments)
            keep = np.sort(np.random.default_rng(self.seed).permutation(len(self.train_set))
                           [: max(1, int(round(fraction * len(self.train_set))))])
            self.log.info(f"data.label_fraction {fraction}: training on {len(keep)} of {len(self.train_set)} people")
            self.train_set = self.train_set.subset(keep)
        self.val_set = OnsetDataset(cfg, "val") if cfg["train"].get("eval") else None
        amp = cfg["train"].get("amp")
        self.amp = amp_settings(amp, self.device)
        if (amp.get("enabled") if isinstance(amp, dict) else amp) and self.amp is None:
            self.log.warning("train.amp is on but there is no GPU: training in float32 (AMP on CPU does nothing)")
        # Paddle keys optimizer state by generated variable names (conv3d_40.w_0_moment1_0); a
        # name generator of our own makes them the same in every run, in or out of one process,
        # so a checkpoint's optimizer state always finds its parameters. Each training stage's
        # optimizer names its state with a fresh generator (``_opt_names``), so the names do not
        # depend on whether an earlier stage ran in the same process.
        self._names = UniqueNameGenerator()
        with paddle.utils.unique_name.guard(self._names):
            self._build(cfg, build_model, build_loss)
        self.callbacks = list(callbacks) if callbacks is not None else self._default_callbacks()

    def _build(self, cfg, build_model, build_loss):
        self.model = build_model(cfg)
        emb = getattr(getattr(self.model, "tabular", None), "embedding", None)
        if emb is not None:
            emb.fit(self.train_set.tab, self.train_set.tab_mask)
        if cfg.get("weights"):       # start from the weights of a run of this model (fine-tuning)
            self.log.info(f"initial weights from {load_weights(self.model, cfg['weights'])}")
        if cfg.get("pretrained"):    # start from the shared parts of a (contrastive or day) pretraining run
            if not os.path.exists(cfg["pretrained"]):
                raise ConfigError(f"pretrained: {cfg['pretrained']} does not exist; make it first (a day encoder: "
                                  f"tools/pretrain_days.py -c <this config>; a contrastive run: configs/pretrain.yaml) "
                                  f"or set -o pretrained=null")
            ckpt, what = load_pretrained(self.model, cfg["pretrained"])
            self.log.info(f"initial weights from pretraining {ckpt}: {what['loaded']} tensors; initialised here: "
                          f"{', '.join(what['not_in_checkpoint']) or 'nothing'}; not used: "
                          f"{', '.join(what['unused']) or 'nothing'}")
        if getattr(self.model, "day_decoder", None) is not None:   # a standardising one needs its statistics
            store = self.train_set.store
            fit_day_decoder(self.model, store, np.unique(self.train_set.site), settings(cfg)["fit_days"], self.seed,
                            self.log, before=training_days_end(cfg, store))
        prevalence = self.train_set.labels.mean(0)
        self.criterion = build_loss(cfg, prevalence=prevalence.tolist())
        check_weather_presence(self.model, self.train_set)
        self.frozen_epochs = frozen_epochs(cfg)
        # frozen epochs read the cache when there is one (checked against this model and store), else run the ResNet
        self.cache = open_cache(cfg, self.model, self.train_set.store) if self.frozen_epochs else None
        if getattr(self.model, "patient_offset", None) is not None and not cfg.get("weights"):   # else the checkpoint's
            fit_patient_offset(self.model, self.train_set, self.val_set if self.val_set is not None else
                               OnsetDataset(cfg, "val"), self.seed, self.log, cache=self.cache,
                               resnet_frozen=self.frozen_epochs == int(cfg["train"]["epochs"]))
        if (self.cache is not None and getattr(self.model, "day_decoder", None) is not None and self.model.day_weight > 0
                and not self.cache.with_pooled):
            self.log.warning("model.day_reconstruction is on, but the frozen epochs read cached day features, not "
                             "volumes: its loss (the decoder's, and its pull on day_proj) is left out of those "
                             "epochs. Set model.day_reconstruction.enabled=false to say so, or train on the volumes")
        self.loaders = {False: make_loader(self.train_set, cfg, shuffle=True, seed=self.seed,
                                           num_replicas=self.world, rank=self.rank)}
        self.loaders[True] = self.loaders[False] if self.cache is None else make_loader(
            self.train_set, cfg, shuffle=True, seed=self.seed, num_replicas=self.world, rank=self.rank, store=self.cache)
        self.loader = self.loaders[False]
        if len(self.loader) == 0:
            raise ConfigError(f"the training split gives no batch per rank ({len(self.train_set)} people, "
                              f"batch_size {cfg['loader']['batch_size']}, {self.world} ranks): lower "
                              f"loader.batch_size or use fewer processes")
        self.accum = max(1, int(cfg["train"].get("accum_steps", 1)))
        self.steps_per_epoch = math.ceil(len(self.loader) / self.accum)
        self.scheduler = build_scheduler(cfg, self.steps_per_epoch)
        self.per_epoch_schedule = isinstance(self.scheduler, paddle.optimizer.lr.ReduceOnPlateau)
        # bfloat16 has float32's range: only float16 needs its loss scaled
        self.scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15) if self.amp and self.amp["scaler"] else None
        if self.model.weather_branch and cfg["model"]["backbone"]["norm"] == "sync_batch":
            self.model = sync_batchnorm(self.model, self.device, self.world, self.log)
        self.backbone_params = ([p for p in self.model.backbone.parameters() if not p.stop_gradient]
                                if self.frozen_epochs else [])
        self.net = self.model
        if self.world > 1:
            # wrapped once, while every parameter is trainable; with a stage whose ResNet gets no
            # gradient, the reducer must look for unused parameters on every step
            self.net = paddle.DataParallel(self.model, find_unused_parameters=bool(self.frozen_epochs))
        self.frozen = None
        self._enter_stage(self.frozen_epochs > 0)
        self.fingerprint = config_fingerprint(cfg)

    def _enter_stage(self, frozen):
        """Switch between the frozen-encoder stage (ResNet without gradients, BatchNorm statistics
        fixed, cached features when there is a cache) and end-to-end training. Each stage has its
        own optimizer over the parameters it trains; the learning-rate schedule runs on."""
        if frozen == self.frozen:
            return
        for p in self.backbone_params:
            p.stop_gradient = frozen
        self.optimizer, _ = build_optimizer(self.cfg, self.model, self.steps_per_epoch, self.scheduler)
        self._opt_names = UniqueNameGenerator()
        if self.world > 1:
            from paddle.distributed import fleet

            self.optimizer = fleet.distributed_optimizer(self.optimizer)
        self.loader = self.loaders[frozen]
        if self.frozen is not None:
            self.log.info("fine-tuning end to end from here (the ResNet trains again)" if not frozen else
                          "the ResNet is frozen from here")
        self.frozen = frozen

    def _default_callbacks(self):
        cbs = [LogCallback(self.cfg.get("log_iter", 20))] if self.rank == 0 else []
        if self.cfg.get("use_vdl") and self.rank == 0:
            cbs.append(VisualDLCallback(self.cfg.get("vdl_log_dir") or os.path.join(self.run_dir, "vdl"),
                                        self.cfg.get("log_iter", 20)))
        return cbs

    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    # ---------------------------------------------------------------- evaluation
    def predict(self, dataset, with_embeddings=False):
        """:class:`Predictions` for ``dataset`` (in dataset order; gathered over ranks); from the
        day-feature cache while the ResNet is frozen and there is one."""
        store = self.cache if self.frozen else None
        return predict(self.model, dataset, self.cfg, with_embeddings, self.world, self.rank, store=store)

    def evaluate(self, dataset, thresholds=None):
        if getattr(self.model, "contrastive", False):
            return retrieval_metrics(self.model, dataset, self.cfg, store=self.cache if self.frozen else None), None, None
        pred = self.predict(dataset)
        return multilabel_metrics(pred.labels, pred.probs, thresholds), pred.labels, pred.probs

    # ---------------------------------------------------------------- training
    def _state(self, epoch, step, stopper, history):
        state = {"epoch": epoch, "step": step, "best": stopper.best, "bad_epochs": stopper.bad,
                 "history": history, "config_fingerprint": self.fingerprint, "world_size": self.world,
                 "frozen_encoder": bool(self.frozen)}
        if self.scaler is not None:
            state["grad_scaler"] = {k: (v.item() if hasattr(v, "item") else v)
                                    for k, v in self.scaler.state_dict().items()}
        return state

    def train(self, resume=None, stop_after=None):
        """Train to ``train.epochs`` (``stop_after``: return after that many epochs, as an interrupted run)."""
        # one training per run directory: a second one would move this one's checkpoints aside
        # and write the same epoch_000N (rank 0 holds the lock for the run)
        lock = DirectoryLock(self.run_dir, "training", self.log) if self.rank == 0 else None
        if lock is not None:
            lock.acquire()
        try:
            with paddle.utils.unique_name.guard(self._names):
                return self._train(resume, stop_after)
        finally:
            if lock is not None:
                lock.release()

    def _barrier(self):
        if self.world > 1:
            paddle.distributed.barrier()

    def _train(self, resume, stop_after):
        cfg, tc = self.cfg, self.cfg["train"]
        epochs = int(tc["epochs"])
        es = tc.get("early_stop") or {}
        stopper = EarlyStopping(es.get("metric", "macro_roc_auc"), es.get("patience", 5), es.get("enabled", False))
        if stopper.enabled and self.val_set is None:
            self.log.info("early stopping needs validation metrics: it is off for this run (add --eval)")
        ckpt_root = os.path.join(self.run_dir, "checkpoints")
        if resume:          # before anything is written: a refused resume must leave the run as it was
            check_resumable(resume, self.fingerprint, self.world)
        if self.rank == 0:
            save_config(cfg, os.path.join(self.run_dir, "config.yaml"))
            write_run_records(cfg, self.run_dir, self.fingerprint, {"world_size": self.world,
                                                                   "device": paddle.device.get_device()})
        start, step, history = 0, 0, []
        if not resume and self.rank == 0:
            keep_previous_checkpoints(self.run_dir, self.log)
        self._barrier()
        if resume:
            # the checkpoint's optimizer belongs to the stage it was taken in
            self._enter_stage(bool(read_state(resume).get("frozen_encoder", False)))
            with paddle.utils.unique_name.guard(self._opt_names):
                state = load_checkpoint(resume, self.model, self.optimizer)
            start, step, history = state["epoch"] + 1, state["step"], state["history"]
            stopper.best, stopper.bad = state["best"], state["bad_epochs"]
            if self.scaler is not None and state.get("grad_scaler"):
                self.scaler.load_state_dict(state["grad_scaler"])
            self.log.info(f"resumed from {resume} after epoch {state['epoch'] + 1}")
        n_params = (sum(int(p.size) for p in self.model.parameters() if not p.stop_gradient)
                    + sum(int(p.size) for p in self.backbone_params if p.stop_gradient))   # frozen for now
        self.log.info(f"training {type(self.model).__name__} ({n_params / 1e6:.2f} M parameters) on {self.device}"
                      f"{f' x {self.world} processes' if self.world > 1 else ''}: {len(self.train_set)} people, "
                      f"{len(self.loader)} batches per epoch{' per rank' if self.world > 1 else ''}, {epochs} epochs"
                      f"{', AMP ' + self.amp['dtype'] + ' ' + self.amp['level'] if self.amp else ''}")
        if self.frozen_epochs:
            source = f"cached day features ({self.cache.path})" if self.cache else "the frozen ResNet run on the volumes"
            self.log.info(f"two-stage training: epochs 1-{self.frozen_epochs} with the ResNet frozen, from {source}"
                          f"{f'; epochs {self.frozen_epochs + 1}-{epochs} end to end' if self.frozen_epochs < epochs else ''}")
        self._call("on_train_begin", {"start_epoch": start, "epochs": epochs, "batches": len(self.loader)})
        for epoch in range(start, epochs):
            paddle.seed(self.seed + 1009 * epoch + 7919 * self.rank)
            self._enter_stage(epoch < self.frozen_epochs)
            self.loader.ppeye_sampler.set_epoch(epoch)
            t0 = time.perf_counter()
            with paddle.utils.unique_name.guard(self._opt_names):
                step, loss_sum, batches, samples = self._epoch(epoch, step)
            if self.world > 1:              # the epoch's figures over all ranks, not rank 0's share
                totals = paddle.to_tensor([loss_sum, float(batches), float(samples)], dtype="float64")
                paddle.distributed.all_reduce(totals)
                loss_sum, batches, samples = totals.numpy().tolist()
            train_loss = loss_sum / max(batches, 1)
            average_batchnorm_statistics(self.model, self.world)
            row = {"epoch": epoch + 1, "step": step, "train_loss": train_loss, "lr": self.optimizer.get_lr(),
                   "samples_per_s": samples / max(time.perf_counter() - t0, 1e-9)}
            if self.val_set is not None:
                m, _, _ = self.evaluate(self.val_set)
                row.update({f"val_{k}": v for k, v in m.items()})
            history.append(row)
            score = row.get(f"val_{stopper.metric}")
            if self.per_epoch_schedule:
                self.scheduler.step(score if score is not None else train_loss)
            improved, stop = stopper.update(score)
            last = epoch + 1 == epochs
            if self.rank == 0 and ((epoch + 1) % int(tc.get("checkpoint_every", 1)) == 0 or last or stop or improved
                                   or stop_after == epoch + 1):
                save_checkpoint(ckpt_root, epoch, self.model, self.optimizer, self._state(epoch, step, stopper, history),
                                best=improved or (self.val_set is None), keep=int(tc.get("keep_checkpoints", 3)))
            if self.rank == 0:
                write_history(self.run_dir, history)
            self._barrier()
            shown = f", val {stopper.metric} {score:.4f}" if score is not None else ""
            self.log.info(f"epoch {epoch + 1}/{epochs}: train loss {train_loss:.4f}{shown}, "
                          f"{row['samples_per_s']:.1f} samples/s")
            self._call("on_epoch_end", row)
            if stop_after is not None and epoch + 1 >= stop_after:
                break
            if stop:
                self.log.info(f"early stop: no better val {stopper.metric} for {stopper.bad} epochs "
                              f"(best {stopper.best:.4f})")
                break
        self._call("on_train_end", history)
        if (cfg.get("retrieval") or {}).get("enabled") and not getattr(self.model, "contrastive", False) and (
                stop_after is None or len(history) and
                                                             history[-1]["epoch"] == epochs):
            self.build_retrieval(ckpt_root)
        return history

    def build_retrieval(self, ckpt_root):
        """Index the training set with the weights evaluation will use (best, else latest)."""
        last = {k: v.clone() for k, v in self.model.state_dict().items()}
        ckpt = load_weights(self.model, ckpt_root)
        try:
            index = build_index(lambda dataset: self.predict(dataset, with_embeddings=True), self.train_set,
                                self.val_set, self.cfg["retrieval"], self.seed)
        finally:
            self.model.set_state_dict(last)     # the trainer's model stays the last epoch's
        if self.rank == 0:
            index.save(os.path.join(self.run_dir, "retrieval"),
                       {"checkpoint": os.path.abspath(ckpt), "config_fingerprint": self.fingerprint})
        self.log.info(f"retrieval index of {index.params['n']} training people ({index.metric}, {index.kind}); "
                      f"on validation k={index.k}, alpha={index.alpha:.2f}")
        self._barrier()
        return index

    def forward_loss(self, batch):
        """(training loss, explanation dict) of one batch of tensors (``to_tensors`` of what the
        loader yields), through ``self.net``; no backward."""
        with autocast(paddle, self.amp):
            _, ex = self.net(batch, return_explain=True)
            loss = total_loss(self.criterion, ex, batch["labels"])
        return loss, ex

    def train_step(self, batch, update=True, group=1, where=""):
        """One training step on a batch of tensors: forward, loss, backward (scaled by 1 / ``group``,
        the micro-batches of this update), then, if ``update``, the optimizer (and a per-step
        schedule) steps. Returns (loss value, explanation dict), or None when a non-finite loss is
        skipped (``train.nan_policy: skip``); raises with ``nan_policy: stop``. Ranks agree on a bad
        loss. ``where`` names the step in messages (e.g. "epoch 3 batch 7")."""
        ckpt_root = os.path.join(self.run_dir, "checkpoints")
        sync = contextlib.nullcontext() if update or self.world == 1 else self.net.no_sync()
        with sync:
            loss, ex = self.forward_loss(batch)
            value = agreed_loss(loss.item(), self.world)
            if not np.isfinite(value):
                if self.cfg["train"].get("nan_policy", "stop") == "skip":
                    self.log.warning(f"{where or 'step'}: loss is {value}; step skipped (nan_policy: skip)")
                    self.optimizer.clear_grad()
                    return None
                raise PpeyeError(f"{where or 'step'}: the loss is {value}; training stopped "
                                 f"(nan_policy: stop). The last good checkpoint in {ckpt_root} is intact; "
                                 f"try a lower optimizer.learning_rate or nan_policy: skip")
            scaled = loss / group
            if self.scaler is not None:
                scaled = self.scaler.scale(scaled)
            scaled.backward()
        if update:
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.clear_grad()
            if not self.per_epoch_schedule:
                self.scheduler.step()
        return value, ex

    def train_mode(self):
        """The network in training mode, except a frozen ResNet (its BatchNorm keeps the running
        statistics: they are part of what the day-feature cache was computed with)."""
        self.net.train()
        if self.frozen:
            self.model.backbone.eval()

    def _epoch(self, epoch, step):
        self.train_mode()
        total, count, samples = 0.0, 0, 0
        n = len(self.loader)
        for i, batch in enumerate(self.loader):
            b = to_tensors(batch)
            update = (i + 1) % self.accum == 0 or i + 1 == n
            # the mean over the update's micro-batches (a last, shorter group is not diluted)
            group = min(self.accum, n - (i // self.accum) * self.accum)
            done = self.train_step(b, update, group, where=f"epoch {epoch + 1} batch {i + 1}")
            if done is None:
                continue
            value, ex = done
            if update:
                step += 1
            bs = int(b["labels"].shape[0])
            total, count, samples = total + value, count + 1, samples + bs
            if self.callbacks:     # samples: all ranks together
                self._call("on_step_end", step_report(epoch, i + 1, step, value, total / count, self.optimizer.get_lr(),
                                                      bs * self.world, ex))
        return step, total, count, samples
