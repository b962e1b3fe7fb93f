"""Versioned lists of real UK Biobank fields for ``ukb.features: <name>``.

A list is a CSV here, ``<name>.csv``, one row per field: its showcase id and title, how ppeye
reads it (``kind``: continuous | integer | ordinal | categorical; ``no_answer_codes``: the
negative codes of its data-coding that mean no usable answer; ``less_than_one``: a count whose
-10 means "less than one"), the showcase category it sits in (id and title), the measurement
``block`` missing as a whole (e.g. the eye measures, taken for about a quarter of participants),
the instance and arrays read (instance 0, the recruitment visit; array 0), how the synthetic
generator makes it (``curated``: a hand-written model in ``synthetic/cohort.py``; else
``normal mean sd lo hi``, ``lognormal mean sd`` or ``values code:weight ...``, approximate
recruitment distributions, for synthetic data only), and why it is there.

Only fields with one answer per person per visit are listed: a multiple-answer field
(e.g. 6150 vascular problems, 6138 qualifications, 6177/6153 medications, 20107/20110/20111
family history) would need one indicator column per code, which the encoding does not do yet;
reading its array 0 alone would silently keep a person's first answer only. Self-reported eye
disorders (6148, 6119, 4689, 4700, 5901) are left out on purpose: they record prevalent disease,
the outcome itself.
"""
import csv
import os
from dataclasses import dataclass

from ....core.errors import ConfigError
from ..fields import FieldInfo

HERE = os.path.dirname(os.path.abspath(__file__))
COLUMNS = ("field", "name", "kind", "category", "category_name", "block", "no_answer_codes", "less_than_one",
           "decimals", "instance", "arrays", "synthetic", "why")
KINDS = ("continuous", "integer", "ordinal", "categorical")


@dataclass(frozen=True)
class ListedField(FieldInfo):
    """A field of a versioned list: :class:`FieldInfo` plus where it sits in the showcase,
    how the synthetic generator makes it and why it is in the list."""

    category: int = 0
    category_name: str = ""
    synthetic: str = "curated"
    why: str = ""


def list_names():
    return sorted(f[:-4] for f in os.listdir(HERE) if f.endswith(".csv"))


def load_field_list(name):
    """The fields of the list ``name`` (``ukb.features: <name>``), in the list's order."""
    path = os.path.join(HERE, f"{name}.csv")
    if not isinstance(name, str) or not os.path.isfile(path):
        raise ConfigError(f"ukb.features: no field list named {name!r}; the lists are {', '.join(list_names())} "
                          f"(or give a list of field ids)")
    out = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ConfigError(f"{path}: the columns must be {', '.join(COLUMNS)}, got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                if row["kind"] not in KINDS:
                    raise ValueError(f"kind {row['kind']!r} is not one of {', '.join(KINDS)}")
                if row["arrays"] != "0" or row["instance"] not in ("0", ""):
                    raise ValueError("only instance 0 (or none) and array 0 are read")
                out.append(ListedField(
                    field=int(row["field"]), name=row["name"], kind=row["kind"], block=row["block"] or None,
                    codes=tuple(int(c) for c in row["no_answer_codes"].split()),
                    less_than_one=row["less_than_one"] == "1", instanced=row["instance"] == "0",
                    decimals=int(row["decimals"]), category=int(row["category"]), category_name=row["category_name"],
                    synthetic=row["synthetic"], why=row["why"]))
            except (ValueError, TypeError) as e:
                raise ConfigError(f"{path}, line {line} (field {row.get('field')!r}): {e}") from None
    if len({f.field for f in out}) != len(out):
        raise ConfigError(f"{path}: a field is listed twice")
    return tuple(out)
