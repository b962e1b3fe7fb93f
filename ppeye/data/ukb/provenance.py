"""Which settings a cohort was made with, and a refusal to use it under other ones.

``cohort.parquet`` (its people, labels, index dates and splits) depends on the ``ukb`` settings
and on the data period, centres and window. A config changed after ``tools/preprocess.py
--stage ukb`` (another ``ukb.temporal_split``, ``ukb.validation``, split fractions or centres)
would otherwise train and evaluate on the splits of the old settings while its log and
``config.yaml`` name the new ones. The cohort records ``made_with`` in ``cohort_report.json``;
:func:`check_cohort_settings` compares it with the config in use.
"""
import json
import os

from ...core.config import config_differences
from ...core.errors import DataError

# data.window_days is left out: a longer window than the cohort's is the dataset's to handle (it
# counts and leaves out, or keeps without weather, the people whose window leaves the store)
DATA_KEYS = ("ukb_table", "sites", "start_date", "end_date", "num_features")
UKB_KEYS_NOT_READ = ("warn_unreadable_share", "imputer")   # said or used after the cohort is made


def cohort_settings(cfg):
    """The settings ``build_cohort`` reads, as plain values (dates and paths as text)."""
    data = {k: cfg["data"].get(k) for k in DATA_KEYS}
    data["ukb_table"] = os.path.basename(str(data["ukb_table"]))
    ukb = {k: v for k, v in dict(cfg["ukb"]).items() if k not in UKB_KEYS_NOT_READ}
    ukb.setdefault("validation", "random")
    return json.loads(json.dumps({"data": data, "ukb": ukb}, default=str))


def check_cohort_settings(cfg, work_dir):
    """Refuse a cohort made with other settings than ``cfg``, naming each difference; a cohort
    of an earlier ppeye (no record) is accepted as it is."""
    path = os.path.join(work_dir, "cohort_report.json")
    if not os.path.isfile(path):
        return
    with open(path) as f:
        made = json.load(f).get("made_with")
    if made is None:
        return
    # only what this ppeye records is compared: a cohort of an earlier one that recorded more
    # (data.window_days, before it was left to the dataset) is not refused for it
    made = {section: {k: v for k, v in (made.get(section) or {}).items()
                      if section != "data" or k in DATA_KEYS} for section in ("data", "ukb")}
    differ = config_differences(made, cohort_settings(cfg))
    if differ:
        raise DataError(f"{os.path.join(work_dir, 'cohort.parquet')} was made with other settings than this config "
                        f"(the cohort's -> this config's: {'; '.join(differ)}): rerun tools/preprocess.py --stage ukb and --stage impute with it "
                        f"(or use the config the cohort was made with)")
