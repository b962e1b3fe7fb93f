"""Versioned lists of real UK Biobank fields for ``ukb.features: <name>``.

A list is a CSV here, ``<name>.csv``, one row per field: its showcase id and title, how ppeye
reads it (``kind``: continuous | integer | ordinal | categorical | multiple; ``no_answer_codes``:
the negative codes of its data-coding that mean no usable answer; ``less_than_one``: a count
whose -10 means "less than one"), the showcase category it sits in (id and title), the
measurement ``block`` missing as a whole (e.g. the eye measures, taken for about a quarter of
participants), the instance and arrays read (instance 0, the recruitment visit; array 0, or
``0-N`` for a multiple-answer field), how the synthetic generator makes it (``curated``: a
hand-written model in ``synthetic/cohort.py``; else ``normal mean sd lo hi``, ``lognormal mean
sd``, ``values code:weight ...`` or ``multiple [men|women] code:rate ...``, approximate recruitment
distributions, for synthetic data only), and why it is there.

A **multiple-answer field** (kind ``multiple``: 6150 vascular problems, 6138 qualifications,
6177/6153 medications, 20107/20110/20111 family history) names its showcase data-coding
(``coding``) and that coding's answers (``codes``: ``1:Heart attack|...|-7:None of the above``):
it becomes one indicator column per positive code (:mod:`.multiple`), read from every array of
the visit, so no answer after the first is lost. A listed negative code is the coding's "none of
the above". Self-reported eye disorders (6148, 6119, 4689, 4700, 5901) are left out on purpose:
they record prevalent disease, the outcome itself.

``eye_onset_v1`` holds the single-answer fields only; ``eye_onset_v2`` adds the seven
multiple-answer fields. A list never changes once shipped: a new field makes a new version.
"""
import csv
import os
from dataclasses import dataclass

from ....core.errors import ConfigError
from ..fields import FieldInfo

HERE = os.path.dirname(os.path.abspath(__file__))
COLUMNS = ("field", "name", "kind", "category", "category_name", "block", "coding", "codes", "no_answer_codes",
           "less_than_one", "decimals", "instance", "arrays", "synthetic", "why")
KINDS = ("continuous", "integer", "ordinal", "categorical", "multiple")


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
                if row["instance"] not in ("0", ""):
                    raise ValueError("only instance 0 (or none) is read")
                arrays, answers = _arrays_and_answers(row)
                out.append(ListedField(
                    field=int(row["field"]), name=row["name"], kind=row["kind"], block=row["block"] or None,
                    codes=tuple(int(c) for c in row["no_answer_codes"].split()),
                    less_than_one=row["less_than_one"] == "1", instanced=row["instance"] == "0",
                    decimals=int(row["decimals"]), category=int(row["category"]), category_name=row["category_name"],
                    synthetic=row["synthetic"], why=row["why"], arrays=arrays, answers=answers,
                    coding=int(row["coding"] or 0)))
            except (ValueError, TypeError) as e:
                raise ConfigError(f"{path}, line {line} (field {row.get('field')!r}): {e}") from None
    if len({f.field for f in out}) != len(out):
        raise ConfigError(f"{path}: a field is listed twice")
    return tuple(out)


def _arrays_and_answers(row):
    """``(arrays, answers)`` of a list row: 1 and () for a single-answer field; for a multiple-answer
    one the number of arrays of ``0-N`` and its coding's answers ``((code, meaning), ...)``."""
    multiple = row["kind"] == "multiple"
    if not multiple:
        if row["arrays"] != "0":
            raise ValueError(f"arrays {row['arrays']!r}: a field that is not multiple reads array 0 only")
        if row["codes"] or row["coding"]:
            raise ValueError("coding and codes are for a multiple-answer field (kind multiple)")
        return 1, ()
    first, _, last = row["arrays"].partition("-")
    if first != "0" or not last.isdigit() or int(last) < 1:
        raise ValueError(f"arrays {row['arrays']!r}: a multiple-answer field reads arrays 0-N (N >= 1)")
    if not row["coding"].isdigit():
        raise ValueError(f"coding {row['coding']!r}: a multiple-answer field names its showcase data-coding")
    answers = []
    for part in row["codes"].split("|"):
        code, sep, meaning = part.partition(":")
        if not sep or not meaning.strip() or not code.strip().lstrip("-").isdigit():
            raise ValueError(f"codes: {part!r} is not code:meaning (codes are code:meaning|code:meaning...)")
        answers.append((int(code), meaning.strip()))
    codes = [c for c, _ in answers]
    if len(set(codes)) != len(codes) or not any(c > 0 for c in codes):
        raise ValueError("codes: each code once, and at least one positive code (an answer)")
    if set(codes) & {int(c) for c in row["no_answer_codes"].split()}:
        raise ValueError("codes: a code is both an answer and a no-answer code")
    return int(last) + 1, tuple(answers)
