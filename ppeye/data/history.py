"""What the model reads of the diagnosis history: a code vocabulary and per-person arrays.

``history.parquet`` (the cohort stage, ``ppeye/data/ukb/history.py``) holds every hospital code
dated before each person's index date. Here:

* :class:`CodeVocabulary` numbers the codes: each full code (``E119``) and each 3-character
  category (``E11``) seen in at least ``min_people`` **training** people gets its own id; the
  others share an "other" id at their level, so a rare code still tells its category when that
  is common. ``extra_codes`` (e.g. every code of a description-embedding table) get ids too, for
  an encoder whose rare codes start from their descriptions. Ids 0 (padding) and 1 (other) are
  reserved at both levels. Saved as ``features/history_vocab.json`` (codes and the number of
  training people with each, never below ``min_people``; no participant-level content).
* :func:`history_arrays` gives, for people in cohort order, their most recent ``max_codes``
  codes as ``codes`` / ``categories`` (int64 ids) and ``days`` (float32 days before the index
  date), most recent first, padded with id 0 after them; records within
  ``gap_days`` of the index date (a workup of the outcome itself, in real data) or older than
  ``lookback_days`` are left out.
"""
import json
import os

import numpy as np

from ..core.errors import DataError
from ..core.io import atomic_write

PAD, OTHER = 0, 1
VOCAB_FILE = "history_vocab.json"


def category(code):
    """The 3-character ICD-10 category of a code without its dot: ``E119`` -> ``E11``."""
    return code[:3]


class CodeVocabulary:
    """Ids of full codes and categories (0 padding, 1 other).

    >>> v = CodeVocabulary({"E119": 12, "I10": 30}, {"E11": 15, "I10": 30}, min_people=5)
    >>> v.code_ids(["E119", "E113", "I10"]).tolist(), v.category_ids(["E119", "E113", "I10"]).tolist()
    ([2, 1, 3], [2, 2, 3])
    """

    def __init__(self, codes, categories, min_people, extra_codes=()):
        self.min_people = int(min_people)
        self.code_people = {c: int(n) for c, n in sorted(codes.items())}
        self.category_people = {c: int(n) for c, n in sorted(categories.items())}
        self.extra_codes = sorted(set(extra_codes) - set(self.code_people))
        self.codes = {c: i + 2 for i, c in enumerate(list(self.code_people) + self.extra_codes)}
        extra_categories = sorted({category(c) for c in self.extra_codes} - set(self.category_people))
        self.categories = {c: i + 2 for i, c in enumerate(list(self.category_people) + extra_categories)}

    @classmethod
    def fit(cls, history, train_rows, min_people=5, extra_codes=()):
        """From ``history.parquet``'s table and the ``row`` values of the training people."""
        if int(min_people) < 1:
            raise DataError(f"model.history.min_people must be >= 1, got {min_people}")
        mine = history[history.row.isin(np.asarray(train_rows))]
        per_code = mine.drop_duplicates(["row", "code"]).code.value_counts()
        per_category = mine.assign(category=mine.code.str[:3]).drop_duplicates(["row", "category"]).category.value_counts()
        return cls({c: n for c, n in per_code.items() if n >= min_people},
                   {c: n for c, n in per_category.items() if n >= min_people}, min_people, extra_codes)

    def code_ids(self, codes):
        return np.array([self.codes.get(c, OTHER) for c in codes], dtype=np.int64)

    def category_ids(self, codes):
        return np.array([self.categories.get(category(c), OTHER) for c in codes], dtype=np.int64)

    @property
    def sizes(self):
        """(number of code ids, number of category ids), padding and other included."""
        return len(self.codes) + 2, len(self.categories) + 2

    def to_dict(self):
        return {"min_people": self.min_people, "code_people": self.code_people,
                "category_people": self.category_people, "extra_codes": self.extra_codes}

    def save(self, features_dir):
        with atomic_write(os.path.join(features_dir, VOCAB_FILE)) as f:
            json.dump(self.to_dict(), f, indent=1)

    @classmethod
    def load(cls, features_dir):
        path = os.path.join(features_dir, VOCAB_FILE)
        if not os.path.isfile(path):
            raise DataError(f"{path} not found: the history vocabulary is fitted with the model's training data "
                            f"(model.history); train or export again with it")
        d = json.load(open(path))
        unknown = sorted(set(d) - {"min_people", "code_people", "category_people", "extra_codes"})
        if unknown:
            raise DataError(f"{path}: unknown keys {unknown}")
        return cls(d["code_people"], d["category_people"], d["min_people"], d["extra_codes"])


def history_arrays(history, rows, vocab, max_codes, gap_days=0, lookback_days=None):
    """``{"codes", "categories": int64 [N, L], "days": float32 [N, L]}`` for the people ``rows``
    (the cohort's ``row`` values, in the order wanted), most recent first, padded with 0; and the
    number of people who had more than ``max_codes`` codes (their oldest left out)."""
    if int(max_codes) < 1:
        raise DataError(f"model.history.max_codes must be >= 1, got {max_codes}")
    keep = history.days_before > int(gap_days)
    if lookback_days is not None:
        keep &= history.days_before <= int(lookback_days)
    table = history[keep].sort_values(["row", "days_before", "code"], kind="stable")
    position = {int(r): i for i, r in enumerate(rows)}
    n, width = len(position), int(max_codes)
    out = {"codes": np.zeros((n, width), np.int64), "categories": np.zeros((n, width), np.int64),
           "days": np.zeros((n, width), np.float32)}
    table = table[table.row.isin(list(position))]
    person = table.row.map(position).to_numpy()
    rank = table.groupby("row").cumcount().to_numpy()
    kept = rank < width
    truncated = int(table[~kept].row.nunique())
    p, r, codes = person[kept], rank[kept], table.code.to_numpy()[kept]
    out["codes"][p, r] = vocab.code_ids(codes)
    out["categories"][p, r] = vocab.category_ids(codes)
    out["days"][p, r] = table.days_before.to_numpy()[kept]
    return out, truncated
