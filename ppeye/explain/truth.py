"""Scoring explanations against a synthetic dataset's planted truth (``ground_truth.json`` and
``truth.csv`` beside the raw data, as ``ppeye.data.synthetic`` writes them)."""
import json
import os

import numpy as np
import pandas as pd

from ..core.errors import InputError
from ..data.synthetic.signals import visibility


def load_gt(cfg):
    """The synthetic data's ``ground_truth.json`` (the planted signals' description), or None on real
    data (no ``ground_truth.json`` and ``truth.csv`` beside the raw files)."""
    raw = os.path.dirname(str(cfg["data"]["era5_raw_dir"]).rstrip("/"))
    gt_path, truth_path = os.path.join(raw, "ground_truth.json"), os.path.join(raw, "truth.csv")
    if not (os.path.isfile(gt_path) and os.path.isfile(truth_path)):
        return None
    with open(gt_path) as f:
        return json.load(f)


def load_truth(cfg, ds, order):
    """The synthetic data's planted truth for the people ``ds`` at positions ``order``, or None
    when the raw data have no ``ground_truth.json`` and ``truth.csv`` (real data): the planted
    signals' description (``gt``: which variable, region, lags, period and diseases they act on,
    as the generator wrote it), each person's planted subgroup (``older``, ``winter``) and how
    visible the signals are in the store itself (``visibility``: the ceiling an explanation can
    reach). The analyses score against ``gt`` only; nothing here names a disease or a signal."""
    gt = load_gt(cfg)
    if gt is None:
        return None
    truth_path = os.path.join(os.path.dirname(str(cfg["data"]["era5_raw_dir"]).rstrip("/")), "truth.csv")
    truth = pd.read_csv(truth_path, usecols=["eid", "older", "winter", "reference_date", "z_event", "z_periodic"],
                        dtype={"eid": str}).set_index("eid")
    cohort = pd.read_parquet(os.path.join(cfg["data"]["work_dir"], "cohort.parquet"), columns=["eid"])
    eids = cohort["eid"].to_numpy()[ds.cohort_pos[order]]
    t = truth.reindex(eids.astype(str))
    if t["older"].isna().all():
        raise InputError(f"{truth_path} shares no participant with the cohort: is it the ground truth of "
                         f"another synthetic dataset?")
    # the ceiling: how visible the planted signals are in the store itself, for the people whose
    # window ends at the truth's reference date (controls may have been given another one)
    end = ds.start[order] + ds.T
    same = (ds.store.dates[np.clip(end, 0, ds.store.n_days - 1)] == pd.to_datetime(t["reference_date"]).to_numpy()
            .astype("datetime64[D]")) & (end < ds.store.n_days)
    seen = visibility(ds.store, ds.site[order][same], end[same], t["z_event"].to_numpy()[same],
                      t["z_periodic"].to_numpy()[same], gt) if same.sum() > 2 else None
    return {"gt": gt, "older": t["older"].to_numpy(), "winter": t["winter"].to_numpy(), "visibility": seen,
            "visibility_people": int(same.sum())}
