"""Day-encoder pretraining: the ResNet and its projection learn from the weather alone.

The onset labels teach the day encoder poorly: one noisy outcome per person, its gradient spread
over the window's days, while the temporal and fusion layers can fit the training centres'
days by identity (``bench/bench_day_encoder.py`` measures it). Here the encoder is trained
before any label, on every valid day of the training people's centres, to decode each day's
coarse volume through the model's day decoder (``model.day_reconstruction``; with
``target: deviation`` and ``standardise`` the pattern across the box, each pooled cell scaled to
unit variance: ``ppeye/modeling/layers/day_decoder.py``). Every ``holdout_every``-th day is held
out to measure the reconstruction (mean squared error and R^2 per variable, ``metrics.csv``).
No label, no participant, no day of an external centre and no day from the first
``ukb.temporal_split`` date on (the held-out period) is used.

``pretrain_days(cfg)`` writes ``<output_dir>/<run_name>_days/``: the config, ``checkpoints/``
(the encoder and decoder only: ``backbone.*``, ``day_proj.*``, ``day_decoder.*``; atomic, best
= lowest held-out error), ``metrics.csv`` and ``log.txt``. An onset run starts from it with
``pretrained: <that directory>`` (``ppeye.engine.checkpoint.load_pretrained``), typically with
``train.two_stage.frozen_epochs`` keeping the ResNet as pretrained.

Under ``paddle.distributed.launch`` / ``fleetrun`` (``--nproc_per_node N``) each step's batch of
days is split among the N processes (gradients all-reduced, BatchNorm statistics averaged at each
epoch's end, the held-out days scored in parts and gathered); rank 0 writes the run. The same
days in the same order as one process, so the same pretraining, not bit for bit: each rank's
BatchNorm sees its part of the batch.
"""
import copy
import csv
import os
import time

import numpy as np

from .. import build_model
from ..core.config import save_config
from ..core.device import average_batchnorm_statistics, init_distributed, select_device
from ..core.errors import ConfigError
from ..core.io import atomic_write
from ..core.logger import get_logger
from ..core.paddle_env import import_paddle
from ..core.progress import Heartbeat
from ..core.seed import seed_everything
from ..data.dataset import OnsetDataset, WeatherCollator
from ..data.ukb.splits import temporal_cutoffs
from .checkpoint import save_checkpoint
from .predict import gather_ranks

paddle = import_paddle()
nn = paddle.nn

DEFAULTS = {"epochs": 8, "batch_size": 64, "learning_rate": 0.003, "holdout_every": 5, "fit_days": 2000}


class DayEncoder(nn.Layer):
    """The parts of an OnsetNet the day pretraining trains, under the model's own names (so their
    state dict loads into an OnsetNet by name)."""

    def __init__(self, model):
        super().__init__()
        self.backbone, self.day_proj, self.day_decoder = model.backbone, model.day_proj, model.day_decoder
        if model.summary_proj is not None:
            raise ConfigError("day pretraining needs model.backbone.summary off (the decoder's target would be "
                              "an input); pretrain_days switches it off itself")

    def embed(self, volumes):
        return self.day_proj(self.backbone(volumes))

    def forward(self, volumes):
        return self.day_decoder.loss(self.embed(volumes), volumes)


def settings(cfg):
    """``cfg.day_pretrain`` with defaults, checked."""
    s = dict(DEFAULTS)
    given = cfg.get("day_pretrain") or {}
    unknown = set(given) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"day_pretrain: unknown key(s) {sorted(unknown)} (use {', '.join(DEFAULTS)})")
    s.update(given)
    for key in ("epochs", "batch_size", "holdout_every", "fit_days"):
        if not isinstance(s[key], int) or s[key] < (2 if key in ("holdout_every", "fit_days") else 1):
            raise ConfigError(f"day_pretrain.{key} must be an integer >= {2 if key in ('holdout_every', 'fit_days') else 1}, "
                              f"got {s[key]!r}")
    if not isinstance(s["learning_rate"], (int, float)) or not s["learning_rate"] > 0:
        raise ConfigError(f"day_pretrain.learning_rate must be a number > 0, got {s['learning_rate']!r}")
    return s


def centre_days(store, positions, before=None):
    """Keys (position * n_days + day) of every valid day at the store positions (days before the
    store day ``before`` only, when given), sorted."""
    valid = store.valid if before is None else store.valid & (np.arange(store.n_days) < before)
    keys = [p * store.n_days + np.nonzero(valid[p])[0] for p in sorted(set(int(p) for p in positions))]
    return np.concatenate(keys).astype(np.int64) if keys else np.zeros(0, np.int64)


def training_days_end(cfg, store):
    """The store day of the first ``ukb.temporal_split`` date (exclusive end of the days the day
    encoder may learn from: the held-out period's weather stays unseen), or None."""
    cuts = temporal_cutoffs(cfg)
    return int(store.day_index([cuts[0]])[0]) if cuts else None


def read_keys(store, keys):
    """Volumes [N, C, D, H, W] of day keys (position * n_days + day), in the keys' order."""
    weather, index = WeatherCollator(store).weather(np.asarray(keys, np.int64)[None])
    return weather[index[0]]


def fit_sample(store, positions, fit_days, seed, before=None):
    """Keys of up to ``fit_days`` valid days of the store positions (before store day ``before``;
    seeded sample), sorted."""
    keys = centre_days(store, positions, before)
    if len(keys) > fit_days:
        keys = np.sort(np.random.default_rng(seed).choice(keys, fit_days, replace=False))
    return keys


def fit_day_decoder(model, store, positions, fit_days, seed, log=None, volumes=None, before=None):
    """Fit a standardising day decoder's statistics on up to ``fit_days`` valid days of the store
    positions before store day ``before`` (seeded sample; or the given ``volumes``); nothing to do
    when the model has none or it is fitted already."""
    decoder = getattr(model, "day_decoder", None)
    if decoder is None or decoder.fitted:
        return
    if volumes is None:
        volumes = read_keys(store, fit_sample(store, positions, fit_days, seed, before))
    decoder.fit(volumes)
    if log:
        log.info(f"day decoder: standardisation fitted on {len(volumes)} days of {len(set(positions))} centres")


def pretrain_days(cfg, log=None):
    """Train the config's day encoder on the reconstruction of the training centres' days; returns
    the run directory."""
    s = settings(cfg)
    if not cfg["model"].get("weather_branch", True):
        raise ConfigError("day pretraining trains the weather branch's day encoder, but model.weather_branch is false")
    if not (cfg["model"].get("day_reconstruction") or {}).get("enabled"):
        raise ConfigError("day pretraining trains the day encoder through the day decoder: set "
                          "model.day_reconstruction.enabled: true (target: deviation, standardise: true recommended)")

    drop_summary = bool(((cfg["model"].get("backbone") or {}).get("summary") or {}).get("enabled"))
    if drop_summary:
        # the coarse summary is a fixed input copy (no parameters): with it the decoder would
        # read its target instead of training the ResNet. The ResNet trains without it and the
        # run that loads this encoder adds it (its projection starts at zero).
        cfg = copy.deepcopy(cfg)
        cfg["model"]["backbone"]["summary"]["enabled"] = False
    train_set = OnsetDataset(cfg, "train")      # only its centres are used
    store, positions = train_set.store, np.unique(train_set.site)
    before = training_days_end(cfg, store)
    keys = centre_days(store, positions, before)
    held = (keys % store.n_days) % s["holdout_every"] == 0
    fit, hold = keys[~held], keys[held]
    if len(fit) < s["batch_size"] or len(hold) < 2:
        raise ConfigError(f"day pretraining: {len(fit)} training days and {len(hold)} held out at {len(positions)} "
                          f"centres: too few for day_pretrain.batch_size {s['batch_size']}")
    world, rank = init_distributed(cfg)
    if s["batch_size"] < world:
        raise ConfigError(f"day_pretrain.batch_size {s['batch_size']} is split among {world} processes: give each "
                          f"at least one day")
    run_dir = os.path.join(cfg["output_dir"], f"{cfg.get('run_name') or 'run'}_days")
    if rank == 0:
        os.makedirs(run_dir, exist_ok=True)
    log = log or get_logger("ppeye.engine", output_dir=run_dir if rank == 0 else None, rank=rank)
    device = select_device(cfg.get("device", "auto"))
    seed = seed_everything(cfg["seed"])
    model = build_model(cfg)
    sample = read_keys(store, fit_sample(store, positions, s["fit_days"], seed, before))
    fit_day_decoder(model, store, positions, s["fit_days"], seed, log, volumes=sample)
    varying = model.day_decoder.varying(sample)
    del sample
    variables = list(store.variables)
    constant = [v for v, m in zip(variables, np.split(varying, len(variables))) if not m.any()]
    if constant:
        log.warning(f"day pretraining: the reconstruction targets of {', '.join(constant)} do not vary over the fitting "
                    f"days (e.g. a pattern that is the same in every cell of the box): scored as constant, no R^2")
    encoder = DayEncoder(model)
    net = encoder if world == 1 else paddle.DataParallel(encoder)
    opt = paddle.optimizer.Adam(float(s["learning_rate"]), parameters=encoder.parameters(), use_multi_tensor=True)
    if rank == 0:
        save_config(cfg, os.path.join(run_dir, "config.yaml"))
    if drop_summary:
        log.info("day pretraining: model.backbone.summary is off here (the decoder would read its target); "
                 "the run that loads this encoder adds it")
    log.info(f"day pretraining {type(model).__name__}'s day encoder on {device}: {len(fit)} days of {len(positions)} centres "
             f"({len(hold)} held out), {s['epochs']} epochs of {len(fit) // s['batch_size']} batches"
             + ("" if world == 1 else f", each split among {world} processes")
             + ("" if before is None else f"; days before {store.dates[before]} only (ukb.temporal_split: the held-out "
                                          f"period's weather stays unseen)"))
    rng = np.random.default_rng(seed)
    rows, best = [], None
    for epoch in range(1, s["epochs"] + 1):
        t0, losses = time.time(), []
        encoder.train()
        beat = Heartbeat(log, f"epoch {epoch}/{s['epochs']} batches", total=len(fit) // s["batch_size"])
        for batch in np.array_split(rng.permutation(fit), len(fit) // s["batch_size"]):
            loss = net(paddle.to_tensor(read_keys(store, np.sort(batch)[rank::world])))
            loss.backward()
            opt.step()
            opt.clear_grad()
            losses.append(loss.item())
            beat.step()
        average_batchnorm_statistics(encoder, world)
        held_mse, r2 = evaluate(encoder, store, hold, len(variables), s["batch_size"], varying,
                                Heartbeat(log, f"epoch {epoch}/{s['epochs']} held-out days", total=len(hold)),
                                world, rank)
        row = {"epoch": epoch, "train_mse": _mean_over_ranks(losses, world), "heldout_mse": held_mse,
               **{f"heldout_r2_{v}": "constant" if r is None else r for v, r in zip(variables, r2)},
               "seconds": time.time() - t0}
        rows.append(row)
        improved = best is None or held_mse < best
        best = held_mse if improved else best
        if rank == 0:
            save_checkpoint(os.path.join(run_dir, "checkpoints"), epoch, encoder, opt,
                            {"epoch": epoch, "heldout_mse": held_mse, "best_heldout_mse": best}, best=improved)
            _write_metrics(os.path.join(run_dir, "metrics.csv"), rows)
        log.info(f"epoch {epoch}/{s['epochs']}: train mse {row['train_mse']:.4f}, held-out mse {held_mse:.4f}, R^2 "
                 + ", ".join(f"{v} constant" if r is None else f"{v} {r:.2f}" for v, r in zip(variables, r2))
                 + f" ({row['seconds']:.0f} s)")
    log.info(f"day encoder in {run_dir} (best held-out mse {best:.4f}); an onset run starts from it with "
             f"-o pretrained={run_dir}")
    return run_dir


def _mean_over_ranks(values, world):
    """Mean of every rank's ``values`` (this rank's alone with one)."""
    if world == 1:
        return float(np.mean(values))
    total = paddle.to_tensor([float(np.sum(values)), float(len(values))], dtype="float64")
    paddle.distributed.all_reduce(total)
    return float(total[0] / total[1])


def evaluate(encoder, store, keys, channels, batch_size, varying=None, beat=None, world=1, rank=0):
    """Held-out mean squared error and, per variable, the R^2 of its decoded targets that vary
    (``varying``: bool per target element, from :meth:`DayDecoder.varying` on the fitting days;
    default all); ``None`` for a variable none of whose targets varies. ``beat``: a
    :class:`Heartbeat` stepped per day. With ``world`` > 1 each rank scores every ``world``-th day
    from its ``rank`` and all get the scores of all days."""
    encoder.eval()
    dec = encoder.day_decoder
    err, tgt = [], []
    keys = np.asarray(keys)[rank::world]
    with paddle.no_grad():
        for i in range(0, len(keys), batch_size):
            x = paddle.to_tensor(read_keys(store, keys[i : i + batch_size]))
            t = dec.target(x)
            err.append((dec(encoder.embed(x)) - t).numpy())
            tgt.append(t.numpy())
            if beat is not None:
                beat.step(len(x))
    err, tgt = np.concatenate(err), np.concatenate(tgt)
    if world > 1:
        err, tgt = gather_ranks([err, tgt])
    err, tgt = err.astype(np.float64), tgt.astype(np.float64)
    varying = np.ones(err.shape[1], bool) if varying is None else np.asarray(varying, bool)
    r2 = []
    for e, t, m in zip(np.split(err, channels, axis=1), np.split(tgt, channels, axis=1), np.split(varying, channels)):
        sst = ((t[:, m] - t[:, m].mean(0)) ** 2).sum()
        r2.append(float(1 - (e[:, m] ** 2).sum() / sst) if m.any() and sst > 0 else None)
    return float((err**2).mean()), r2


def _write_metrics(path, rows):
    with atomic_write(path, newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
