"""The model's lag-response: how its predicted risk moves when one day's exposure moves.

For one variable over one region of the box (``explain.lag_response``; by default the
distributed-lag baseline's, ``compare.dlnm``), every person's window is fed again with that
variable raised by ``delta`` over the region for every hour of one day, one lag at a time (lag 1 is
the day before the index date); the change of each disease's logit against the unchanged window
is the person's response at that lag. The mean over people, with a percentile interval from
resampling people, is the model's lag-response in log odds. With ``hours`` ([first, last] steps of
the day) the rise goes into those steps only, as large as keeps the day's mean rise ``delta`` (an
afternoon event rather than a rise at night too). ``delta`` is in the store's units of
the variable's standard deviation; by default it is the distributed-lag baseline's contrast (the
training exposures' 90th minus 50th percentile), so both curves answer "the log odds of this
exposure being that much higher on the day at this lag", the baseline's as a population log odds
ratio, the model's as the mean change of individual risks. The baseline is fitted here on the
training split and drawn beside the model.

Over several runs (seeds) the curve is the mean of the runs' curves; its interval resamples the
same people in every run, so it carries both sources of spread, and the runs' sd and min-max are
written beside it.
"""
import json
import os

import numpy as np

from ..baselines import dlnm
from ..baselines.features import ClimateFeatures, box_slices
from ..core.errors import InputError
from ..core.io import atomic_write, save_npz, write_csv
from ..core.paddle_env import import_paddle
from ..core.progress import Heartbeat
from ..data.era5.variables import get_variable
from ..data.ukb.fields import disease_title
from ..engine.predict import make_loader, to_tensors
from ..metrics import DISEASES
from ..metrics.plots import _figure, save_figure

paddle = import_paddle()
PEOPLE_PER_PASS = 256          # people x lags fed to the model at once


def settings(cfg, store):
    """``explain.lag_response`` completed from ``compare.dlnm``: variable, its channel, region, its
    row and column slices, delta (None: the contrast, set by :func:`baseline`) and the lags."""
    section = (cfg.get("explain") or {}).get("lag_response") or {}
    base = dlnm.from_config(cfg)
    variable = section.get("variable") or base["variable"]
    region = section.get("region") if section.get("region") is not None else base["region"]
    shorts = [get_variable(v).short for v in store.variables]
    short = get_variable(variable).short
    if short not in shorts:
        raise InputError(f"explain.lag_response.variable {variable!r} is not in the store's variables {store.variables}")
    delta = section.get("delta")
    if delta is not None and (isinstance(delta, bool) or not isinstance(delta, (int, float)) or not np.isfinite(delta)
                              or delta == 0):
        raise InputError(f"explain.lag_response.delta must be a non-zero number (standard deviations), got {delta!r}")
    rows, cols = box_slices(region, store.shape[-2:])
    D = int(store.shape[1])
    hours = section.get("hours")
    if hours is not None and not (isinstance(hours, list) and len(hours) == 2 and all(
            isinstance(h, int) and not isinstance(h, bool) for h in hours) and 0 <= hours[0] <= hours[1] < D):
        raise InputError(f"explain.lag_response.hours must be [first, last] steps of the day within 0..{D - 1} "
                         f"(data.hours {D}: step k covers UTC hours from k * {24 // D}), got {hours!r}")
    steps = slice(0, D) if hours is None else slice(hours[0], hours[1] + 1)
    return {"variable": variable, "channel": shorts.index(short), "region": region, "rows": rows, "cols": cols,
            "hours": hours, "steps": steps, "spread": D / (steps.stop - steps.start),
            "delta": None if delta is None else float(delta), "anomaly": base["anomaly"], "dlnm": base["model"]}


def max_lag(cfg, T):
    value = ((cfg.get("explain") or {}).get("lag_response") or {}).get("max_lag")
    if value is None:
        return T
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= T:
        raise InputError(f"explain.lag_response.max_lag must be a whole number of days between 1 and the window's {T}, "
                         f"got {value!r}")
    return value


def check(cfg, ds):
    """Refuse bad ``explain.lag_response`` settings for ``ds`` (raises, naming the key)."""
    settings(cfg, ds.store)
    max_lag(cfg, ds.T)


def baseline(cfg, train, region, variable, anomaly, model_settings, log=None):
    """The distributed-lag baseline fitted on ``train`` with this exposure, and the exposure's
    contrast (high minus low percentile of the training exposures) in standard deviations."""
    climate = ClimateFeatures(train.store, cfg["data"]["norm_period"], 1, log=log, region=region)
    fitted = dlnm.DistributedLag(*model_settings).fit(climate.lagged(train, variable, anomaly),
                                                     dlnm.covariates(cfg, train), train.labels)
    return fitted, fitted.at[1] - fitted.at[0]


def logit_changes(model, batch, channel, rows, cols, delta, lags, steps=slice(None)):
    """``[B, len(lags), 4]``: each person's logit change when ``channel`` is raised by ``delta`` over
    ``rows`` x ``cols`` at the day's ``steps`` (default every one) on the day at each lag, the other
    days unchanged. A day several people share is changed for one person at a time: each gets their
    own copy."""
    b = to_tensors(batch)
    wu, di = b["weather_unique"], b["day_index"]
    tab, mask, present = b["tab"], b["tab_mask"], b["weather_present"]
    if len(wu.shape) != 5:
        raise InputError("the lag-response changes the weather volumes; this loader gives cached day features")
    index = di.numpy().astype(np.int64)
    B, T = index.shape
    U = int(wu.shape[0])
    bump = np.zeros([int(s) for s in wu.shape[1:]], np.float32)
    bump[channel, steps, rows, cols] = delta
    bump = paddle.to_tensor(bump)
    chunk = max(1, PEOPLE_PER_PASS // B)
    out = []
    with paddle.no_grad():
        pooled = model.backbone(wu)
        days = model.embed_pooled(pooled)
        base = model.forward_days(days, di, tab, mask, weather_present=present, pooled=pooled).numpy()
        for a in range(0, len(lags), chunk):
            part = lags[a:a + chunk]
            positions = [T - int(lag) for lag in part]
            rows_u = np.concatenate([index[:, p] for p in positions])                 # [n * B]
            changed = paddle.gather(wu, paddle.to_tensor(rows_u)) + bump
            p_new = model.backbone(changed)
            new_index = np.concatenate([index] * len(part))
            for k, p in enumerate(positions):
                new_index[k * B:(k + 1) * B, p] = U + k * B + np.arange(B)
            logits = model.forward_days(
                paddle.concat([days, model.embed_pooled(p_new)]), paddle.to_tensor(new_index),
                paddle.concat([tab] * len(part)), paddle.concat([mask] * len(part)),
                weather_present=paddle.concat([present] * len(part)), pooled=paddle.concat([pooled, p_new])).numpy()
            out.append(logits.reshape(len(part), B, -1) - base[None])
    return np.concatenate(out).transpose(1, 0, 2)


def person_changes(model, cfg, ds, channel, rows, cols, delta, lags, max_people=None, log=None, steps=slice(None)):
    """Every person's ``[N, len(lags), 4]`` logit changes (people with a weather window only) and
    their dataset positions."""
    loader = make_loader(ds, cfg, shuffle=False)
    beat = Heartbeat(log, f"lag-response over {len(lags)} lags; batches", total=len(loader)) if log else None
    changes, order, seen = [], [], 0
    for idx, batch in zip(loader.ppeye_sampler, loader):
        if beat is not None:
            beat.step()
        idx = np.asarray(idx)
        keep = ds.weather_present[idx] > 0
        if keep.any():
            changes.append(logit_changes(model, batch, channel, rows, cols, delta, lags, steps)[keep])
            order.append(idx[keep])
            seen += int(keep.sum())
        if max_people and seen >= max_people:
            break
    if not changes:
        raise InputError(f"no person of this split has a weather window: no lag-response")
    return np.concatenate(changes), np.concatenate(order)


def summarise(changes, n_boot, seed, z_runs=None):
    """Curves from ``changes`` ``[R, N, L, 4]`` (R runs over the same N people): the mean over runs
    of the mean over people, a 95% percentile interval resampling people (the same draw in every
    run), and per lag the runs' sd, min and max."""
    changes = np.asarray(changes, np.float64)
    R, N = changes.shape[:2]
    per_run = changes.mean(axis=1)                                            # [R, L, 4]
    rng = np.random.default_rng(seed)
    draws = np.stack([np.bincount(rng.integers(0, N, N), minlength=N) for _ in range(int(n_boot))]) / N   # [n, N]
    boot = np.einsum("bn,rnlk->blk", draws, changes) / R                       # [n, L, 4]
    return {"mean": per_run.mean(axis=0), "low": np.percentile(boot, 2.5, axis=0),
            "high": np.percentile(boot, 97.5, axis=0), "runs_sd": per_run.std(axis=0, ddof=1) if R > 1 else None,
            "runs_min": per_run.min(axis=0), "runs_max": per_run.max(axis=0), "runs": R, "people": N}


def agreement(lags, curve, fitted, planted=None, diseases=DISEASES):
    """Per disease: the lags where the model's and the baseline's intervals exclude 0 (above and
    below), their overlap (shared lags over lags either finds), the curves' correlation over lags
    and, with the planted window ``{disease: (first, last)}``, how much of it each finds."""
    out = {}
    for j, d in enumerate(diseases):
        r = fitted.lag_response(j)
        at = {int(l): i for i, l in enumerate(r["lag"])}
        pos = [at[int(l)] for l in lags]
        found = {"model": {"above": set(lags[curve["low"][:, j] > 0].tolist()),
                           "below": set(lags[curve["high"][:, j] < 0].tolist())},
                 "dlnm": {"above": {int(l) for l, p in zip(lags, pos) if r["low"][p] > 0},
                          "below": {int(l) for l, p in zip(lags, pos) if r["high"][p] < 0}}}
        row = {}
        for side in ("above", "below"):
            m, b = found["model"][side], found["dlnm"][side]
            row[f"model_{side}_0"], row[f"dlnm_{side}_0"] = dlnm.lag_ranges(sorted(m)), dlnm.lag_ranges(sorted(b))
            row[f"overlap_{side}"] = round(len(m & b) / len(m | b), 3) if m | b else None
        a, b = curve["mean"][:, j], np.asarray(r["log_or"])[pos]
        row["correlation"] = round(float(np.corrcoef(a, b)[0, 1]), 3) if a.std() > 0 and b.std() > 0 else None
        if planted and d in planted:
            first, last = planted[d]
            window = set(range(first, last + 1)) & set(lags.tolist())
            row["planted"] = f"{first}-{last}"
            for who in ("model", "dlnm"):
                got = found[who]["above"]
                row[f"{who}_finds_planted"] = round(len(got & window) / max(len(window), 1), 3)
                row[f"{who}_inside_planted"] = round(len(got & window) / len(got), 3) if got else None
        out[d] = row
    return out


def rows(lags, curve, fitted, diseases=DISEASES):
    """CSV rows: per disease and lag the model's change (mean, interval, runs' spread) beside the
    baseline's log odds ratio and interval."""
    out = []
    for j, d in enumerate(diseases):
        r = fitted.lag_response(j)
        at = {int(l): i for i, l in enumerate(r["lag"])}
        for i, lag in enumerate(lags):
            p = at[int(lag)]
            out.append({"disease": d, "lag": int(lag), "model_log_odds": curve["mean"][i, j],
                        "model_ci_low": curve["low"][i, j], "model_ci_high": curve["high"][i, j],
                        "model_runs_sd": None if curve["runs_sd"] is None else curve["runs_sd"][i, j],
                        "model_runs_min": curve["runs_min"][i, j], "model_runs_max": curve["runs_max"][i, j],
                        "dlnm_log_or": r["log_or"][p], "dlnm_ci_low": r["low"][p], "dlnm_ci_high": r["high"][p]})
    return out


COLUMNS = ["disease", "lag", "model_log_odds", "model_ci_low", "model_ci_high", "model_runs_sd", "model_runs_min",
           "model_runs_max", "dlnm_log_or", "dlnm_ci_low", "dlnm_ci_high"]


def figure(lags, curve, fitted, variable, delta, planted=None, diseases=DISEASES):
    """One panel per disease: the model's curve and the baseline's, each with its 95% interval, and
    the planted window shaded when known."""
    plt = _figure()
    fig, axes = plt.subplots(1, len(diseases), figsize=(3.3 * len(diseases), 3.2), sharey=True)
    for j, (ax, d) in enumerate(zip(np.atleast_1d(axes), diseases)):
        r = fitted.lag_response(j)
        if planted and d in planted:
            ax.axvspan(planted[d][0] - 0.5, planted[d][1] + 0.5, color="0.85", lw=0, label="planted lags")
        ax.fill_between(r["lag"], r["low"], r["high"], color="tab:blue", alpha=0.2, lw=0)
        ax.plot(r["lag"], r["log_or"], color="tab:blue", lw=1.3, label="distributed-lag baseline")
        ax.fill_between(lags, curve["low"][:, j], curve["high"][:, j], color="tab:red", alpha=0.25, lw=0)
        ax.plot(lags, curve["mean"][:, j], color="tab:red", lw=1.5,
                label="model" + (f" ({curve['runs']} runs)" if curve["runs"] > 1 else ""))
        ax.axhline(0, color="k", lw=0.8, ls=":")
        ax.set_title(disease_title(d), fontsize=9)
        ax.set_xlabel("lag (days before the index date)")
    first = np.atleast_1d(axes)[0]
    first.set_ylabel(f"log odds, {get_variable(variable).short} +{delta:.2f} sd on that day")
    first.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def planted_window(gt, variable):
    """``{disease: (first, last)}`` of the synthetic data's planted event (``gt``: its
    ``ground_truth.json``) when it acts on ``variable`` (None otherwise)."""
    event = (gt or {}).get("event") or {}
    if not event or get_variable(event.get("variable", "")).short != get_variable(variable).short:
        return None
    first, last = (int(v) for v in event["lags"])
    return {d: (first, last) for d in (event.get("effects") or {})}


def analyse(cfg, models, ds, train, out_dir, gt=None, max_people=None, log=None):
    """The lag-response of ``models`` (one run, or several seeds of one config) on ``ds``'s people
    beside the distributed-lag baseline fitted on ``train``: writes ``lag_response.csv`` / ``.png``
    / ``.json`` and ``lag_response_people.npz`` (every person's logit changes, no identifiers) to
    ``out_dir``; returns the summary. ``gt``: the synthetic data's ``ground_truth.json``
    (:func:`ppeye.explain.truth.load_gt`), which adds the planted window."""
    s = settings(cfg, ds.store)
    fitted, contrast = baseline(cfg, train, s["region"], s["variable"], s["anomaly"], s["dlnm"], log=log)
    delta = s["delta"] if s["delta"] is not None else float(contrast)
    lags = np.arange(1, max_lag(cfg, ds.T) + 1)
    runs, order = [], None
    for model in models:
        model.eval()
        changes, got = person_changes(model, cfg, ds, s["channel"], s["rows"], s["cols"], delta * s["spread"], lags,
                                      max_people, log, s["steps"])
        if order is not None and not np.array_equal(order, got):
            raise InputError("the runs saw different people: their lag-responses cannot be pooled")
        runs.append(changes)
        order = got
    ec = cfg.get("evaluation") or {}
    curve = summarise(np.stack(runs), int(ec.get("bootstrap", 1000)), int(cfg.get("seed") or 0))
    planted = planted_window(gt, s["variable"])
    agree = agreement(lags, curve, fitted, planted)
    write_csv(os.path.join(out_dir, "lag_response.csv"), rows(lags, curve, fitted), COLUMNS)
    save_figure(figure(lags, curve, fitted, s["variable"], delta, planted), os.path.join(out_dir, "lag_response.png"))
    save_npz(os.path.join(out_dir, "lag_response_people.npz"), changes=np.stack(runs).astype(np.float32),
             lags=lags, delta=np.float64(delta))
    summary = {"variable": s["variable"], "region": s["region"], "hours": s["hours"], "delta_sd": round(delta, 4),
               "delta_units": round(delta * float(ds.store.std.reshape(-1)[s["channel"]]), 4),
               "delta_is": "explain.lag_response.delta" if s["delta"] is not None else
               f"the baseline's contrast: p{fitted.contrast[1]:g} - p{fitted.contrast[0]:g} of the training exposures",
               "runs": len(models), "people": int(curve["people"]), "lags": [1, int(lags[-1])],
               "baseline": fitted.params, "agreement": agree}
    with atomic_write(os.path.join(out_dir, "lag_response.json")) as f:
        json.dump(summary, f, indent=1, default=float)
    if log:
        for d, a in agree.items():
            log.info(f"lag-response {d}: model above 0 at {a['model_above_0'] or 'no lag'}, baseline at "
                     f"{a['dlnm_above_0'] or 'no lag'} (overlap {a['overlap_above']}, correlation {a['correlation']})"
                     + (f"; planted {a['planted']}: model finds {a['model_finds_planted']}, baseline "
                        f"{a['dlnm_finds_planted']}" if "planted" in a else ""))
    return summary
