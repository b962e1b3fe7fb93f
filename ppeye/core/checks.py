"""Values checked when a config is loaded, so a bad one fails at once with its key named instead
of late in a run (``train.epochs: 0`` used to exit 0 with no checkpoint; a negative learning rate
or ``loader.num_workers`` crashed after the data were loaded). Keys a config lacks are skipped."""
import datetime

from .errors import ConfigError, InputError
from .model_config import ModelConfig


def _int_at_least(low):
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low), f"an integer >= {low}"


def _number_above(low):
    return (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > low), f"a number > {low}"


def _number_at_least(low):
    return (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= low), f"a number >= {low}"


_OPEN_UNIT = ((lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1),
              "a number strictly between 0 and 1")

RULES = {
    "seed": _int_at_least(0),
    "train.epochs": _int_at_least(1),
    "train.accum_steps": _int_at_least(1),
    "train.checkpoint_every": _int_at_least(1),
    "train.keep_checkpoints": _int_at_least(1),
    "train.two_stage.frozen_epochs": _int_at_least(0),
    "train.early_stop.patience": _int_at_least(1),
    "optimizer.learning_rate": _number_above(0),
    "optimizer.weight_decay": _number_at_least(0),
    "scheduler.warmup_epochs": _number_at_least(0),
    "scheduler.min_lr": _number_at_least(0),
    "loader.batch_size": _int_at_least(1),
    "loader.num_workers": _int_at_least(0),
    "data.window_days": _int_at_least(1),
    "data.hours": _int_at_least(1),
    "model.width": _int_at_least(1),
    "day_pretrain.epochs": _int_at_least(1),
    "day_pretrain.batch_size": _int_at_least(1),
    "day_pretrain.learning_rate": _number_above(0),
    "evaluation.bootstrap": _int_at_least(0),
    "evaluation.ci_level": _OPEN_UNIT,
    "log_iter": _int_at_least(0),               # 0: no per-step lines
    "data.label_fraction": ((lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1),
                            "a number in (0, 1]"),
    "data.box": ((lambda v: isinstance(v, (list, tuple)) and len(v) == 2
                  and all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v)),
                 "two positive integers [rows, cols] (cells of the box around each site)"),
}


def _iso_date(value):
    """A ``datetime.date`` from a YYYY-MM-DD string or date, else None."""
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value)) if len(str(value)) == 10 else None
    except ValueError:
        return None


def _date_problems(cfg):
    data = cfg.get("data") if isinstance(cfg, dict) else None
    if not isinstance(data, dict) or "start_date" not in data or "end_date" not in data:
        return []
    bad = []
    start, end = _iso_date(data["start_date"]), _iso_date(data["end_date"])
    for key, value, parsed in (("start_date", data["start_date"], start), ("end_date", data["end_date"], end)):
        if parsed is None:
            bad.append(f"data.{key} must be a date YYYY-MM-DD, got {value!r}")
    if start and end and not start < end:
        bad.append(f"data.start_date {start} must come before data.end_date {end}")
    period = data.get("norm_period")
    if period is not None and start and end:
        days = [_iso_date(d) for d in period] if isinstance(period, (list, tuple)) and len(period) == 2 else [None]
        if None in days or not days[0] < days[1] or days[0] > end or days[1] < start:
            bad.append(f"data.norm_period must be two dates YYYY-MM-DD, in order, overlapping data.start_date.."
                       f"data.end_date ({start}..{end}; the days in both are used), got {period!r}")
    return bad


def check_values(cfg):
    """Raise ConfigError naming every key whose value breaks its rule (all of them at once)."""
    bad = _date_problems(cfg)
    model = cfg.get("model") if isinstance(cfg, dict) else None
    if isinstance(model, dict) and model.get("type") == "OnsetNet":
        try:  # every model key typed against its one source of defaults (ppeye/core/model_config.py)
            ModelConfig.from_dict(model.to_dict() if hasattr(model, "to_dict") else model)
        except InputError as e:
            bad.append(str(e))
    for path, (ok, expected) in RULES.items():
        node, found = cfg, True
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                found = False
                break
            node = node[part]
        if found and not ok(node):
            bad.append(f"{path} must be {expected}, got {node!r}")
    if bad:
        raise ConfigError("bad config value" + ("s" if len(bad) > 1 else "") + ": " + "; ".join(bad))

