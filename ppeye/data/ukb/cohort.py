"""UK Biobank export -> ``cohort.parquet``: one row per participant with site, index date,
four labels, encoded features and split. Documented rules:

* **Features.** Read and encoded as ``ppeye/data/ukb/encoding.py`` says (missing codes,
  codings, categories fitted on the training split); the field list, kinds and code tables
  are saved to ``features/ukb_fields.json`` for inference.
* **Outcomes.** A disease's onset is the earliest date among its first-occurrence
  fields and, when the hospital diagnoses (41270 with dates in 41280) are in the
  export, its confirming ICD-10 codes. With ``ukb.refine_with_icd10``, an H35 first
  occurrence counts as AMD only if the person has no hospital H35 code or has H35.3.
  A participant with a disease whose date is a placeholder is excluded (their onset
  cannot be placed), as is one whose disease began before recruitment (prevalent)
  or before the weather window can cover it, or after ``data.end_date``.
* **Index dates.** Cases: the first onset among the four diseases; labels: every
  disease with onset within ``ukb.label_window_days`` after it. Controls (no onset
  ever recorded): the index date of a case drawn at random among the cases whose
  index date falls inside the control's own follow-up (recruitment or the start of
  weather coverage, to death or ``data.end_date``). The controls' index dates thus
  follow the cases' calendar distribution exactly, so the date cannot leak the label.
* **Site.** The assessment centre (field 54), or with ``ukb.site_from: home`` the
  configured centre nearest to the home location (OSGB 20074/20075), within
  ``ukb.max_home_distance_km``.
* **Splits.** Participant-level, stratified by the label pattern, with the
  fractions of ``ukb.split``; participants of ``ukb.external_centres`` form an
  ``external`` split, and with ``ukb.temporal_split`` (a date, or two) the others whose index
  date is after it form a ``period`` split (after the second date: ``period_2``), so training
  sees only earlier index dates.

* **Diagnosis history.** When the export has the hospital diagnoses, ``history.parquet`` holds
  each person's codes dated strictly before their index date (``ppeye/data/ukb/history.py``).

Every exclusion is counted in ``cohort_report.json``; ids never appear in logs.
"""
import json
import os

import numpy as np
import pandas as pd

from ...core.errors import ConfigError, DataError
from ...core.io import atomic_write
from ...core.logger import get_logger
from . import fields as F
from .centres import BY_CODE, resolve_sites
from .encoding import LESS_THAN_ONE_VALUE, feature_list, fit_encoding
from .geo import osgb_to_latlon
from .history import history_before_index, write_history
from .load import field_columns, read_table
from .missingness import write_missingness
from .provenance import cohort_settings
from .splits import assign_splits, temporal_cutoffs


def _dates(series):
    """Parse ``YYYY-MM-DD`` dates: ``(Series of datetime64 with NaT, placeholder mask)``. A column
    none of whose values is such a date is an error naming the column and the form it has (a
    date written another way must not become missing without a word)."""
    text = series.astype("string")
    placeholder = text.isin(F.PLACEHOLDER_DATES).fillna(False).to_numpy(dtype=bool)
    parsed = pd.to_datetime(text.where(~text.isin(F.PLACEHOLDER_DATES)), errors="coerce", format="%Y-%m-%d")
    given = (text.notna().to_numpy(dtype=bool) & (text.str.strip() != "").fillna(False).to_numpy(dtype=bool)
             & ~placeholder)                                  # a column of placeholders alone is not misformatted
    if given.any() and parsed.isna().to_numpy()[given].all():
        sample = text[given]
        form = ("dd/mm/yyyy or mm/dd/yyyy" if sample.str.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}").all()
                else "dd-mm-yyyy" if sample.str.fullmatch(r"\d{1,2}-\d{1,2}-\d{4}").all() else "another form")
        raise DataError(f"column {series.name}: none of its {int(given.sum())} dates is YYYY-MM-DD (they look like "
                        f"{form}); UK Biobank exports write YYYY-MM-DD: convert the column, ppeye does not guess "
                        f"the day/month order")
    return pd.Series(parsed, index=series.index, dtype="datetime64[ns]"), placeholder


def _hospital_records(frame):
    """The hospital diagnoses (41270) with their dates (41280), read and parsed once.

    A list of ``(codes, dates, placeholder)`` per array index: codes without dots in
    upper case (numpy array of str), dates as a Series, placeholder as a boolean array.
    """
    dates_cols = {c.split("-")[1]: c for c in field_columns(frame, F.ICD10_DATES)}
    records = []
    for col in field_columns(frame, F.ICD10_DIAGNOSES):
        codes = frame[col].fillna("").astype(str).str.replace(".", "", regex=False).str.upper().to_numpy(dtype=str)
        date_col = dates_cols.get(col.split("-")[1])
        dates, placeholder = _dates(frame[date_col]) if date_col is not None else (None, None)
        records.append((codes, dates, placeholder))
    return records


def _onsets(frame, disease, refine, report, hospital):
    """Earliest onset per participant (NaT if none) and whether a placeholder hides one.

    ``hospital`` is :func:`_hospital_records` of ``frame`` (parsed once for all diseases).
    """
    n = len(frame)
    best = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    unknown = np.zeros(n, dtype=bool)
    fo_any = np.zeros(n, dtype=bool)
    for field in F.FIRST_OCCURRENCE[disease]:
        for col in field_columns(frame, field):
            dates, placeholder = _dates(frame[col])
            unknown |= placeholder
            fo_any |= placeholder | dates.notna()
            best = best.where(best.notna() & ~((dates < best) & dates.notna()), dates)
    if hospital:
        confirm = F.ICD10_CONFIRM[disease]
        h35_other = np.zeros(n, dtype=bool)
        h353 = np.zeros(n, dtype=bool)
        for codes, dates, placeholder in hospital:
            hit = np.char.startswith(codes, confirm[0])
            for prefix in confirm[1:]:
                hit |= np.char.startswith(codes, prefix)
            is_h353 = np.char.startswith(codes, "H353")
            h35_other |= np.char.startswith(codes, "H35") & ~is_h353
            h353 |= is_h353
            if dates is not None:
                hit_dates = dates.where(hit)
                unknown |= hit & placeholder
                best = best.where(best.notna() & ~((hit_dates < best) & hit_dates.notna()), hit_dates)
        if disease == "amd" and refine:
            not_amd = fo_any & h35_other & ~h353
            report["h35_not_amd"] = int(not_amd.sum())
            best[not_amd] = pd.NaT
            unknown &= ~not_amd
    return best, unknown & best.isna()


def _sites(frame, cfg, sites, report):
    """Index into ``sites`` per row (-1 when not a study site)."""
    ukb = cfg["ukb"]
    idx = np.full(len(frame), -1)
    if ukb["site_from"] == "home":
        east = pd.to_numeric(frame.get("20074-0.0"), errors="coerce").to_numpy(dtype=float)
        north = pd.to_numeric(frame.get("20075-0.0"), errors="coerce").to_numpy(dtype=float)
        lat, lon = osgb_to_latlon(east, north)
        dist = np.stack([_haversine(lat, lon, c.lat, c.lon) for c in sites], axis=1)
        near = np.nanargmin(np.where(np.isnan(dist), np.inf, dist), axis=1)
        ok = np.nanmin(np.where(np.isnan(dist), np.inf, dist), axis=1) <= float(ukb["max_home_distance_km"])
        idx[ok] = near[ok]
        report["excluded"]["home_too_far_or_missing"] = int((~ok).sum())
        return idx
    codes = pd.to_numeric(frame["54-0.0"], errors="coerce").to_numpy()
    position = {c.code: i for i, c in enumerate(sites)}
    for i, code in enumerate(codes):
        idx[i] = position.get(int(code), -1) if not np.isnan(code) else -1
    unknown = ~np.isnan(codes) & ~np.isin(codes, list(BY_CODE))
    report["excluded"]["unknown_centre_code"] = int(unknown.sum())
    report["excluded"]["centre_not_in_data_sites"] = int(((idx < 0) & ~unknown).sum())
    return idx


def _haversine(lat, lon, lat0, lon0):
    p1, p2 = np.radians(lat), np.radians(lat0)
    dp, dl = p2 - p1, np.radians(lon0 - lon)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(a))


def build_cohort(cfg, log=None):
    """Write ``cohort.parquet``, ``features/ukb_fields.json`` and the reports; returns the report."""
    log = log or get_logger("ppeye.ukb")
    data, ukb = cfg["data"], cfg["ukb"]
    path = data["ukb_table"]
    sites = resolve_sites(data["sites"])
    features = feature_list(cfg)
    temporal_cutoffs(cfg)                       # a bad ukb.temporal_split fails before the table is read
    if ukb["site_from"] not in ("centre", "home"):
        raise ConfigError(f"ukb.site_from must be centre or home, got {ukb['site_from']!r}")
    outcome_fields = [f for fs in F.FIRST_OCCURRENCE.values() for f in fs]
    wanted = [f[0] for f in features] + [F.ASSESSMENT_DATE, F.ASSESSMENT_CENTRE, F.DEATH_DATE,
                                             F.ICD10_DIAGNOSES, F.ICD10_DATES, 20074, 20075] + outcome_fields
    frame, unknown_columns = read_table(path, wanted)
    required = [F.ASSESSMENT_DATE] + ([F.ASSESSMENT_CENTRE] if ukb["site_from"] == "centre" else [20074, 20075])
    for field in required:
        if not field_columns(frame, field):
            raise DataError(f"{path}: required field {field} is missing (expected a column {field}-0.0 or p{field}_i0)")
    for disease, fs in F.FIRST_OCCURRENCE.items():
        if not any(field_columns(frame, f) for f in fs):
            raise DataError(f"{path}: no first-occurrence field for {disease} ({', '.join(map(str, fs))})")
    absent = [f[0] for f in features if f"{f[0]}-0.0" not in frame]
    n = len(frame)
    report = {"made_with": cohort_settings(cfg), "table": os.path.basename(path), "rows": n, "excluded": {},
              "unreadable_values": {}, "unknown_columns": len(unknown_columns), "absent_feature_fields": absent}
    if len(absent) == len(features):
        raise DataError(f"{path}: none of the {len(features)} feature fields of ukb.features are in the table")
    if absent:
        log.warning(f"{len(absent)} of {len(features)} feature fields are not in the table; they are all-missing")

    start, end = pd.Timestamp(str(data["start_date"])), pd.Timestamp(str(data["end_date"]))
    cover = start + pd.Timedelta(days=int(data["window_days"]))
    if cover > end:
        raise ConfigError(f"data.window_days {data['window_days']} leaves no possible index date: the first one with "
                          f"a full window is {cover.date()}, after data.end_date {end.date()} (lengthen the weather "
                          f"period or shorten the window)")
    today = pd.Timestamp.today().normalize()
    assess, _ = _dates(frame["53-0.0"])
    death = _dates(frame["40000-0.0"])[0] if "40000-0.0" in frame else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    future = (assess > today).to_numpy(dtype=bool)
    birth_col = f"{F.YEAR_OF_BIRTH}-0.0"
    if birth_col in frame:
        born = pd.to_numeric(frame[birth_col], errors="coerce").to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            unborn = born > assess.dt.year.to_numpy(dtype=np.float64)
        report_unborn = int(unborn.sum())
    else:
        unborn, report_unborn = np.zeros(len(frame), bool), 0
    if future.any():
        log.warning(f"{int(future.sum())} rows have an assessment date in the future; they are excluded")
    report["excluded"]["assessment_date_missing_or_future"] = int((assess.isna().to_numpy() | future).sum())
    report["excluded"]["born_after_assessment"] = int((unborn & ~(assess.isna().to_numpy() | future)).sum())
    if report_unborn:
        log.warning(f"{report_unborn} rows give a year of birth (field {F.YEAR_OF_BIRTH}) after their assessment: "
                    f"excluded")
    site_idx = _sites(frame, cfg, sites, report)

    onset, unknown_date = {}, np.zeros(n, bool)
    hospital = _hospital_records(frame)
    for d in F.DISEASES:
        onset[d], unknown = _onsets(frame, d, bool(ukb["refine_with_icd10"]), report, hospital)
        unknown_date |= unknown
    onsets = pd.DataFrame(onset)
    first = onsets.min(axis=1)
    keep = ~(assess.isna().to_numpy() | future | unborn) & (site_idx >= 0)
    report["excluded"]["onset_date_unknown"] = int((keep & unknown_date).sum())
    keep &= ~unknown_date
    prevalent = (first <= assess).to_numpy() & first.notna().to_numpy()
    report["excluded"]["prevalent_at_recruitment"] = int((keep & prevalent).sum())
    keep &= ~prevalent
    has = first.notna().to_numpy()
    early = has & (first < cover).to_numpy()
    late = has & (first > end).to_numpy()
    report["excluded"]["onset_before_weather_window"] = int((keep & early).sum())
    report["excluded"]["onset_after_end_date"] = int((keep & late).sum())
    keep &= ~early & ~late
    case = keep & has
    control = keep & ~has
    if not case.any():
        raise DataError(f"{path}: no usable case (an onset of {', '.join(F.DISEASES)} dated inside the weather period, "
                        f"after recruitment) among {n} rows; the exclusions: {report['excluded']}; controls are "
                        f"indexed at case dates, so a table of controls alone cannot make a cohort")

    index_date = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    index_date[case] = first[case]
    rng = np.random.default_rng(int(ukb["seed"]))
    case_dates = np.sort(first[case].to_numpy(dtype="datetime64[D]"))
    fu_start = np.maximum(assess.to_numpy(dtype="datetime64[D]"), np.datetime64(cover.date()))
    fu_end = np.minimum(np.where(death.isna(), np.datetime64(end.date()), death.to_numpy(dtype="datetime64[D]")),
                        np.datetime64(end.date()))
    lo = np.searchsorted(case_dates, fu_start, side="left")
    hi = np.searchsorted(case_dates, fu_end, side="right")
    draws = hi > lo
    report["excluded"]["control_without_case_date_in_follow_up"] = int((control & ~draws).sum())
    control &= draws
    pick = lo + np.floor(rng.random(n) * np.maximum(hi - lo, 1)).astype(int)
    index_date[control] = case_dates[np.minimum(pick, len(case_dates) - 1)][control].astype("datetime64[ns]")
    rows = np.nonzero(case | control)[0]
    if len(rows) == 0 or case.sum() == 0:
        raise DataError(f"{path}: no usable cases after the exclusions {report['excluded']}")

    window = pd.Timedelta(days=int(ukb["label_window_days"]))
    labels = np.zeros((n, len(F.DISEASES)), dtype=np.int8)
    for k, d in enumerate(F.DISEASES):
        on = onsets[d]
        labels[:, k] = (case & on.notna().to_numpy() & (on <= index_date + window).to_numpy())
    site_codes = np.array([sites[i].code if i >= 0 else -1 for i in site_idx])
    split = assign_splits(labels[rows], site_codes[rows], index_date.to_numpy()[rows], cfg, rng)
    for name in ("train", "val", "test"):
        dates = index_date.to_numpy()[rows][split == name]
        if len(dates):
            report.setdefault("index_dates", {})[name] = [str(dates.min())[:10], str(dates.max())[:10]]
    if ukb.get("validation", "random") == "later" and (split == "val").any():
        log.info(f"validation: the {int((split == 'val').sum())} people with the latest index dates "
                 f"({' to '.join(report['index_dates']['val'])}; ukb.validation: later)")

    cohort = pd.DataFrame({
        "eid": frame["eid"].to_numpy()[rows],
        "row": rows + 1,  # 1-based data row of the export, for reports that must not name ids
        "site": site_codes[rows],
        "site_index": site_idx[rows],
        "index_date": index_date.to_numpy()[rows],
        "split": split,
    })
    for k, d in enumerate(F.DISEASES):
        cohort[f"label_{d}"] = labels[rows, k]
    encoded, fields_meta = fit_encoding(frame.iloc[rows], features, split == "train", report)
    share = float(ukb.get("warn_unreadable_share", 0.01))
    for key, what in (("unreadable_values", "unreadable values (text where a number or code belongs)"),
                      ("unknown_codes", "codes outside their ukb.features codes")):
        loud = {f: c for f, c in report.get(key, {}).items() if c > share * len(rows)}
        if loud:
            log.warning(f"{len(loud)} feature fields have more than {share:.0%} {what}, taken as missing: "
                        + ", ".join(f"field {f}: {c} of {len(rows)}" for f, c in sorted(loud.items())))
    cohort = pd.concat([cohort, encoded.reset_index(drop=True)], axis=1)
    report.update(_summary(cohort))
    history, report["history"] = history_before_index(hospital, index_date, rows) if hospital else (None, None)
    _write_outputs(cfg, cohort, fields_meta, report, history)
    log.info(f"cohort: {len(cohort)} participants ({int(case.sum())} cases, {int(control.sum())} controls), "
             f"{len(features)} features, excluded {sum(report['excluded'].values())} "
             f"({', '.join(f'{k} {v}' for k, v in report['excluded'].items() if v)})")
    return report


def _summary(cohort):
    out = {"participants": len(cohort), "splits": {}}
    for name, part in cohort.groupby("split"):
        out["splits"][name] = {"n": len(part), **{d: int(part[f"label_{d}"].sum()) for d in F.DISEASES}}
    return out


def _write_outputs(cfg, cohort, fields_meta, report, history):
    work = cfg["data"]["work_dir"]
    feat_dir = os.path.join(work, "features")
    os.makedirs(feat_dir, exist_ok=True)
    write_missingness(work, cohort, fields_meta)
    with atomic_write(os.path.join(feat_dir, "ukb_fields.json")) as f:
        json.dump({"fields": fields_meta, "diseases": list(F.DISEASES),
                   "missing_codes": list(F.MISSING_CODES), "less_than_one_value": LESS_THAN_ONE_VALUE}, f, indent=1)
    with atomic_write(os.path.join(work, "cohort_report.json")) as f:
        json.dump(report, f, indent=1, default=str)
    if history is not None:
        write_history(work, history)
    elif os.path.isfile(os.path.join(work, "history.parquet")):   # an earlier cohort's: never read with this one
        os.remove(os.path.join(work, "history.parquet"))
    with atomic_write(os.path.join(work, "cohort.parquet"), mode="wb") as f:
        cohort.to_parquet(f, index=False)
