"""Inputs of the classical baselines, for the people of an :class:`~ppeye.data.dataset.OnsetDataset`.

Patient features come from the dataset itself. Climate features summarise each person's
weather window per variable: the window mean of the daily values (each day averaged over its
hours and the box around the site, in the store's normalised units) and the mean anomaly in
``segments`` consecutive parts of the window (oldest first), where an anomaly is the day's
value minus the site's climatology for that day of the year (norm-period days, smoothed with a
31-day circular moving average). People kept without weather (``data.incomplete_weather:
include``) get zeros: the norm-period mean and no anomaly.
"""
import numpy as np

from ..core.errors import DataError, InputError
from ..core.logger import get_logger
from ..data.era5.variables import get_variable


def patient_features(ds, raw=False):
    """``[N, F]``: the standardised imputed features, or with ``raw`` the observed values only
    (NaN where a value was not observed; standardising is monotone, so trees see the raw order)."""
    return np.where(ds.tab_mask > 0, ds.tab, np.nan).astype(np.float32) if raw else ds.tab


def box_slices(region, shape):
    """Row and column slices of a ``shape`` (H, W) box for the fractions ``[row0, row1, col0, col1]``
    (None: the whole box); at least one cell each way."""
    H, W = (int(n) for n in shape)
    if region is None:
        return slice(0, H), slice(0, W)
    if not (isinstance(region, (list, tuple)) and len(region) == 4 and 0 <= region[0] < region[1] <= 1
            and 0 <= region[2] < region[3] <= 1):
        raise InputError(f"a box region is [row0, row1, col0, col1] fractions with 0 <= row0 < row1 <= 1 and "
                         f"0 <= col0 < col1 <= 1, got {region!r}")
    r0, c0 = int(np.floor(region[0] * H)), int(np.floor(region[2] * W))
    return slice(r0, max(int(np.ceil(region[1] * H)), r0 + 1)), slice(c0, max(int(np.ceil(region[3] * W)), c0 + 1))


def _smooth_circular(values, width):
    """Moving sum over ``width`` days on a circular day-of-year axis (axis 0)."""
    half = width // 2
    padded = np.concatenate([values[-half:], values, values[:half]])
    csum = np.concatenate([np.zeros((1,) + values.shape[1:]), np.cumsum(padded, axis=0)])
    return csum[width:] - csum[:-width]


class ClimateFeatures:
    """Daily site means of every variable, read once from the store; ``transform(ds)`` gives the
    per-person features. Reading is one pass over the store (``block`` days at a time)."""

    SMOOTH_DAYS = 31

    def __init__(self, store, norm_period, segments=4, block=64, log=None, region=None):
        """``region``: box fractions ``[row0, row1, col0, col1]`` the daily means are taken over (default
        the whole box)."""
        log = log or get_logger("ppeye.baselines")
        segments = int(segments)
        if segments < 1:
            raise DataError(f"compare.climate_segments must be >= 1, got {segments}")
        self.store, self.segments = store, segments
        self.variables = list(store.variables)
        n_sites, n_days, n_vars = len(store.sites), store.n_days, len(self.variables)
        mean, inv_std = store.mean.reshape(-1), store.inv_std.reshape(-1)
        rows, cols = box_slices(region, store.shape[-2:])
        self.region = None if region is None else [float(r) for r in region]
        daily = np.zeros((n_sites, n_days, n_vars), np.float64)
        for s in range(n_sites):
            for a in range(0, n_days, block):
                b = min(a + block, n_days)
                volumes = store.read_values(s, a, b)[..., rows, cols]                    # [n, C, D, h, w]
                daily[s, a:b] = (volumes.mean(axis=(2, 3, 4)) - mean) * inv_std
        valid = np.asarray(store.valid, dtype=bool)
        daily[~valid] = 0.0
        lo, hi = (np.datetime64(str(d), "D") for d in norm_period)
        in_norm = (store.dates >= lo) & (store.dates <= hi)
        doy = (store.dates - store.dates.astype("datetime64[Y]")).astype(np.int64)   # 0..365
        clim = np.zeros((n_sites, 366, n_vars))
        for s in range(n_sites):
            use = valid[s] & in_norm
            if not use.any():
                raise DataError(f"{store.path}: site {store.sites[s]} has no valid day in data.norm_period "
                                f"{list(norm_period)}: the climate baseline has no climatology for it")
            sums = np.zeros((366, n_vars))
            counts = np.zeros((366, 1))
            np.add.at(sums, doy[use], daily[s, use])
            np.add.at(counts, doy[use], 1.0)
            sums, counts = _smooth_circular(sums, self.SMOOTH_DAYS), _smooth_circular(counts, self.SMOOTH_DAYS)
            overall = daily[s, use].mean(axis=0)
            clim[s] = np.where(counts > 0, sums / np.maximum(counts, 1), overall)
        anomaly = np.where(valid[..., None], daily - clim[:, doy], 0.0)
        self.daily, self.anomaly = daily, anomaly
        zeros = np.zeros((n_sites, 1, n_vars))
        self._daily_sum = np.concatenate([zeros, np.cumsum(daily, axis=1)], axis=1)
        self._anomaly_sum = np.concatenate([zeros, np.cumsum(anomaly, axis=1)], axis=1)
        log.info(f"climate baseline: daily means of {n_vars} variables at {n_sites} sites over {n_days} days")

    @property
    def names(self):
        return ([f"{v}_window_mean" for v in self.variables] +
                [f"{v}_anomaly_part{k + 1}" for k in range(self.segments) for v in self.variables])

    def transform(self, ds):
        """``[N, V * (1 + segments)]`` for the people of ``ds`` (columns as in :attr:`names`)."""
        if ds.store.identity != self.store.identity:
            raise DataError(f"the dataset reads {ds.store.path} but the climate features were built from "
                            f"{self.store.path}")
        site, start, T = ds.site, ds.start, ds.T
        end = start + T

        def mean_between(csum, a, b):
            return (csum[site, b] - csum[site, a]) / np.maximum(b - a, 1)[:, None]

        parts = [mean_between(self._daily_sum, start, end)]
        bounds = [start + (k * T) // self.segments for k in range(self.segments + 1)]
        parts += [mean_between(self._anomaly_sum, a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        features = np.concatenate(parts, axis=1)
        features[ds.weather_present == 0] = 0.0
        return features.astype(np.float32)

    def lagged(self, ds, variable, anomaly=True, shift=0):
        """``[N, T]``: one variable's daily site mean (or its anomaly) at lags 1..T, lag 1 the window's
        last day (the day before the index date); NaN rows for people without weather. ``shift``
        moves every window that many days earlier (a negative control: the weather of another
        year's days); a shifted window that leaves the store or meets a missing day is NaN."""
        shorts = [get_variable(v).short for v in self.variables]
        short = get_variable(variable).short
        if short not in shorts:
            raise InputError(f"compare.dlnm.variable {variable!r} is not in the store's variables {self.variables}")
        source = (self.anomaly if anomaly else self.daily)[..., shorts.index(short)]
        start = ds.start - int(shift)
        inside = start >= 0
        days = np.where(inside, start, 0)[:, None] + np.arange(ds.T)[::-1]   # lag 1 = the last day of the window
        out = source[ds.site[:, None], days]
        usable = (ds.weather_present > 0) & inside
        if shift:
            usable &= np.asarray(self.store.valid, dtype=bool)[ds.site[:, None], days].all(axis=1)
        out[~usable] = np.nan
        return out
