"""Climate-scenario risk (``tools/simulate.py``): the cohort's predicted risk under changed weather.

A scenario changes one variable of every person's window, in the store's units (K for
temperatures, as ``ppeye.data.store.open_dataset`` lists them), over the box or a region of it,
every step of the days it touches (or the steps ``hours: [first, last]``, e.g. the afternoon for
solar radiation):

- ``warming``: every day by ``change``;
- ``monthly``: each day by ``change[month - 1]`` (12 values: a delta-change scenario by month);
- ``heatwave``: the days at lags ``[first, last]`` before the index date by ``change`` (each
  person's own days: people sharing a day get their own copy).

Per scenario, disease and subgroup (everyone, then each group of ``simulate.subgroups``) the
mean change of the log odds and of the model's risk (as it gives it: its calibration is in
``tools/eval.py``'s report), with 95% percentile intervals from resampling people.
"""
import json
import os

import numpy as np

from ..baselines.features import box_slices
from ..core.errors import InputError
from ..core.io import atomic_write, write_csv
from ..core.paddle_env import import_paddle
from ..core.progress import Heartbeat
from ..data.attributes import person_attributes
from ..data.era5.variables import get_variable
from ..data.ukb.fields import disease_title
from ..engine.predict import make_loader, to_tensors
from ..metrics import DISEASES
from ..metrics.plots import _figure, save_figure

paddle = import_paddle()
KEYS = {"warming": {"name", "kind", "variable", "change", "region", "hours"},
        "monthly": {"name", "kind", "variable", "change", "region", "hours"},
        "heatwave": {"name", "kind", "variable", "change", "region", "hours", "lags"}}


def parse(scenarios, store, T):
    """``simulate.scenarios`` checked against the store and the window (errors name the scenario and
    key); each gains its channel, row and column slices and its change in standard deviations."""
    if not isinstance(scenarios, list) or not scenarios:
        raise InputError(f"simulate.scenarios must be a list of scenarios, got {scenarios!r}")
    shorts = [get_variable(v).short for v in store.variables]
    std = store.std.reshape(-1)
    out, names = [], set()
    for i, sc in enumerate(scenarios):
        where = f"simulate.scenarios[{i}]"
        if not isinstance(sc, dict):
            raise InputError(f"{where} must be a mapping (name, kind, variable, change, ...), got {sc!r}")
        kind = sc.get("kind")
        if kind not in KEYS:
            raise InputError(f"{where}.kind must be one of {', '.join(KEYS)}, got {kind!r}")
        unknown = sorted(set(sc) - KEYS[kind])
        missing = sorted(({"name", "variable", "change"} | ({"lags"} if kind == "heatwave" else set())) - set(sc))
        if unknown or missing:
            raise InputError(f"{where} ({kind}): " + "; ".join(
                ([f"unknown key(s) {unknown} (a {kind} takes {sorted(KEYS[kind])})"] if unknown else []) +
                ([f"missing {missing}"] if missing else [])))
        name = str(sc["name"])
        if name in names:
            raise InputError(f"{where}.name {name!r} is used twice")
        names.add(name)
        short = get_variable(sc["variable"]).short
        if short not in shorts:
            raise InputError(f"{where}.variable {sc['variable']!r} is not in the store's variables {store.variables}")
        c = shorts.index(short)
        change = np.asarray(sc["change"], np.float64) if not isinstance(sc["change"], bool) else np.array(np.nan)
        want = (12,) if kind == "monthly" else ()
        if change.shape != want or not np.all(np.isfinite(change)):
            raise InputError(f"{where}.change must be {'12 numbers (January first)' if want else 'a number'} in the "
                             f"store's units of {short}, got {sc['change']!r}")
        lags = None
        if kind == "heatwave":
            lags = sc["lags"]
            if not (isinstance(lags, list) and len(lags) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                      for v in lags) and 1 <= lags[0] <= lags[1] <= T):
                raise InputError(f"{where}.lags must be [first, last] days before the index date within 1..{T}, "
                                 f"got {lags!r}")
        rows, cols = box_slices(sc.get("region"), store.shape[-2:])
        D, hours = int(store.shape[1]), sc.get("hours")
        if hours is not None and not (isinstance(hours, list) and len(hours) == 2 and all(
                isinstance(h, int) and not isinstance(h, bool) for h in hours) and 0 <= hours[0] <= hours[1] < D):
            raise InputError(f"{where}.hours must be [first, last] steps of the day within 0..{D - 1}, got {hours!r}")
        steps = slice(0, D) if hours is None else slice(hours[0], hours[1] + 1)
        out.append({"name": name, "kind": kind, "variable": sc["variable"], "channel": c, "rows": rows, "cols": cols,
                    "steps": steps, "hours": hours, "change": change.tolist(), "change_sd": change / float(std[c]),
                    "lags": lags, "region": sc.get("region")})
    return out


def _encode(model, weather):
    pooled = model.backbone(weather)
    return pooled, model.embed_pooled(pooled)


def scenario_changes(model, batch, dates, sc):
    """``[B, 4]`` logit changes of one batch under scenario ``sc`` (from :func:`parse`); ``dates``
    ``[B, T]`` the calendar date (datetime64[D]) of each window day."""
    b = to_tensors(batch)
    wu, tab, mask, present = b["weather_unique"], b["tab"], b["tab_mask"], b["weather_present"]
    index = b["day_index"].numpy().astype(np.int64)
    B, T = index.shape
    U = int(wu.shape[0])
    with paddle.no_grad():
        pooled, days = _encode(model, wu)
        base = model.forward_days(days, b["day_index"], tab, mask, weather_present=present, pooled=pooled)
        if sc["kind"] == "heatwave":                     # each person's days at those lags, a copy each
            first, last = sc["lags"]
            positions = np.arange(T - last, T - first + 1)
            bump = np.zeros([int(s) for s in wu.shape[1:]], np.float32)
            bump[sc["channel"], sc["steps"], sc["rows"], sc["cols"]] = sc["change_sd"]
            changed = paddle.gather(wu, paddle.to_tensor(index[:, positions].reshape(-1))) + paddle.to_tensor(bump)
            p_new, d_new = _encode(model, changed)
            new_index = index.copy()
            new_index[:, positions] = U + np.arange(B * len(positions)).reshape(B, len(positions))
            days, pooled = paddle.concat([days, d_new]), paddle.concat([pooled, p_new])
        else:                                            # a change by calendar day: each distinct day once
            month = np.zeros(U, np.int64)
            month[index.reshape(-1)] = (dates.astype("datetime64[M]").astype(np.int64) % 12).reshape(-1)
            per_day = (np.full(U, float(sc["change_sd"])) if sc["kind"] == "warming"
                       else np.asarray(sc["change_sd"])[month]).astype(np.float32)
            bump = np.zeros([U] + [int(s) for s in wu.shape[1:]], np.float32)
            bump[:, sc["channel"], sc["steps"], sc["rows"], sc["cols"]] = per_day[:, None, None, None]
            pooled, days = _encode(model, wu + paddle.to_tensor(bump))
            new_index = index
        logits = model.forward_days(days, paddle.to_tensor(new_index), tab, mask, weather_present=present, pooled=pooled)
    return base.numpy(), logits.numpy() - base.numpy()


def summary_rows(name, base, change, groups, n_boot, seed, diseases=DISEASES):
    """CSV rows for one scenario: per subgroup (``{"all": everyone, "<attribute>=<group>": mask}``) and
    disease the mean log-odds and risk changes with percentile intervals over resampled people."""
    risk = 1 / (1 + np.exp(-(base + change))) - 1 / (1 + np.exp(-base))          # [N, 4]
    rng = np.random.default_rng(seed)
    rows = []
    for group, keep in groups.items():
        n = int(keep.sum())
        if n == 0:
            continue
        draws = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(int(n_boot))]) / n
        for values, what in ((change[keep], "log_odds"), (100 * risk[keep], "risk_points")):
            boot = draws @ values                                                   # [n_boot, 4]
            for j, d in enumerate(diseases):
                rows.append({"scenario": name, "subgroup": group, "people": n, "disease": d, "change": what,
                             "mean": float(values[:, j].mean()), "ci_low": float(np.percentile(boot[:, j], 2.5)),
                             "ci_high": float(np.percentile(boot[:, j], 97.5))})
    return rows


def _short_title(disease):
    """A tick label that fits under a bar: the abbreviation a title ends with (AMD, DR), else the title."""
    title = disease_title(disease)
    return title[title.rfind("(") + 1:-1] if title.endswith(")") else title


def figure(rows, scenarios, diseases=DISEASES):
    """One panel per scenario: everyone's mean risk change per disease (percentage points) with its
    interval."""
    plt = _figure()
    fig, axes = plt.subplots(1, len(scenarios), figsize=(3.4 * len(scenarios), 3.0), sharey=True, squeeze=False)
    for ax, sc in zip(axes[0], scenarios):
        got = {r["disease"]: r for r in rows if r["scenario"] == sc["name"] and r["subgroup"] == "all"
               and r["change"] == "risk_points"}
        mean = np.array([got[d]["mean"] for d in diseases])
        err = np.array([[got[d]["mean"] - got[d]["ci_low"] for d in diseases],
                        [got[d]["ci_high"] - got[d]["mean"] for d in diseases]])
        ax.bar(range(len(diseases)), mean, yerr=err, color="tab:orange", capsize=3)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(range(len(diseases)), [_short_title(d) for d in diseases], fontsize=8)
        ax.set_title(sc["name"], fontsize=9)
    axes[0][0].set_ylabel("risk change\n(percentage points)", fontsize=9)
    fig.tight_layout()
    return fig


COLUMNS = ["scenario", "subgroup", "people", "disease", "change", "mean", "ci_low", "ci_high"]


def settings(cfg, ds):
    """``simulate``'s scenarios (parsed) and subgroups, checked before anything runs."""
    section = cfg.get("simulate") or {}
    subgroups = list(section.get("subgroups") or [])
    known = ("centre", "season", "age_band", "sex")
    bad = [g for g in subgroups if g not in known]
    if bad:
        raise InputError(f"simulate.subgroups: unknown {bad}; choose from {list(known)}")
    return parse(section.get("scenarios"), ds.store, ds.T), subgroups


def simulate(cfg, model, ds, out_dir, log=None, max_people=None):
    """Every scenario of ``simulate.scenarios`` on ``ds``'s people with a weather window: writes
    ``scenarios.csv`` / ``.png`` / ``.json`` to ``out_dir`` (means over people and groups only, no
    person's row); returns the rows."""
    scenarios, subgroups = settings(cfg, ds)
    model.eval()
    loader = make_loader(ds, cfg, shuffle=False)
    beat = Heartbeat(log, f"{len(scenarios)} scenario(s); batches", total=len(loader)) if log else None
    base, changes, order = [], {sc["name"]: [] for sc in scenarios}, []
    for idx, batch in zip(loader.ppeye_sampler, loader):
        if beat is not None:
            beat.step()
        idx = np.asarray(idx)
        keep = ds.weather_present[idx] > 0
        if not keep.any():
            continue
        dates = ds.store.dates[ds.start[idx][:, None] + np.arange(ds.T)]
        for sc in scenarios:
            b, d = scenario_changes(model, batch, dates, sc)
            changes[sc["name"]].append(d[keep])
        base.append(b[keep])
        order.append(idx[keep])
        if max_people and sum(len(o) for o in order) >= max_people:
            break
    if not order:
        raise InputError("no person of this split has a weather window: no scenario can change their weather")
    base, order = np.concatenate(base), np.concatenate(order)
    attrs = person_attributes(cfg, ds.cohort_pos[order])
    groups = {"all": np.ones(len(order), bool)}
    for attr in subgroups:
        for g in sorted(set(attrs.get(attr, []))):
            groups[f"{attr}={g}"] = attrs[attr] == g
    ec = cfg.get("evaluation") or {}
    rows = []
    for sc in scenarios:
        rows += summary_rows(sc["name"], base, np.concatenate(changes[sc["name"]]), groups,
                             int(ec.get("bootstrap", 1000)), int(cfg.get("seed") or 0))
    write_csv(os.path.join(out_dir, "scenarios.csv"), rows, COLUMNS)
    save_figure(figure(rows, scenarios), os.path.join(out_dir, "scenarios.png"))
    described = [{k: sc[k] for k in ("name", "kind", "variable", "change", "lags", "region", "hours")} for sc in scenarios]
    with atomic_write(os.path.join(out_dir, "scenarios.json")) as f:
        json.dump({"people": int(len(order)), "scenarios": described, "subgroups": subgroups,
                   "risk": "the model's own risk (its calibration: tools/eval.py); changes are means over people"},
                  f, indent=1)
    if log:
        for r in rows:
            if r["subgroup"] == "all" and r["change"] == "risk_points":
                log.info(f"scenario {r['scenario']}: {r['disease']} risk {r['mean']:+.2f} points "
                         f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}] ({r['people']} people)")
    return rows
