"""Read a UK Biobank export (ukbconv or Research Analysis Platform style, CSV or TSV).

Column names are brought to the ukbconv form ``field-instance.array``:
``31-0.0`` stays, ``p31`` -> ``31-0.0``, ``p53_i0`` -> ``53-0.0``, ``p41270_a3`` ->
``41270-0.3``, ``participant.p6150_i0_a1`` -> ``6150-0.1``; ``participant.eid`` -> ``eid``.
Values are read as text and parsed per field by :mod:`.cohort`.
"""
import os
import re

import pandas as pd

from ...core.errors import DataError

UKBCONV = re.compile(r"^(\d+)-(\d+)\.(\d+)$")
RAP = re.compile(r"^(?:participant\.)?p(\d+)(?:_i(\d+))?(?:_a(\d+))?$")


def canonical(column):
    """The ukbconv name of an export column, ``eid``, or None for a column that is neither."""
    name = column.strip()
    if name in ("eid", "participant.eid"):
        return "eid"
    m = UKBCONV.match(name)
    if m:
        return name
    m = RAP.match(name)
    if m:
        field, instance, array = m.groups()
        return f"{field}-{instance or 0}.{array or 0}"
    return None


def _separator(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline()
    if not header.strip():
        raise DataError(f"{path}: the table is empty")
    return "\t" if header.count("\t") > header.count(",") else ","


def read_header(path):
    """``{canonical name: column as written}`` for the export at ``path``."""
    if not os.path.isfile(path):
        raise DataError(f"data.ukb_table {path} does not exist")
    sep = _separator(path)
    columns = pd.read_csv(path, sep=sep, nrows=0).columns
    mapping, unknown = {}, []
    for c in columns:
        key = canonical(c)
        if key is None:
            unknown.append(c)
        elif key in mapping:
            raise DataError(f"{path}: columns {mapping[key]!r} and {c!r} are the same field ({key})")
        else:
            mapping[key] = c
    if "eid" not in mapping:
        raise DataError(f"{path}: no participant id column (eid or participant.eid)")
    return mapping, unknown, sep


def read_table(path, wanted_fields):
    """The columns of ``wanted_fields`` (all instances/arrays) as text, with canonical names.

    Returns ``(frame, unknown_columns)``; rows keep the file's order.
    """
    mapping, unknown, sep = read_header(path)
    wanted = {str(f) for f in wanted_fields}
    keep = {k: v for k, v in mapping.items() if k == "eid" or k.split("-")[0] in wanted}
    frame = pd.read_csv(path, sep=sep, usecols=list(keep.values()), dtype=str, keep_default_na=False,
                        na_values=[""], low_memory=False)
    frame = frame.rename(columns={v: k for k, v in keep.items()})
    if frame["eid"].isna().any():
        rows = (frame.index[frame["eid"].isna()] + 2).tolist()[:5]
        raise DataError(f"{path}: empty participant id on line(s) {rows}")
    if frame["eid"].duplicated().any():
        raise DataError(f"{path}: {int(frame['eid'].duplicated().sum())} participant ids appear more than once")
    return frame, unknown


def field_columns(frame, field, instance=None):
    """Canonical columns of ``field`` (optionally one instance), in array order."""
    out = []
    for c in frame.columns:
        m = UKBCONV.match(c)
        if m and int(m.group(1)) == field and (instance is None or int(m.group(2)) == instance):
            out.append(c)
    return sorted(out, key=lambda c: tuple(int(x) for x in re.split(r"[-.]", c)))
