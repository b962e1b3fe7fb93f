"""Each person's diagnosis history before the index date: ``history.parquet`` of the cohort stage.

A record is one hospital inpatient ICD-10 diagnosis (field 41270, its date in field 41280 at the
same array index) of a person in the cohort, kept only when it is dated **strictly before** the
person's index date: a code recorded on the index date or after it is the outcome or what
followed it, and is never read. The rules, each counted in ``cohort_report.json`` (``history``):

* a code whose date is missing or a placeholder cannot be placed before or after the index date:
  left out (``undated``);
* a code on or after the index date: left out (``on_or_after_index``);
* a code confirming one of the four diseases (``fields.ICD10_CONFIRM``) dated before the index
  date cannot occur, because the index date is the first onset among the four diseases, hospital
  codes included; one that did would be a bug, so it is an error, not a silent drop.

``history.parquet`` columns: ``row`` (the export's 1-based data row, as in ``cohort.parquet``, so
the two join without participant ids), ``code`` (upper case, no dot: ``E119``), ``days_before``
(whole days from the diagnosis to the index date, >= 1). It carries participant-level content:
each person's dated diagnoses, the same sensitivity as the export it came from.
What the model reads of it (a gap before the index date, a look-back, the most recent codes, the
vocabulary) is the dataset's choice, so changing it needs no new cohort.
"""
import os

import numpy as np
import pandas as pd

from ...core.errors import DataError
from ...core.io import atomic_write
from . import fields as F

COLUMNS = ("row", "code", "days_before")


def history_before_index(hospital, index_date, rows):
    """The diagnoses of the people ``rows`` (0-based positions in the export) dated before their index date.

    ``hospital``: :func:`ppeye.data.ukb.cohort._hospital_records` of the export (per array index:
    codes, dates, placeholder mask); ``index_date``: one datetime64 per export row (NaT for people
    outside the cohort). Returns ``(table, counts)``: the long table of :data:`COLUMNS` sorted by
    row then most recent first, and the counts of what was kept and left out.
    """
    rows = np.asarray(rows, dtype=np.int64)
    index = pd.to_datetime(pd.Series(index_date)).to_numpy(dtype="datetime64[D]")[rows]
    counts = {"kept": 0, "undated": 0, "on_or_after_index": 0}
    parts = []
    for codes, dates, placeholder in hospital:
        code = codes[rows]
        given = code != ""
        if dates is None:
            counts["undated"] += int(given.sum())
            continue
        when = dates.to_numpy(dtype="datetime64[D]")[rows]
        undated = given & (np.isnat(when) | placeholder[rows])
        counts["undated"] += int(undated.sum())
        dated = given & ~undated
        days = np.zeros(len(rows), dtype=np.int64)
        days[dated] = (index[dated] - when[dated]).astype(np.int64)
        before = dated & (days >= 1)
        counts["on_or_after_index"] += int((dated & ~before).sum())
        parts.append(pd.DataFrame({"row": rows[before] + 1, "code": code[before], "days_before": days[before]}))
    table = (pd.concat(parts, ignore_index=True) if parts
             else pd.DataFrame({"row": np.zeros(0, np.int64), "code": np.zeros(0, str), "days_before": np.zeros(0, np.int64)}))
    table = table.sort_values(["row", "days_before", "code"], kind="stable").reset_index(drop=True)
    confirming = tuple(p for prefixes in F.ICD10_CONFIRM.values() for p in prefixes)
    outcome = table.code.str.startswith(confirming)
    if outcome.any():
        raise DataError(f"{int(outcome.sum())} hospital diagnoses confirming one of {', '.join(F.DISEASES)} are dated "
                        f"before their person's index date, which is the first onset: the onset rules and the "
                        f"history disagree (a bug; please report it with the cohort_report.json)")
    counts["kept"] = len(table)
    counts["people_with_history"] = int(table.row.nunique())
    return table, counts


def write_history(work_dir, table):
    """``<work_dir>/history.parquet``, written atomically."""
    with atomic_write(os.path.join(work_dir, "history.parquet"), mode="wb") as f:
        table.loc[:, list(COLUMNS)].to_parquet(f, index=False)


def read_history(work_dir):
    """The cohort's ``history.parquet``; an error naming the file and the command that makes it when absent."""
    path = os.path.join(work_dir, "history.parquet")
    if not os.path.isfile(path):
        raise DataError(f"{path} not found: the diagnosis history is written by tools/preprocess.py --stage ukb "
                        f"when the export has the hospital diagnoses (fields {F.ICD10_DIAGNOSES} and {F.ICD10_DATES})")
    table = pd.read_parquet(path)
    missing = [c for c in COLUMNS if c not in table]
    if missing:
        raise DataError(f"{path}: columns {missing} missing (expected {list(COLUMNS)}): remake it with "
                        f"tools/preprocess.py --stage ukb")
    return table
