"""A table of people to score, cut from the training export: the demo's and the tests' input
for ``tools/infer.py``.

``scoring_table(cfg, split, path)`` writes the raw UK Biobank rows of one split's people
(their feature, centre and home columns only: no outcomes) with an ``index_date`` column
holding the cohort's index date, i.e. what a user would hand to ``tools/infer.py``. Scoring
it must give the evaluator's predictions for that split (tested).
"""
import pandas as pd

from ..core.errors import DataError
from ..core.io import atomic_write
from ..data.ukb.encoding import feature_list
from ..data.ukb.load import read_table
from ..data.ukb.multiple import scored_column


def scoring_table(cfg, split, path, limit=None):
    """Write the table; returns the number of rows."""
    import os

    work = cfg["data"]["work_dir"]
    cohort_path = os.path.join(work, "cohort.parquet")
    if not os.path.isfile(cohort_path):
        raise DataError(f"{cohort_path} does not exist: run tools/preprocess.py --stage ukb")
    cohort = pd.read_parquet(cohort_path, columns=["eid", "split", "index_date"])
    people = cohort[cohort["split"] == split]
    if people.empty:
        raise DataError(f"no participants in split {split!r} of {cohort_path}")
    if limit:
        people = people.iloc[: int(limit)]
    features = feature_list(cfg)
    fields = [f[0] for f in features] + [54, 20074, 20075]
    multiple = {str(f[0]) for f in features if f[1] == "multiple"}
    frame, _ = read_table(cfg["data"]["ukb_table"], fields)
    frame = frame[[c for c in frame.columns if c == "eid" or scored_column(c, set(map(str, fields)), multiple)]]
    rows = frame.set_index("eid").loc[people["eid"].astype(str).to_numpy()].reset_index()
    rows["index_date"] = pd.to_datetime(people["index_date"]).dt.strftime("%Y-%m-%d").to_numpy()
    with atomic_write(path) as f:
        rows.to_csv(f, index=False)
    return int(len(rows))

