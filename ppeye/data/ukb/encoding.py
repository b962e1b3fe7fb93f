"""UK Biobank feature fields -> model columns: which fields (``ukb.features``), how each value is
read and how it is encoded. Used by the cohort stage (fitting the encoding on the training split)
and by inference (applying the saved one, ``features/ukb_fields.json``).

* **Missing values.** Empty cells are missing. In non-continuous fields (questionnaire answers,
  counts, categories) the "no answer" codes (-1, -3, -121, -818) are missing, -10 ("less than
  one") becomes 0.5 in the count fields that use it, and -7 ("none of the above") stays a
  category. Continuous measurements keep negative values (Townsend index, refraction). Text where
  a number belongs is missing and counted per field.
* **Codings.** An entry of ``ukb.features`` may give ``codes`` (its coding's valid values): any
  other value is missing and counted per field (``unknown_codes``).
* **Encoding.** One column per field (``f<field>``): numbers as they are; categories as integer
  codes 0..K-1 in the sorted order of the values seen in the training split (an unseen value
  elsewhere is missing and counted, ``unseen_categories``). A multiple-answer field (kind
  ``multiple``) gives one indicator column per answer code, ``f<field>_c<code>`` (:mod:`.multiple`).
"""
import numpy as np
import pandas as pd

from ...core.errors import ConfigError
from ..synthetic.cohort import feature_fields
from . import fields as F
from .field_lists import list_names, load_field_list
from .multiple import encode_multiple, indicator_entries

KINDS = ("continuous", "integer", "ordinal", "categorical", "multiple")
FEATURE_KEYS = ("field", "kind", "less_than_one", "codes")
LESS_THAN_ONE_VALUE = 0.5


def feature_list(cfg):
    """``[(field, kind, less_than_one, codes)]`` from ``ukb.features`` (null: the synthetic table's
    fields; a name: that versioned list of real fields, ``ukb/field_lists/<name>.csv``). ``codes`` is
    the list of valid codes an entry gives (``codes: [...]``, e.g. from the field's UK Biobank coding),
    else None; for a multiple-answer field (kind ``multiple``) it is ``{"answers": ((code, meaning),
    ...), "no_answer": (codes, ...)}``. A field id that a shipped list names as multiple-answer (e.g.
    6150) is read as one: any other kind would keep its first answer only."""
    ukb = cfg["ukb"]
    spec = ukb.get("features")
    if spec is None:
        return [(f.field, f.kind, f.less_than_one, None)
                for f in feature_fields(int(cfg["data"]["num_features"]), int(cfg["synthetic"]["seed"]))]
    if isinstance(spec, str):
        return [(f.field, f.kind, f.less_than_one, _multiple_codes(f) if f.kind == "multiple" else None)
                for f in load_field_list(spec)]
    if not isinstance(spec, list) or not spec:
        raise ConfigError(f"ukb.features must be null, the name of a field list ({', '.join(list_names())}) "
                          f"or a list of field ids, got {spec!r}")
    known = {f.field: f for f in F.KNOWN_FIELDS}
    multiple = {f.field: f for name in list_names() for f in load_field_list(name) if f.kind == "multiple"}
    out = []
    for item in spec:
        entry = item if isinstance(item, dict) else {"field": item}
        if "field" not in entry or not str(entry["field"]).isdigit():
            raise ConfigError(f"ukb.features: entry {item!r} needs a numeric field id")
        field = int(entry["field"])
        unknown = sorted(set(entry) - set(FEATURE_KEYS), key=str)
        if unknown:
            raise ConfigError(f"ukb.features: field {field} has unknown key(s) {', '.join(map(str, unknown))}; "
                              f"an entry has {', '.join(FEATURE_KEYS)}")
        default = known.get(field)
        kind = entry.get("kind", default.kind if default else "auto")
        if kind not in KINDS + ("auto",):
            raise ConfigError(f"ukb.features: field {field} has kind {kind!r}; use one of {', '.join(KINDS)} or auto")
        lto = entry.get("less_than_one", default.less_than_one if default else False)
        codes = entry.get("codes")
        if field in multiple or kind == "multiple":
            out.append((field, "multiple", bool(lto), _multiple_entry(field, entry, multiple.get(field))))
            continue
        if codes is not None:
            if kind == "continuous" or not isinstance(codes, list) or not codes \
                    or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in codes):
                raise ConfigError(f"ukb.features: field {field}: codes must be a non-empty list of numbers (its "
                                  f"coding's valid values) for a field that is not continuous, got {codes!r}")
            codes = sorted(float(c) for c in codes)
        out.append((field, kind, bool(lto), codes))
    if len({f[0] for f in out}) != len(out):
        raise ConfigError("ukb.features lists a field twice")
    return out


def _multiple_codes(listed):
    return {"answers": tuple(listed.answers), "no_answer": tuple(listed.codes)}


def _multiple_entry(field, entry, listed):
    """The codes of a multiple-answer entry of ``ukb.features``: a shipped list's, or the entry's
    own ``codes`` (its data-coding's answer codes; a negative one means none of the above)."""
    if entry.get("kind", "multiple") != "multiple":
        raise ConfigError(f"ukb.features: field {field} is a multiple-answer field; kind {entry['kind']!r} would read "
                          f"its first answer only (leave kind out, or use kind: multiple)")
    codes = entry.get("codes")
    if codes is None:
        if listed is None:
            raise ConfigError(f"ukb.features: field {field} has kind multiple but no codes: give its data-coding's "
                              f"answer codes, e.g. codes: [1, 2, 3, -7]")
        return _multiple_codes(listed)
    if not isinstance(codes, list) or not codes or not all(isinstance(c, int) and not isinstance(c, bool)
                                                           for c in codes) or not any(c > 0 for c in codes):
        raise ConfigError(f"ukb.features: field {field}: codes of a multiple-answer field must be a list of integer "
                          f"codes with at least one positive (an answer), got {codes!r}")
    return {"answers": tuple((int(c), f"code {c}") for c in sorted(set(codes))), "no_answer": ()}


def numeric_values(frame, field, kind, less_than_one, report, rows=None):
    """The field's values as numbers (UK Biobank's missing codes as NaN); text where a number
    belongs is NaN too, counted in ``report`` (and marked per row in ``rows["unreadable"]``)."""
    col = f"{field}-0.0"
    raw = frame[col] if col in frame else pd.Series(np.nan, index=frame.index, dtype="string")
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = raw.notna().to_numpy() & np.isnan(values)
    if kind != "continuous":
        values[np.isin(values, F.MISSING_CODES)] = np.nan
        if less_than_one:
            values[values == F.LESS_THAN_ONE] = LESS_THAN_ONE_VALUE
    report["unreadable_values"][str(field)] = int(bad.sum())
    if rows is not None:
        rows.setdefault("unreadable", {})[str(field)] = bad
    return values


def infer_kind(values):
    seen = values[~np.isnan(values)]
    if len(seen) and np.all(seen == np.round(seen)) and len(np.unique(seen)) <= 10:
        return "categorical"
    return "continuous"


def fit_encoding(frame, features, train_mask, report):
    """Learn each field's kind and category levels on the training rows, then encode."""
    meta = []
    scratch = {"unreadable_values": {}}
    for field, kind, less_than_one, codes in features:
        if kind == "multiple":
            meta += indicator_entries(field, codes["answers"], codes["no_answer"], less_than_one)
            continue
        entry = {"field": field, "column": f"f{field}", "kind": kind, "less_than_one": less_than_one}
        if codes is not None:
            entry["codes"] = codes
        if kind in ("auto", "categorical"):
            values = numeric_values(frame, field, kind, less_than_one, scratch)
            if codes is not None:
                values[~np.isin(values, codes)] = np.nan
            if kind == "auto":
                entry["kind"] = infer_kind(values[train_mask])
            if entry["kind"] == "categorical":
                entry["levels"] = [float(v) for v in np.unique(values[train_mask & ~np.isnan(values)])]
        meta.append(entry)
    return encode_features(frame, meta, report), meta


def encode_features(frame, fields_meta, report, rows=None):
    """Encode the export columns with a fitted field list (``features/ukb_fields.json``).

    Numbers stay as they are; a categorical value becomes its code in the saved levels,
    and a value those levels do not know becomes missing (counted per field in
    ``report["unseen_categories"]``). Used by the cohort builder and by inference. With a
    dict ``rows``, which rows had unreadable text, a code outside the field's ``codes`` or an
    unseen category is marked per field (``rows["unreadable"][field]``,
    ``rows["unknown_code"][field]``, ``rows["unseen_category"][field]``: boolean arrays).
    A field with ``codes`` (its coding's valid values) takes any other value as missing, counted
    per field in ``report["unknown_codes"]``.
    """
    columns, read = {}, {}
    report.setdefault("unreadable_values", {})
    report.setdefault("unseen_categories", {})
    for entry in fields_meta:
        field = entry["field"]
        if entry.get("multiple"):
            columns[entry["column"]] = encode_multiple(frame, entry, report, rows, read).astype(np.float32)
            continue
        values = numeric_values(frame, field, entry["kind"], entry["less_than_one"], report, rows)
        if entry.get("codes") is not None:
            outside = ~np.isnan(values) & ~np.isin(values, entry["codes"])
            report.setdefault("unknown_codes", {})[str(field)] = int(outside.sum())
            if rows is not None:
                rows.setdefault("unknown_code", {})[str(field)] = outside
            values = np.where(outside, np.nan, values)
        if entry["kind"] == "categorical":
            lookup = {float(v): i for i, v in enumerate(entry["levels"])}
            coded = np.array([lookup.get(float(v), np.nan) if not np.isnan(v) else np.nan for v in values])
            unseen = ~np.isnan(values) & np.isnan(coded)
            report["unseen_categories"][str(field)] = int(unseen.sum())
            if rows is not None:
                rows.setdefault("unseen_category", {})[str(field)] = unseen
            values = coded
        columns[entry["column"]] = np.asarray(values, dtype=np.float32)
    return pd.DataFrame(columns, index=frame.index)
