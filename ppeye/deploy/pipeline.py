"""The fitted patient-feature pipeline, carried from training to inference.

Training fits it in three files under ``<data.work_dir>/features/``: the field list with
kinds and category codes (``ukb_fields.json``, from ``--stage ukb``), the imputer
(``imputer.joblib``) and the standardisation statistics (``tab_stats.json``, both from
``--stage impute``). ``tools/export.py`` copies them beside the model, with the sites, so
that :class:`FeaturePipeline` turns a new UK Biobank-style table into the model's inputs
exactly as training did, without the training data.

Each row of a new table gets a site (the assessment centre 54, the home location
20074/20075, or ``lat``/``lon`` columns), an index date (an ``index_date`` column or one
date for all rows) and its features. A row with a problem (no usable site or date) is
marked with a reason and left out of the model's inputs; the others go on.
"""
import json
import os
import shutil

import numpy as np
import pandas as pd

from ..core.errors import DataError, InputError
from ..data.ukb import fields as F
from ..data.ukb.cohort import _haversine
from ..data.ukb.encoding import encode_features
from ..data.ukb.geo import osgb_to_latlon
from ..data.ukb.load import canonical
from ..data.ukb.multiple import multiple_fields, scored_column

FILES = ("ukb_fields.json", "imputer.joblib", "tab_stats.json")
EXTRA_COLUMNS = ("index_date", "lat", "lon")   # non-UKB columns a table to score may have

# problems a row can have (reported by row number; the row gets no risks)
PROBLEMS = {
    "index_date_missing": "no index date (empty or not YYYY-MM-DD)",
    "site_missing": "no assessment centre (54) or home location to place the person",
    "unknown_centre": "assessment centre not among the model's sites",
    "home_too_far": "home further than max_home_distance_km from every site of the model",
    "window_not_covered": "the weather window is not (completely) in the ERA5 store",
}

# what can be wrong with a scored row's features (its risks are given, and its status says so)
IMPLAUSIBLE_SD = 10.0      # a number this many training standard deviations from the training mean
MOSTLY_MISSING = 0.5       # more than this share of the model's feature fields missing (imputed)
FEATURE_FLAGS = {
    "unreadable": "text where a number or code belongs (taken as missing)",
    "unknown_code": "a code outside the field's coding (ukb.features codes; taken as missing)",
    "unseen_category": "a category code the training people never had (taken as missing)",
    "implausible": f"a number more than {IMPLAUSIBLE_SD:g} training standard deviations from the training mean "
                   f"(used as it is)",
    "mostly_missing": f"more than {MOSTLY_MISSING:.0%} of the feature fields missing (imputed)",
}


class FeaturePipeline:
    """Encode, impute and standardise patient features; place rows at sites.

    ``FeaturePipeline.from_work_dir(work_dir, site_info)`` or ``.load(directory)``;
    ``save(directory)`` writes the files and ``pipeline.json``.
    """

    def __init__(self, fields_meta, imputer, stats, sites, site_from="centre", max_home_distance_km=50.0):
        self.fields = fields_meta["fields"]
        self.meta = fields_meta
        self.imputer = imputer
        self.columns = list(stats["columns"])
        if [m["column"] for m in self.fields] != self.columns:
            raise DataError("the feature field list (ukb_fields.json) and tab_stats.json list different columns: "
                            "rerun tools/preprocess.py --stage impute")
        self.mean = np.asarray(stats["mean"], np.float32)
        self.std = np.asarray(stats["std"], np.float32)
        self.stats = stats
        self.sites = [dict(s) for s in sites]          # [{"code", "name", "lat", "lon"}]
        self.site_from = site_from
        self.max_home_distance_km = float(max_home_distance_km)

    # ------------------------------------------------------------------ files
    @classmethod
    def from_work_dir(cls, work_dir, sites, site_from="centre", max_home_distance_km=50.0):
        feat = os.path.join(work_dir, "features")
        missing = [f for f in FILES if not os.path.isfile(os.path.join(feat, f))]
        if missing:
            raise DataError(f"{feat} lacks {', '.join(missing)}: run tools/preprocess.py --stage ukb and "
                            f"--stage impute with this config first")
        return cls._read(feat, sites, site_from, max_home_distance_km)

    @classmethod
    def _read(cls, directory, sites, site_from, max_km):
        import joblib

        meta = json.load(open(os.path.join(directory, "ukb_fields.json")))
        stats = json.load(open(os.path.join(directory, "tab_stats.json")))
        imputer = joblib.load(os.path.join(directory, "imputer.joblib"))
        return cls(meta, imputer, stats, sites, site_from, max_km)

    def save(self, directory, source_dir):
        """Copy the fitted files from ``source_dir`` and write ``pipeline.json`` (the sites)."""
        os.makedirs(directory, exist_ok=True)
        for f in FILES:
            shutil.copyfile(os.path.join(source_dir, f), os.path.join(directory, f))
        with open(os.path.join(directory, "pipeline.json"), "w") as f:
            json.dump({"sites": self.sites, "site_from": self.site_from,
                       "max_home_distance_km": self.max_home_distance_km}, f, indent=1)

    @classmethod
    def load(cls, directory):
        missing = [f for f in FILES + ("pipeline.json",) if not os.path.isfile(os.path.join(directory, f))]
        if missing:
            raise InputError(f"{directory} is not a saved feature pipeline: missing {', '.join(missing)}")
        p = json.load(open(os.path.join(directory, "pipeline.json")))
        return cls._read(directory, p["sites"], p["site_from"], p["max_home_distance_km"])

    @property
    def feature_fields(self):
        """The field ids the model reads, once each (a multiple-answer field gives several columns)."""
        return list(dict.fromkeys(int(m["field"]) for m in self.fields))

    # ------------------------------------------------------------------ tables
    def read_table(self, path, allow_unknown_columns=False):
        """The table's columns that matter, as text with canonical names, and a report.

        A column that is neither a UK Biobank field (ukbconv ``31-0.0`` or RAP ``p31_i0``
        style), ``eid`` nor one of ``index_date``/``lat``/``lon`` is an error naming it,
        unless ``allow_unknown_columns``; UK Biobank fields the model does not use are
        ignored and counted.
        """
        if not os.path.isfile(path):
            raise InputError(f"table {path} does not exist")
        with open(path, encoding="utf-8", errors="replace") as f:
            header = f.readline()
        if not header.strip():
            raise DataError(f"{path}: the table is empty")
        sep = "\t" if header.count("\t") > header.count(",") else ","
        names = list(pd.read_csv(path, sep=sep, nrows=0).columns)
        wanted = set(map(str, self.feature_fields + [F.ASSESSMENT_CENTRE, 20074, 20075]))
        multiple = set(map(str, multiple_fields(self.fields)))
        keep, unknown, ignored = {}, [], 0
        for c in names:
            key = c.strip() if c.strip() in EXTRA_COLUMNS else canonical(c)
            if key is None:
                unknown.append(c)
            elif key in keep:
                raise DataError(f"{path}: columns {keep[key]!r} and {c!r} are the same field ({key})")
            elif key in EXTRA_COLUMNS or key == "eid" or scored_column(key, wanted, multiple):
                keep[key] = c
            else:
                ignored += 1
        if unknown and not allow_unknown_columns:
            shown = ", ".join(map(repr, unknown[:8])) + (" ..." if len(unknown) > 8 else "")
            raise DataError(f"{path}: unknown column(s) {shown}; expected eid, index_date, lat, lon and UK Biobank "
                            f"field columns like 34-0.0 or p34_i0 (pass --ignore_unknown_columns to skip others)")
        frame = pd.read_csv(path, sep=sep, usecols=list(keep.values()), dtype=str, keep_default_na=False,
                            na_values=[""], low_memory=False).rename(columns={v: k for k, v in keep.items()})
        absent = [f for f in self.feature_fields if f"{f}-0.0" not in frame]
        report = {"rows": len(frame), "unknown_columns_skipped": len(unknown), "unused_ukb_columns": ignored,
                  "absent_feature_fields": absent}
        if len(absent) == len(self.feature_fields):
            raise DataError(f"{path}: none of the model's {len(self.feature_fields)} feature fields is in the table "
                            f"(expected columns such as {self.fields[0]['field']}-0.0)")
        return frame, report

    def features(self, frame, report):
        """``(tab [N, F] standardised, tab_mask [N, F] 1 = observed, flags [N])`` for every row of
        ``frame``; ``flags`` says per row what is wrong with its features (``""``: nothing), e.g.
        ``"unreadable:31,34; implausible:21001"``, by kind of :data:`FEATURE_FLAGS` and field id."""
        rows = {}
        encoded = encode_features(frame, self.fields, report, rows)
        raw = encoded[self.columns].to_numpy(np.float64)
        observed = ~np.isnan(raw)
        continuous = np.array([m["kind"] != "categorical" for m in self.fields])
        with np.errstate(invalid="ignore"):
            far = observed & continuous & (np.abs((raw - self.mean) / self.std) > IMPLAUSIBLE_SD)
        rows["implausible"] = {str(m["field"]): far[:, j] for j, m in enumerate(self.fields)}
        missing = (~observed).sum(axis=1)
        mostly = missing > MOSTLY_MISSING * len(self.fields)
        kinds = [(kind, list(rows[kind]), np.stack(list(rows[kind].values()), axis=1))
                 for kind in ("unreadable", "unknown_code", "unseen_category", "implausible") if rows.get(kind)]
        flags = np.full(len(frame), "", dtype=object)
        hit = mostly.copy()
        for _, _, mask in kinds:
            hit |= mask.any(axis=1)
        for i in np.nonzero(hit)[0]:                 # a string only for the rows with something to say
            parts = [f"{kind}:{','.join(f for f, m in zip(names, mask[i]) if m)}"
                     for kind, names, mask in kinds if mask[i].any()]
            if mostly[i]:
                parts.append(f"mostly_missing:{int(missing[i])}/{len(self.fields)}")
            flags[i] = "; ".join(parts)
        values = self.imputer.transform(raw).astype(np.float32)
        tab = ((values - self.mean) / self.std).astype(np.float32)
        return tab, observed.astype(np.float32), flags

    def place(self, frame):
        """Site code per row (-1 when not placed) and the problem per row (None when placed)."""
        n = len(frame)
        codes = np.full(n, -1, np.int64)
        problem = np.array([None] * n, dtype=object)
        lat = lon = None
        if "lat" in frame and "lon" in frame:
            lat = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(float)
            lon = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(float)
        elif self.site_from == "home" and "20074-0.0" in frame and "20075-0.0" in frame:
            lat, lon = osgb_to_latlon(pd.to_numeric(frame["20074-0.0"], errors="coerce").to_numpy(float),
                                      pd.to_numeric(frame["20075-0.0"], errors="coerce").to_numpy(float))
        if lat is not None:
            dist = np.stack([_haversine(lat, lon, s["lat"], s["lon"]) for s in self.sites], axis=1)
            has = ~np.isnan(dist).any(axis=1)
            near = np.argmin(np.where(np.isnan(dist), np.inf, dist), axis=1)
            ok = has & (np.nanmin(np.where(np.isnan(dist), np.inf, dist), axis=1) <= self.max_home_distance_km)
            codes[ok] = np.array([self.sites[i]["code"] for i in near[ok]], np.int64)
            problem[~has] = "site_missing"
            problem[has & ~ok] = "home_too_far"
            return codes, problem
        if "54-0.0" not in frame:
            raise DataError("the table has no column to place people: expected 54-0.0 (assessment centre), "
                            "20074-0.0 and 20075-0.0 (home, with ukb.site_from: home) or lat and lon")
        centre = pd.to_numeric(frame["54-0.0"], errors="coerce").to_numpy(float)
        known = {int(s["code"]) for s in self.sites}
        for i, c in enumerate(centre):
            if np.isnan(c):
                problem[i] = "site_missing"
            elif int(c) not in known:
                problem[i] = "unknown_centre"
            else:
                codes[i] = int(c)
        return codes, problem


def index_dates(frame, fixed=None):
    """Index date per row (datetime64[D], NaT when missing) from ``index_date`` or ``fixed``."""
    if fixed is not None:
        try:
            day = np.datetime64(str(fixed), "D")
        except ValueError:
            raise InputError(f"--index_date {fixed!r} is not a date (YYYY-MM-DD)") from None
        return np.full(len(frame), day)
    if "index_date" not in frame:
        raise DataError("the table has no index_date column (YYYY-MM-DD per row); add one or pass --index_date")
    parsed = pd.to_datetime(frame["index_date"], errors="coerce", format="%Y-%m-%d")
    return parsed.to_numpy(dtype="datetime64[D]")
