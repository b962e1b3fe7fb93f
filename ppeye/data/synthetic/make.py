"""Built-in synthetic data in the raw formats of the real sources, with planted ground truth.

``make_synthetic(cfg, out_dir)`` writes::

    out_dir/era5/<YYYY>/<MM>/<group>.zip|nc   hourly ERA5-Land-like files (CDS NetCDF layout)
    out_dir/era5/manifest.jsonl               one line per file (variables, month, area)
    out_dir/ukb.csv (or .tsv)                 a UK Biobank-style export (ukbconv or RAP names)
    out_dir/ground_truth.json                 the planted signals, their parameters, oracle AUCs
    out_dir/truth.csv                         per participant: reference date, subgroup,
                                              planted exposures, true risks and labels

Everything is deterministic from ``synthetic.seed``. The whole directory is
written to a temporary name and renamed at the end, so an interrupted run
leaves nothing half-written. See :mod:`.weather`, :mod:`.cohort`, :mod:`.signals`.
"""
import json
import os
import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ...core.errors import ConfigError
from ...core.io import atomic_directory
from ..era5.variables import resolve_variables
from ..ukb import fields as F
from ..ukb.centres import resolve_sites
from . import cohort, signals
from .history import plant_history
from .raw_files import month_list, write_manifest, write_month
from .weather import SiteGeometry, WeatherGenerator, land_mask

FIRST_OCCURRENCE_CATARACT_OTHER = 0.2  # share of cataract cases recorded under H26 (131166)
HOSPITAL_RECORD_RATE = 0.7  # share of cases that also have a hospital ICD-10 diagnosis
BACKGROUND_ICD10 = ("I10", "E119", "K219", "M179", "H524", "J459", "I251", "N390", "R074", "Z864")
PREVALENT_RATE = 0.02  # people whose eye disease began before they were recruited
H35_NOT_AMD_RATE = 0.005  # other retinal disorders (H35 but not H35.3): not AMD


def _spec(cfg):
    data, syn = cfg["data"], cfg["synthetic"]
    sites = resolve_sites(data["sites"])
    variables = resolve_variables(data["variables"])
    start, end = pd.Timestamp(str(data["start_date"])), pd.Timestamp(str(data["end_date"]))
    window = int(data["window_days"])
    if end < start + pd.Timedelta(days=window + 30):
        raise ConfigError(
            f"data.start_date {start.date()} to data.end_date {end.date()} must span more than "
            f"data.window_days ({window}) plus a month, so that index dates have a full window"
        )
    box = tuple(data["box"])
    if len(box) != 2:
        raise ConfigError(f"data.box must be [height, width], got {data['box']}")
    if syn["table_style"] not in ("ukbconv", "rap"):
        raise ConfigError(f"synthetic.table_style must be ukbconv or rap, got {syn['table_style']!r}")
    if syn["table_format"] not in ("csv", "tsv"):
        raise ConfigError(f"synthetic.table_format must be csv or tsv, got {syn['table_format']!r}")
    if int(syn["num_participants"]) < 10:
        raise ConfigError(f"synthetic.num_participants must be at least 10, got {syn['num_participants']}")
    for d in F.DISEASES:
        p = syn["prevalence"].get(d)
        if p is None or not 0 < p < 0.5:
            raise ConfigError(f"synthetic.prevalence.{d} must be in (0, 0.5), got {p!r}")
    sig = signals.validate(syn["signals"], variables, window)
    return sites, variables, start, end, window, box, sig


def _coastal(sites, setting):
    if setting is None:
        return [c for c in sites if c.coastal]
    if not setting:
        return []
    chosen = resolve_sites(setting)
    flat = [c for c in chosen if not c.coastal]
    if flat:
        raise ConfigError(f"synthetic.coastal lists inland centres: {', '.join(c.name for c in flat)}")
    return chosen


def make_synthetic(cfg, out_dir, overwrite=False, progress=None, log=print):
    """Write the synthetic sources for ``cfg`` into ``out_dir``; return a summary dict."""
    sites, variables, start, end, window, box, sig = _spec(cfg)
    syn = cfg["synthetic"]
    seed = int(syn["seed"])
    show = progress if progress is not None else False
    t0 = time.time()
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        geometry = SiteGeometry(sites, box, float(cfg["data"]["resolution"]), int(syn["margin_cells"]), sig["event"]["region"])
        land = land_mask(geometry, _coastal(sites, syn["coastal"]))
        gen = WeatherGenerator(variables, geometry, land, start, end, sig, seed)
        era5_dir = os.path.join(tmp, "era5")
        manifest = []
        months = month_list(start, end)
        for year, month in tqdm(months, desc="synthetic ERA5", unit="month", disable=not show):
            days, fields = gen.month(year, month)
            manifest += write_month(era5_dir, year, month, days, fields, variables, geometry, int(syn["group_size"]))
        write_manifest(era5_dir, manifest)
        weather_s = time.time() - t0

        table, truth, gt = _cohort(cfg, sites, start, end, window, sig, gen, seed, show)
        name = "ukb." + syn["table_format"]
        _write_table(table, os.path.join(tmp, name), "\t" if syn["table_format"] == "tsv" else ",", show)
        truth.to_csv(os.path.join(tmp, "truth.csv"), index=False)
        raw_bytes = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(era5_dir) for f in fs)
        gt.update(
            grid={"rows": len(geometry.lats), "cols": len(geometry.lons), "area": geometry.grid.area,
                  "land_share": float(land.mean())},
            files={"era5": "era5", "table": name, "truth": "truth.csv", "era5_files": len(manifest),
                   "era5_megabytes": round(raw_bytes / 2**20, 2)},
        )
        with open(os.path.join(tmp, "ground_truth.json"), "w") as f:
            json.dump(gt, f, indent=2)
    gt["seconds"] = {"weather": round(weather_s, 1), "total": round(time.time() - t0, 1)}
    return gt


def _ref_index(dates, first_day):
    return (pd.DatetimeIndex(dates) - first_day).days.to_numpy()


def _cohort(cfg, sites, start, end, window, sig, gen, seed, show):
    syn = cfg["synthetic"]
    n = int(syn["num_participants"])
    rng = np.random.default_rng([seed, 5])
    people = cohort.People(n, sites, start, end, int(syn["assessment_years_before"]), rng)
    first_day = gen.days[0]  # the day before start_date
    envelope = gen.site_envelope()
    ev, per, groups = sig["event"], sig["periodic"], sig["subgroups"]
    lag_min, lag_max = ev["lags"]

    # planted exposures over every possible (site, reference day): their mean and sd standardise
    all_ref = np.arange(_ref_index([start + pd.Timedelta(days=window)], first_day)[0], len(gen.days))
    grid_site = np.repeat(np.arange(len(sites)), len(all_ref))
    grid_ref = np.tile(all_ref, len(sites))
    ev_all = signals.window_sums(gen.event_exposure, grid_site, grid_ref, lag_min, lag_max)
    per_all = signals.window_sums(envelope, grid_site, grid_ref, 1, window) / window
    ev_stats = (float(ev_all.mean()), float(ev_all.std() + 1e-12))
    per_stats = (float(per_all.mean()), float(per_all.std() + 1e-12))

    # each person's reference date: uniform within their follow-up covered by weather (day numbers)
    end_i = _ref_index([end], first_day)[0]
    lo = np.maximum(_ref_index(people.assessment, first_day), all_ref[0])
    death_i = np.where(people.death.notna(), _ref_index(people.death.fillna(end), first_day), end_i + 1)
    hi = np.minimum(death_i - 1, end_i)
    eligible = hi >= lo
    offset = np.floor(rng.random(n) * (np.maximum(hi - lo, 0) + 1)).astype(int)
    ref_idx = np.where(eligible, lo + offset, all_ref[0])
    ref = first_day + pd.to_timedelta(ref_idx, unit="D")
    z_event = (signals.window_sums(gen.event_exposure, people.site, ref_idx, lag_min, lag_max) - ev_stats[0]) / ev_stats[1]
    z_per = (signals.window_sums(envelope, people.site, ref_idx, 1, window) / window - per_stats[0]) / per_stats[1]
    covariates, age_at = people.covariates(ref)
    older = age_at >= groups["older_age"]
    winter = np.isin(ref.month, groups["winter_months"])

    probs, labels, intercepts, oracle = {}, {}, {}, {}
    for d in F.DISEASES:
        rest = sum(w * covariates[name] for name, _, w in signals.PATIENT_EFFECTS[d])
        e_eff = ev.get("effects", {}).get(d, {})
        p_eff = per.get("effects", {}).get(d, {})
        rest = rest + np.where(older, e_eff.get("older", 0.0), e_eff.get("younger", 0.0)) * z_event
        rest = rest + np.where(winter, p_eff.get("winter", 0.0), p_eff.get("summer", 0.0)) * z_per
        b = signals.solve_intercept(rest[eligible], syn["prevalence"][d])
        p = np.where(eligible, 1 / (1 + np.exp(-(b + rest))), 0.0)
        y = (rng.random(n) < p) & eligible
        probs[d], labels[d], intercepts[d] = p, y, b
        oracle[d] = signals.auc(p[eligible], y[eligible])

    # onset dates: one disease at the reference date, any others within 180 days after it
    onset = {d: pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]") for d in F.DISEASES}
    any_case = np.zeros(n, bool)
    for d in F.DISEASES:
        any_case |= labels[d]
    first = {}
    for i in np.nonzero(any_case)[0]:
        ds = [d for d in F.DISEASES if labels[d][i]]
        lead = ds[rng.integers(len(ds))]
        first[i] = lead
        room = max(int(hi[i] - ref_idx[i]), 0)
        for d in ds:
            later = 0 if d == lead else int(rng.integers(0, min(180, room) + 1))
            onset[d].iloc[i] = ref[i] + pd.Timedelta(days=later)

    planted, history_flags, history_truth = plant_history(people, labels, eligible, seed)
    table, flags = _outcome_columns(cfg, people, onset, labels, any_case, rng, start, end, planted)
    flags.update(history_flags)
    features = cohort.synthetic_fields(cfg, seed)
    true_values = cohort.make_feature_values(features, people, seed)
    exported, miss_report = cohort.apply_missingness(features, true_values, syn["missing"], seed, n)
    eids = rng.choice(np.arange(1000000, 6000000), n, replace=False)
    columns = {"eid": eids}
    style = syn["table_style"]
    for spec in features:
        if spec.kind == "multiple":                     # one column per array: p6150_i0_a0, ... (6150-0.0, ...)
            for a in range(spec.arrays):
                columns[_col(style, spec.field, spec.instanced, a)] = _as_column(exported[spec.field][:, a], spec)
        else:
            columns[_col(style, spec.field, spec.instanced)] = _as_column(exported[spec.field], spec)
    columns[_col(style, F.ASSESSMENT_DATE, True)] = people.assessment.strftime("%Y-%m-%d")
    columns[_col(style, F.ASSESSMENT_CENTRE, True)] = people.centre_code
    columns[_col(style, F.DEATH_DATE, True)] = np.where(people.death.notna(), people.death.strftime("%Y-%m-%d"), None)
    for key, values in table.items():
        field, array = key
        columns[_col(style, field, False, array)] = values
    frame = pd.DataFrame(columns)
    frame = frame[["eid"] + sorted(frame.columns[1:], key=_col_sort_key)]

    truth = pd.DataFrame({
        "eid": eids, "centre": people.centre_code, "eligible": eligible,
        "reference_date": np.where(eligible, ref.strftime("%Y-%m-%d"), ""), "age_at_reference": np.round(age_at, 2),
        "older": older & eligible, "winter": winter & eligible,
        "z_event": np.where(eligible, z_event, np.nan), "z_periodic": np.where(eligible, z_per, np.nan),
    })
    for d in F.DISEASES:
        truth[f"p_{d}"] = np.round(probs[d], 6)
        truth[f"y_{d}"] = labels[d].astype(int)
        truth[f"onset_{d}"] = onset[d].dt.strftime("%Y-%m-%d").to_numpy()
    for key, values in flags.items():
        truth[key] = values

    region = SiteGeometryRegion(gen.geo.region, cfg["data"]["box"])
    gt = {
        "description": "Planted signals of ppeye's synthetic data (see ppeye/data/synthetic/signals.py)",
        "seed": int(syn["seed"]),
        "sites": [{"code": c.code, "name": c.name, "lat": c.lat, "lon": c.lon, "coastal": c.coastal} for c in sites],
        "variables": [v.short for v in gen.variables],
        "start_date": str(start.date()), "end_date": str(end.date()),
        "window_days": window, "box": list(cfg["data"]["box"]),
        "event": {**_plain(ev), "region_cells": region.cells, "region_area_share": region.share,
                  "standardisation": {"mean": ev_stats[0], "sd": ev_stats[1]}},
        "periodic": {**_plain(per), "standardisation": {"mean": per_stats[0], "sd": per_stats[1]}},
        "subgroups": _plain(groups),
        "patient_effects": {d: [{"covariate": c, "field": f, "weight": w} for c, f, w in effs]
                            for d, effs in signals.PATIENT_EFFECTS.items()},
        "intercepts": intercepts,
        "prevalence": {"target": _plain(syn["prevalence"]),
                       "observed_among_eligible": {d: float(labels[d][eligible].mean()) for d in F.DISEASES}},
        "oracle_auc": oracle,
        "counts": {"participants": n, "eligible": int(eligible.sum()), "any_case": int(any_case.sum()),
                   "cases": {d: int(labels[d].sum()) for d in F.DISEASES},
                   "features": len(features), "feature_fields": [s.field for s in features]},
        "missingness": {str(k): v for k, v in miss_report.items()},
        "history": history_truth,
    }
    return frame, truth, gt


class SiteGeometryRegion:
    """The planted region in box cells, and its share of the box area."""

    def __init__(self, region, box):
        ry0, ry1, rx0, rx1 = region
        self.cells = {"rows": [ry0, ry1], "cols": [rx0, rx1]}
        self.share = (ry1 - ry0) * (rx1 - rx0) / float(box[0] * box[1])


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _col(style, field, instanced, array=None):
    if style == "rap":
        return F.rap_column(field, 0 if instanced else None, array)
    return F.ukbconv_column(field, 0, 0 if array is None else array)


def _col_sort_key(name):
    """Order columns by field id, then instance and array, as exports do."""
    if name.startswith("p"):
        parts = name[1:].split("_")
        field = int(parts[0])
        rest = [int(p[1:]) for p in parts[1:]]
    else:
        field_s, ia = name.split("-")
        field, rest = int(field_s), [int(x) for x in ia.split(".")]
    return (field, rest)


def _as_column(values, spec):
    if spec.kind == "continuous":
        return values
    return pd.arrays.IntegerArray(np.where(np.isnan(values), 0, values).astype(np.int64), mask=np.isnan(values))


def _outcome_columns(cfg, people, onset, labels, any_case, rng, start, end, planted):
    """First-occurrence dates, hospital ICD-10 arrays and truth flags for them; ``planted`` (per
    person a list of ``(code, date)``, from its own random stream) is added after the rest."""
    n = people.n
    syn = cfg["synthetic"]
    cols = {}
    fo = {f: np.full(n, None, dtype=object) for d in F.DISEASES for f in F.FIRST_OCCURRENCE[d]}
    known = {d: np.ones(n, bool) for d in F.DISEASES}
    diagnoses = [[] for _ in range(n)]
    fmt = "%Y-%m-%d"
    for d in F.DISEASES:
        for i in np.nonzero(labels[d])[0]:
            date = onset[d].iloc[i]
            field = F.FIRST_OCCURRENCE[d][0]
            if d == "cataract" and rng.random() < FIRST_OCCURRENCE_CATARACT_OTHER:
                field = F.FIRST_OCCURRENCE[d][1]
            if rng.random() < syn["missing"]["placeholder_date_rate"]:
                fo[field][i] = str(rng.choice(F.PLACEHOLDER_DATES))
                known[d][i] = False
            else:
                fo[field][i] = date.strftime(fmt)
            if rng.random() < HOSPITAL_RECORD_RATE:
                code = {"glaucoma": "H401", "cataract": "H251" if field == 131164 else "H268",
                        "amd": "H353", "dr": "H360"}[d]
                when = min(date + pd.Timedelta(days=int(rng.integers(0, 91))), end)
                diagnoses[i].append((code, when))
                if d == "dr" and rng.random() < 0.5:
                    diagnoses[i].append(("E113", when))
    # disease that began before recruitment: to be excluded as prevalent, not counted as incident
    prevalent = np.zeros(n, bool)
    candidates = np.nonzero(~any_case & (rng.random(n) < PREVALENT_RATE))[0]
    for i in candidates:
        d = F.DISEASES[rng.integers(len(F.DISEASES))]
        age_then = rng.uniform(35, max(people.age[i], 35.5))
        date = people.birth[i] + pd.Timedelta(days=int(age_then * 365.25))
        fo[F.FIRST_OCCURRENCE[d][0]][i] = min(date, people.assessment[i]).strftime(fmt)
        prevalent[i] = True
    # H35 that is not AMD: a naive "131182 = AMD" rule would count these
    h35_other = np.zeros(n, bool)
    for i in np.nonzero(~labels["amd"] & ~prevalent & (rng.random(n) < H35_NOT_AMD_RATE))[0]:
        span = max((end - people.assessment[i]).days, 1)
        date = people.assessment[i] + pd.Timedelta(days=int(rng.integers(0, span)))
        fo[131182][i] = date.strftime(fmt)
        diagnoses[i].append((str(rng.choice(["H350", "H351", "H358"])), date))
        h35_other[i] = True
    # everyday diagnoses unrelated to the eye
    for i in range(n):
        for _ in range(rng.poisson(0.8 + 0.8 * people.diabetes[i])):
            code = "E119" if people.diabetes[i] and rng.random() < 0.5 else str(rng.choice(BACKGROUND_ICD10))
            lo = people.assessment[i] - pd.Timedelta(days=5 * 365)
            date = lo + pd.Timedelta(days=int(rng.integers(0, max((end - lo).days, 1))))
            diagnoses[i].append((code, date))
    for i, extra in enumerate(planted):
        diagnoses[i].extend(extra)
    for field, values in fo.items():
        cols[(field, None)] = values
    width = max(1, max(len(d) for d in diagnoses))
    for a in range(width):
        cols[(F.ICD10_DIAGNOSES, a)] = [d[a][0] if a < len(d) else None for d in diagnoses]
        cols[(F.ICD10_DATES, a)] = [d[a][1].strftime(fmt) if a < len(d) else None for d in diagnoses]
    flags = {f"onset_date_known_{d}": known[d] for d in F.DISEASES}
    flags["prevalent_disease"] = prevalent
    flags["h35_not_amd"] = h35_other
    return cols, flags


def _write_table(frame, path, sep, show):
    chunk = 20000
    with open(path, "w", newline="") as f:
        for i in tqdm(range(0, len(frame), chunk), desc="UKB table", unit="chunk", disable=not show or len(frame) <= chunk):
            frame.iloc[i : i + chunk].to_csv(f, sep=sep, index=False, header=(i == 0), na_rep="")
