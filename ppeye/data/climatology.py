"""Each site's climatology, so the weather can enter the model as anomalies (``data.anomalies``).

Why: an exposure that matters to health is often "hotter (or more humid) than usual for the
time of year", while the normalised volumes are dominated by the seasonal cycle; the model
sees a window of days but not their calendar date, so it cannot subtract the season itself.
With ``data.anomalies.enabled`` every volume is read as its normalised values minus its site's
climatology for that calendar day: per site, variable, hour and cell, a mean plus
``harmonics`` annual harmonics (sin and cos of 2 pi k doy / 365.25), fitted by least squares
on the normalised values of the site's valid days inside ``data.norm_period`` and before
``ukb.temporal_split`` (the held-out period's weather is not used, as for the day
pretraining). The units stay those of the normalisation (standard deviations of each
variable over the normalisation period).

The fit streams over the days (normal equations of a few dozen days at a time), so it needs
memory for one site's coefficients only. It is written to ``<work_dir>/climatology/`` under a
name made of what it depends on (the store's identity and its converted months, the
normalisation, the fitting dates and the harmonics): a changed store or setting fits anew,
and a file whose SHA-256 differs from its record is refused.

>>> basis = harmonic_basis(np.array([0, 91, 182, 273]), 1)
>>> basis.shape, bool(np.allclose(basis[:, 0], 1.0))
((4, 3), True)
"""
import json
import os

import numpy as np

from ..core.errors import ConfigError, DataError
from ..core.io import atomic_write, digest, sha256
from .store import Era5Store

YEAR = 365.25
MIN_FIT_DAYS = 300       # with harmonics: about a year; fewer cannot separate the annual cycle from the weather
MIN_MEAN_DAYS = 28       # the mean alone (harmonics 0)


def harmonic_basis(day_of_year, harmonics):
    """[n, 1 + 2 K]: a constant, then sin and cos of each of K annual harmonics."""
    doy = np.asarray(day_of_year, dtype=np.float64)
    cols = [np.ones_like(doy)]
    for k in range(1, int(harmonics) + 1):
        angle = 2 * np.pi * k * doy / YEAR
        cols += [np.sin(angle), np.cos(angle)]
    return np.stack(cols, axis=1)


def day_of_year(dates):
    dates = np.asarray(dates, dtype="datetime64[D]")
    return (dates - dates.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64)


def settings(cfg):
    """``data.anomalies`` checked: None when off, else {"harmonics": K}."""
    section = cfg["data"].get("anomalies") or {}
    if not section.get("enabled"):
        return None
    k = section.get("harmonics")
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= 6:
        raise ConfigError(f"data.anomalies.harmonics must be an integer from 0 to 6, got {k!r}")
    return {"harmonics": k}


def fit_dates(cfg):
    """(first, last) date of the fitting days: data.norm_period, ending before ukb.temporal_split."""
    first, last = (np.datetime64(str(d), "D") for d in cfg["data"]["norm_period"])
    split = (cfg.get("ukb") or {}).get("temporal_split")
    if split:
        cut = np.datetime64(str(split[0] if isinstance(split, (list, tuple)) else split), "D") - 1
        last = min(last, cut)
    return first, last


class Climatology:
    """Coefficients ``[S, 1 + 2K, C, D, H, W]`` (site order of the store they were fitted on)."""

    def __init__(self, coefficients, sites, harmonics, identity):
        self.coefficients = np.asarray(coefficients, dtype=np.float32)
        self.sites = [int(s) for s in sites]
        self.harmonics = int(harmonics)
        self.identity = identity
        self.position = {code: i for i, code in enumerate(self.sites)}

    @property
    def digest(self):
        return digest(self.identity)

    def at(self, site_code, dates):
        """The climatology of one site on ``dates``: ``[len(dates), C, D, H, W]`` float32."""
        if int(site_code) not in self.position:
            raise DataError(f"site {site_code} has no climatology (fitted for sites {self.sites}); "
                            f"data.anomalies needs each site's own history")
        coef = self.coefficients[self.position[int(site_code)]]
        basis = harmonic_basis(day_of_year(dates), self.harmonics).astype(np.float32)
        return (basis @ coef.reshape(coef.shape[0], -1)).reshape((len(basis),) + coef.shape[1:])

    def save(self, path):
        """``path`` (.npz, plain arrays) and ``path + '.json'`` (identity, sites, SHA-256), atomically."""
        with atomic_write(path, "wb") as f:
            np.savez(f, coefficients=self.coefficients, sites=np.asarray(self.sites, dtype=np.int64))
        record = {"identity": self.identity, "harmonics": self.harmonics, "sites": self.sites,
                  "sha256": sha256(path)}
        with atomic_write(path + ".json") as f:
            json.dump(record, f, indent=1)

    @classmethod
    def load(cls, path):
        record_path = path + ".json"
        if not (os.path.isfile(path) and os.path.isfile(record_path)):
            raise DataError(f"{path}: climatology or its record {record_path} missing")
        with open(record_path) as f:
            record = json.load(f)
        if sha256(path) != record.get("sha256"):
            raise DataError(f"{path}: its SHA-256 differs from {record_path} (changed or damaged); delete both "
                            f"and it is fitted again")
        with np.load(path, allow_pickle=False) as z:
            coefficients, sites = z["coefficients"], z["sites"]
        if [int(s) for s in sites] != record["sites"]:
            raise DataError(f"{path}: its sites differ from its record")
        return cls(coefficients, sites, record["harmonics"], record["identity"])


def fit(store, first, last, harmonics, chunk_days=32, log=None):
    """Fit each site's climatology on its valid days in [first, last] (see the module docstring)."""
    inside = (store.dates >= first) & (store.dates <= last)
    basis_all = harmonic_basis(day_of_year(store.dates), harmonics)
    p = basis_all.shape[1]
    cells = int(np.prod(store.shape))
    coefficients = np.empty((len(store.sites), p) + tuple(store.shape), np.float32)
    for s, code in enumerate(store.sites):
        days = np.nonzero(inside & store.valid[s])[0]
        need = MIN_FIT_DAYS if harmonics else MIN_MEAN_DAYS
        if len(days) < need:
            raise DataError(f"{store.path}: site {code} has {len(days)} valid days between {first} and {last}; "
                            f"data.anomalies with {harmonics} harmonics needs at least {need} to fit its "
                            f"climatology (widen data.norm_period, or fewer harmonics)")
        xtx = np.zeros((p, p))
        xty = np.zeros((p, cells))
        for i in range(0, len(days), chunk_days):
            chunk = days[i : i + chunk_days]
            x = basis_all[chunk]
            y = store.read_normalised(s, chunk).reshape(len(chunk), cells).astype(np.float64)
            xtx += x.T @ x
            xty += x.T @ y
        coefficients[s] = np.linalg.solve(xtx, xty).reshape((p,) + tuple(store.shape)).astype(np.float32)
        if log is not None:
            log.info(f"climatology of site {code}: {len(days)} days, {p} terms per cell")
    return coefficients


def climatology_for(cfg, store, log=None):
    """The config's climatology for ``store``: read from ``<work_dir>/climatology/`` or fitted and
    written there. None when ``data.anomalies`` is off."""
    chosen = settings(cfg)
    if chosen is None:
        return None
    first, last = fit_dates(cfg)
    group_attrs = dict(store.group.attrs)
    months = {m: v for m, v in (group_attrs.get("months") or {}).items()
              if str(first)[:7] <= m[:7] <= str(last)[:7]}
    identity = {"store": store.identity, "months": digest(months), "first": str(first), "last": str(last),
                "harmonics": chosen["harmonics"],
                "normalisation": digest([np.round(store.mean.reshape(-1), 6).tolist(),
                                         np.round(store.std.reshape(-1), 6).tolist()])}
    folder = os.path.join(cfg["data"]["work_dir"], "climatology")
    path = os.path.join(folder, f"climatology-{digest(identity)}.npz")
    if os.path.isfile(path):
        clim = Climatology.load(path)
        if clim.identity != identity or clim.sites != store.sites:
            raise DataError(f"{path}: fitted for other settings than its name says; delete it and its .json")
        return clim
    os.makedirs(folder, exist_ok=True)
    clim = Climatology(fit(store, first, last, chosen["harmonics"], log=log), store.sites, chosen["harmonics"],
                       identity)
    clim.save(path)
    if log is not None:
        log.info(f"climatology written to {path}")
    return clim


def open_store(cfg, log=None):
    """The config's weather store (``<work_dir>/era5.zarr``), reading anomalies when
    ``data.anomalies`` is on (its climatology fitted on first use)."""
    store = Era5Store(os.path.join(cfg["data"]["work_dir"], "era5.zarr"))
    return store.use_climatology(climatology_for(cfg, store, log=log))
