"""The optimizer and learning-rate schedule of a run (``optimizer.type``, ``scheduler.type``) and
early stopping on the validation score."""
import numpy as np

from ..core.errors import ConfigError
from ..core.paddle_env import import_paddle

paddle = import_paddle()


def build_optimizer(cfg, model, steps_per_epoch, scheduler=None):
    """(optimizer, scheduler) from cfg.optimizer / cfg.scheduler over the model's trainable
    parameters; the scheduler steps per update. Pass ``scheduler`` to keep an existing
    schedule (a new training stage continues the run's schedule with a new optimizer)."""
    sched = scheduler or build_scheduler(cfg, steps_per_epoch)
    return _optimizer(cfg, model, sched), sched


def build_scheduler(cfg, steps_per_epoch):
    """The learning-rate schedule of cfg.scheduler over ``train.epochs`` epochs."""
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
    elif kind == "Plateau":
        # stepped once per epoch with the validation metric (train loss without --eval)
        sched = paddle.optimizer.lr.ReduceOnPlateau(lr, mode="max" if cfg["train"].get("eval") else "min",
                                                    factor=float(sc.get("factor", 0.5)),
                                                    patience=int(sc.get("patience", 2)),
                                                    min_lr=float(sc.get("min_lr", 0.0)))
    elif kind == "Constant":
        sched = paddle.optimizer.lr.LambdaDecay(lr, lambda step: 1.0)
    else:
        raise ConfigError(f"scheduler.type must be WarmupCosine, Step, Plateau or Constant, got {kind!r}")
    return sched


def _optimizer(cfg, model, sched):
    oc = cfg["optimizer"]
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
    return opt


class EarlyStopping:
    """Best validation score so far and epochs without improvement (saved in checkpoints)."""

    def __init__(self, metric="macro_roc_auc", patience=5, enabled=True):
        self.metric, self.patience, self.enabled = metric, int(patience), bool(enabled)
        self.best, self.bad = None, 0

    def update(self, score):
        """(improved, stop) after an epoch whose score is ``score`` (None: no validation)."""
        if score is None:
            return False, False
        improved = bool(np.isfinite(score)) and (self.best is None or score > self.best)
        if improved:
            self.best, self.bad = float(score), 0
        else:
            self.bad += 1
        return improved, self.enabled and self.bad >= self.patience


def frozen_epochs(cfg):
    """``train.two_stage.frozen_epochs``, checked against the rest of the config."""
    ts = cfg["train"].get("two_stage") or {}
    frozen, epochs = int(ts.get("frozen_epochs") or 0), int(cfg["train"]["epochs"])
    if not 0 <= frozen <= epochs:
        raise ConfigError(f"train.two_stage.frozen_epochs must be in [0, train.epochs={epochs}], got {frozen}")
    if frozen and not cfg["model"].get("weather_branch", True):
        raise ConfigError("train.two_stage.frozen_epochs > 0 freezes the ResNet, but model.weather_branch is false")
    if ts.get("cache") and not frozen:
        raise ConfigError(f"train.two_stage.cache is set ({ts['cache']}) but frozen_epochs is 0: the cache would "
                          f"not be used; set frozen_epochs or remove the cache")
    return frozen
