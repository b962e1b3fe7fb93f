"""Patient attributes for subgroup analyses: centre, season of the index date, age band, sex.

Read from ``cohort.parquet`` (raw values, before imputation): age at the index date from the
year of birth (field 34), sex from field 31 (0 female, 1 male); a person whose field is
missing is "unknown". Seasons follow the synthetic data's winter months (October to March).
Identifiers are never part of the result.
"""
import os

import numpy as np
import pandas as pd

from ..core.errors import ConfigError, DataError
from .ukb.centres import get_centre

WINTER_MONTHS = (10, 11, 12, 1, 2, 3)
AGE_BANDS = ("<55", "55-64", "65+")


def centre_name(site):
    """A cohort's site (field-54 code) as the centre's name (11001 -> Manchester); an unknown one as given."""
    try:
        return get_centre(site).name
    except ConfigError:
        return str(site)


def cohort_rows(cfg, cohort_pos, columns):
    """Those of ``columns`` the run's cohort.parquet has, at its rows ``cohort_pos`` (in that order);
    only these columns are read (a real cohort has hundreds of feature columns)."""
    import pyarrow.parquet as pq

    path = os.path.join(cfg["data"]["work_dir"], "cohort.parquet")
    if not os.path.isfile(path):
        raise DataError(f"{path} does not exist: run tools/preprocess.py --stage ukb")
    present = set(pq.read_schema(path).names)
    return pd.read_parquet(path, columns=[c for c in columns if c in present]).iloc[np.asarray(cohort_pos)]


def person_attributes(cfg, cohort_pos):
    """{"centre", "season", "age_band", "sex"} -> arrays of group names, one per person."""
    rows = cohort_rows(cfg, cohort_pos, ["site", "index_date", "f34", "f31"])
    index_date = pd.to_datetime(rows["index_date"])
    out = {"centre": np.asarray([centre_name(s) for s in rows["site"]], dtype=object),
           "season": np.where(index_date.dt.month.isin(WINTER_MONTHS), "winter", "summer")}
    if "f34" in rows:
        age = index_date.dt.year.to_numpy() - rows["f34"].to_numpy(dtype=np.float64)
        out["age_band"] = np.select([age < 55, age < 65, age >= 65], list(AGE_BANDS), "unknown")
    if "f31" in rows:
        sex = rows["f31"].to_numpy(dtype=np.float64)
        out["sex"] = np.select([sex == 0, sex == 1], ["female", "male"], "unknown")
    return out
