"""Samples and batches for OnsetNet: people from cohort.parquet, weather from era5.zarr.

A sample is ``{"site", "days", "weather_present", "tab", "tab_mask", "labels"}``: the store's
site index, the ``T`` day indices before the index date, 1.0 when that window is complete in
the store (0.0 for a person kept without weather, ``data.incomplete_weather: include``), the
standardised imputed features ``[F]``, which of them were observed ``[F]`` (1.0) and the four
labels ``[4]``.

:class:`WeatherCollator` turns samples into a batch in which every (site, day)
volume is read and stored once: ``weather_unique [U, C, D, H, W]`` and
``day_index [B, T]`` pointing into it, so people of one site with overlapping
windows share their days. :class:`SiteDateBatchSampler` forms batches of people of
one site with nearby index dates to make that sharing large.
"""
import json
import os

import numpy as np
import pandas as pd

from ..core.errors import DataError
from ..core.logger import get_logger
from .climatology import open_store
from .ukb.fields import DISEASES
from .ukb.provenance import check_cohort_settings


def load_tab_stats(work_dir):
    path = os.path.join(work_dir, "features", "tab_stats.json")
    if not os.path.isfile(path):
        raise DataError(f"{path} does not exist: run tools/preprocess.py --stage impute")
    return json.load(open(path))


class OnsetDataset:
    """The people of one or more splits whose whole weather window is in the store.

    People whose window reaches outside the store or contains a missing day are left
    out and counted in ``self.excluded`` (and logged); nobody is dropped silently. With
    ``data.incomplete_weather: include`` they are kept without weather instead
    (``weather_present`` 0, counted in ``self.without_weather``), for a model that handles
    missing modalities (``model.missing``).
    """

    def __init__(self, cfg, splits, store=None, log=None):
        log = log or get_logger("ppeye.data")
        data = cfg["data"]
        work = data["work_dir"]
        splits = [splits] if isinstance(splits, str) else list(splits)
        paths = {name: os.path.join(work, f"{name}.parquet") for name in ("cohort", "cohort_imputed")}
        for name, path in paths.items():
            if not os.path.isfile(path):
                stage = "ukb" if name == "cohort" else "impute"
                raise DataError(f"{path} does not exist: run tools/preprocess.py --stage {stage}")
        cohort = pd.read_parquet(paths["cohort"])
        imputed = pd.read_parquet(paths["cohort_imputed"])
        if not (cohort["eid"].equals(imputed["eid"]) and cohort["split"].equals(imputed["split"])):
            raise DataError(f"{paths['cohort_imputed']} does not match {paths['cohort']} (its people or their "
                            f"splits differ): rerun tools/preprocess.py --stage impute")
        check_cohort_settings(cfg, work)
        stats = load_tab_stats(work)
        columns = stats["columns"]
        if len(columns) != int(data["num_features"]):
            raise DataError(f"the cohort has {len(columns)} features but data.num_features is {data['num_features']}")
        chosen = cohort["split"].isin(splits).to_numpy()
        if not chosen.any():
            raise DataError(f"no participants in split(s) {splits} of {paths['cohort']}")
        self.store = store or open_store(cfg, log=log)
        T = int(data["window_days"])
        expected = (len(data["variables"]), int(data["hours"]), *[int(b) for b in data["box"]])
        if tuple(self.store.shape) != expected:
            raise DataError(f"{self.store.path} holds volumes {self.store.shape} (C, D, H, W) but the config "
                            f"asks for {expected}: rerun tools/preprocess.py --stage era5 with this config")
        unknown = sorted(set(cohort.loc[chosen, "site"]) - set(self.store.sites))
        if unknown:
            raise DataError(f"sites {unknown} of the cohort are not in {self.store.path} (sites {self.store.sites})")
        site = cohort.loc[chosen, "site"].map(self.store.site_position).to_numpy(np.int64)
        shift = window_shift(data)
        end = self.store.day_index(cohort.loc[chosen, "index_date"].to_numpy()) - shift   # exclusive: the day before
        start = end - T
        inside = (start >= 0) & (end <= self.store.n_days)
        complete = np.zeros(len(site), dtype=bool)
        csum = np.concatenate([np.zeros((self.store.valid.shape[0], 1), int), np.cumsum(self.store.valid, 1)], 1)
        complete[inside] = (csum[site[inside], end[inside]] - csum[site[inside], start[inside]]) == T
        incomplete = {"window_outside_store": int((~inside).sum()),
                      "window_with_missing_days": int((inside & ~complete).sum())}
        policy = data.get("incomplete_weather", "exclude")
        if policy not in ("exclude", "include"):
            raise DataError(f"data.incomplete_weather must be exclude or include, got {policy!r}")
        self.excluded = incomplete if policy == "exclude" else {k: 0 for k in incomplete}
        self.without_weather = {k: 0 for k in incomplete} if policy == "exclude" else incomplete
        if sum(incomplete.values()):
            what = "left out" if policy == "exclude" else "kept without weather"
            log.warning(f"dataset {'+'.join(splits)}: {what} {incomplete} of {len(site)} participants")
        keep = complete if policy == "exclude" else np.ones(len(site), dtype=bool)
        if not keep.any():
            raise DataError(f"no participant of split(s) {splits} has a complete {T}-day window in {self.store.path}")
        values = imputed.loc[chosen, columns].to_numpy(np.float32)[keep]
        observed = cohort.loc[chosen, columns].notna().to_numpy()[keep]
        mean = np.asarray(stats["mean"], np.float32)
        std = np.asarray(stats["std"], np.float32)
        self.tab = ((values - mean) / std).astype(np.float32)
        self.tab_mask = observed.astype(np.float32)
        self.labels = cohort.loc[chosen, [f"label_{d}" for d in DISEASES]].to_numpy(np.float32)[keep]
        self.site = site[keep]
        self.weather_present = complete[keep].astype(np.float32)
        self.start = np.where(complete, start, 0)[keep]
        self.T = T
        self.rows = cohort.loc[chosen, "row"].to_numpy()[keep]  # export rows, for reports without ids
        self.cohort_pos = np.nonzero(chosen)[0][keep]            # rows of cohort.parquet (attributes)

    def __len__(self):
        return len(self.site)

    def subset(self, indices):
        """The same dataset restricted to ``indices`` (people in that order)."""
        import copy

        out = copy.copy(self)
        for name in ("tab", "tab_mask", "labels", "site", "start", "rows", "cohort_pos", "weather_present"):
            setattr(out, name, getattr(self, name)[indices])
        return out

    def __getitem__(self, i):
        return {
            "site": self.site[i],
            "days": np.arange(self.start[i], self.start[i] + self.T, dtype=np.int64),
            "weather_present": self.weather_present[i],
            "tab": self.tab[i],
            "tab_mask": self.tab_mask[i],
            "labels": self.labels[i],
        }


def window_shift(data):
    """``data.window_shift_days``: how many days earlier every window is taken (0: the days before
    the index date; a negative control otherwise)."""
    shift = data.get("window_shift_days", 0)
    if isinstance(shift, bool) or not isinstance(shift, int):
        raise DataError(f"data.window_shift_days must be a whole number of days (0: the window ends the day before the "
                        f"index date), got {shift!r}")
    return shift


def shared_window_days(train, ds):
    """Per person of ``ds``: how many days of their window are (site, day) pairs inside the window
    of some person of ``train`` with weather, an int array [len(ds)] (0 for people without
    weather). People of one centre share weather days; a model can remember the training people's
    days, so scores of people whose days it saw measure memory as much as detection."""
    n_sites, n_days = train.store.valid.shape
    starts = np.zeros((n_sites, n_days + 1), np.int64)        # +1 where a training window starts, -1 after it
    has = train.weather_present > 0
    np.add.at(starts, (train.site[has], train.start[has]), 1)
    np.add.at(starts, (train.site[has], np.minimum(train.start[has] + train.T, n_days)), -1)
    covered = np.cumsum(starts, axis=1)[:, :n_days] > 0
    csum = np.concatenate([np.zeros((n_sites, 1), np.int64), np.cumsum(covered, axis=1)], axis=1)
    end = np.minimum(ds.start + ds.T, n_days)
    shared = csum[ds.site, end] - csum[ds.site, ds.start]
    return np.where(ds.weather_present > 0, shared, 0)


class WeatherCollator:
    """Samples -> a batch whose weather holds each (site, day) volume once."""

    def __init__(self, store):
        self.store = store

    def weather(self, keys):
        """``keys`` [B, T] (site * n_days + day; -1 for a day without weather, given a zero
        volume) -> ``(weather_unique [U, C, D, H, W], day_index [B, T])``."""
        n_days = self.store.n_days
        unique, inverse = np.unique(keys, return_inverse=True)
        weather = np.empty((len(unique),) + tuple(self.store.shape), dtype=np.float32)
        weather[unique < 0] = 0.0
        sites = unique // n_days
        for site in np.unique(sites[unique >= 0]):
            at = np.nonzero(sites == site)[0]
            weather[at] = self.store.read(int(site), unique[at] % n_days)
        return weather, inverse.reshape(keys.shape).astype(np.int64)

    def __call__(self, samples):
        keys = np.stack([s["site"] * self.store.n_days + s["days"] if s.get("weather_present", 1.0) else
                         np.full(len(s["days"]), -1, np.int64) for s in samples])  # [B, T]
        weather, day_index = self.weather(keys)
        return {
            "weather_unique": weather,
            "day_index": day_index,
            "weather_present": np.asarray([s.get("weather_present", 1.0) for s in samples], np.float32),
            "tab": np.stack([s["tab"] for s in samples]),
            "tab_mask": np.stack([s["tab_mask"] for s in samples]),
            "labels": np.stack([s["labels"] for s in samples]),
        }


class SiteDateBatchSampler:
    """Batches of people of one site with nearby index dates, in a new order every epoch.

    People are sorted by site and window start (with a random jitter of up to
    ``jitter`` days, different each epoch, so batches are not always the same people),
    cut into batches, and the batches are shuffled. ``group=False`` forms batches of people
    in random (or dataset) order instead. With ``num_replicas > 1`` each rank takes every
    ``num_replicas``-th batch of the same list; for training the list is cut to a multiple
    of ``num_replicas`` so every rank makes the same number of steps (``drop_uneven``), for
    evaluation (``drop_uneven=False``) no batch is left out.
    """

    def __init__(self, dataset, batch_size, shuffle=True, drop_last=False, seed=0, jitter=None,
                 num_replicas=1, rank=0, group=True, drop_uneven=True):
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        self.site, self.start = dataset.site, dataset.start
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.jitter = dataset.T // 4 if jitter is None else jitter
        if not 0 <= rank < num_replicas:
            raise DataError(f"rank {rank} is not in [0, num_replicas={num_replicas})")
        self.num_replicas, self.rank = num_replicas, rank
        self.group, self.drop_uneven = group, drop_uneven
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def _batches(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        batches = []
        if self.group:
            noise = rng.uniform(0, self.jitter, len(self.site)) if self.shuffle and self.jitter else 0
            order = np.lexsort((self.start + noise, self.site))
            for site in np.unique(self.site):
                members = order[self.site[order] == site]
                batches += [members[i : i + self.batch_size] for i in range(0, len(members), self.batch_size)]
        else:
            order = rng.permutation(len(self.site)) if self.shuffle else np.arange(len(self.site))
            batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        if self.shuffle and self.group:          # ungrouped batches are already in random order
            batches = [batches[i] for i in rng.permutation(len(batches))]
        usable = len(batches)
        if self.drop_uneven and self.num_replicas > 1:
            usable -= usable % self.num_replicas
        return batches[self.rank : usable : self.num_replicas]

    def __iter__(self):
        return (b.tolist() for b in self._batches())

    def __len__(self):
        return len(self._batches())
