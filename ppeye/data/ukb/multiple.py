"""Multiple-answer UK Biobank fields (e.g. 6150 vascular problems, 20107 illnesses of father) as one
indicator column per answer code.

A multiple-answer field holds a person's answers in the arrays of a visit (``6150-0.0``,
``6150-0.1``, ...; ``p6150_i0_a0``, ...), in no meaningful order. Reading array 0 alone would keep
a first answer and drop the others, so each positive code of the field's data-coding becomes its
own column ``f<field>_c<code>`` (kind categorical with levels 0 and 1), read from every array of
instance 0 the table has:

* **1** when any array holds the code;
* **0** when the person answered (an answer code or the coding's "none of the above", a listed
  negative code) and no array holds it;
* **missing** when the person gave no answer (empty arrays, or only "do not know" / "prefer not
  to answer" codes), and also for the codes not named by a person who mixed answers with a
  no-answer code (e.g. "Do not know (group 1)" beside "Stroke": the codes they did not name are
  unknown, not absent).

A value that is not a code of the coding is counted per field (``unknown_codes``, and marked per
row in ``rows["unknown_code"]``) and is not an answer; text where a code belongs is counted as
unreadable like any field's.
"""
import numpy as np
import pandas as pd

from . import fields as F


def indicator_entries(field, answers, no_answer, less_than_one=False):
    """The ``ukb_fields.json`` entries of a multiple-answer field: one per positive code of
    ``answers`` ((code, meaning), ...), in the coding's order."""
    valid = sorted(float(c) for c, _ in answers)
    gone = sorted(set(float(c) for c in no_answer) | set(float(c) for c in F.MISSING_CODES))
    return [{"field": int(field), "column": f"f{field}_c{code}", "kind": "categorical", "levels": [0.0, 1.0],
             "less_than_one": bool(less_than_one),
             "multiple": {"code": float(code), "meaning": meaning, "answers": valid, "no_answer": gone}}
            for code, meaning in answers if code > 0]


def array_columns(frame, field):
    """The table's columns of ``field`` at instance 0, in array order (``6150-0.0``, ``6150-0.1``, ...)."""
    found = [c for c in frame.columns if c.startswith(f"{field}-0.") and c[len(f"{field}-0."):].isdigit()]
    return sorted(found, key=lambda c: int(c.rsplit(".", 1)[1]))


def read_answers(frame, field, valid, no_answer):
    """``(codes [N, A] float with NaN, answered [N], declined [N], unreadable [N], unknown [N])`` of a
    multiple-answer field: its arrays as numbers, whether each person gave an answer (a valid code),
    gave a no-answer code, had text where a code belongs, or a code outside the coding."""
    columns = array_columns(frame, field)
    if not columns:
        empty = np.zeros(len(frame), bool)
        return np.full((len(frame), 0), np.nan), empty, empty, empty, empty
    raw = frame[columns]
    codes = np.column_stack([pd.to_numeric(raw[c], errors="coerce").to_numpy(np.float64) for c in columns])
    present = raw.notna().to_numpy()
    unreadable = (present & np.isnan(codes)).any(axis=1)
    is_valid, is_declined = np.isin(codes, valid), np.isin(codes, no_answer)
    unknown = (~np.isnan(codes) & ~is_valid & ~is_declined).any(axis=1)
    return codes, is_valid.any(axis=1), is_declined.any(axis=1), unreadable, unknown


def indicator_values(read, code):
    """The indicator of ``code`` from :func:`read_answers`'s result: 1, 0 or NaN (see the module)."""
    codes, answered, declined, _, _ = read
    named = (codes == code).any(axis=1) if codes.shape[1] else np.zeros(len(answered), bool)
    out = np.where(answered & ~declined, 0.0, np.nan)
    out[named] = 1.0
    return out


def encode_multiple(frame, entry, report, rows, cache):
    """The values of one indicator entry, counting the field's unreadable cells and unknown codes in
    ``report`` (and per row in ``rows``) once per field; ``cache`` keeps each field's arrays read."""
    field, spec = entry["field"], entry["multiple"]
    if field not in cache:
        cache[field] = read_answers(frame, field, spec["answers"], spec["no_answer"])
        _, _, _, unreadable, unknown = cache[field]
        report.setdefault("unreadable_values", {})[str(field)] = int(unreadable.sum())
        report.setdefault("unknown_codes", {})[str(field)] = int(unknown.sum())
        if rows is not None:
            rows.setdefault("unreadable", {})[str(field)] = unreadable
            rows.setdefault("unknown_code", {})[str(field)] = unknown
    return indicator_values(cache[field], spec["code"])


def scored_column(column, fields, multiple):
    """Whether a table column ``<field>-<instance>.<array>`` is one that scoring reads: array 0 of
    instance 0 of each of ``fields``, and every array of instance 0 of the ``multiple``-answer
    ones (both sets of field ids as strings)."""
    field, _, rest = column.partition("-")
    return rest.startswith("0.") and (field in multiple or (rest == "0.0" and field in fields))


def multiple_fields(fields_meta):
    """The ids of the multiple-answer fields among ``ukb_fields.json`` entries."""
    return sorted({int(m["field"]) for m in fields_meta if m.get("multiple")})
