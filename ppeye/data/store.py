"""Reading era5.zarr (written by :mod:`ppeye.data.era5.convert`) for training and inference.

The store is opened lazily, so a Dataset holding it can be sent to DataLoader worker
processes; it can be a local path or any URL fsspec understands (``s3://...``).
"""
import json

import numpy as np

from ..core.errors import DataError
from .era5.packing import FILL, Packing


def read_days(array, site, days, shape, dtype=np.float32):
    """``array[site, days]`` as ``dtype`` ``[len(days), *shape]`` for sorted day indices, reading
    each run of consecutive days as one slice (a window is one read of a few chunks)."""
    days = np.asarray(days, dtype=np.int64)
    breaks = np.nonzero(np.diff(days) != 1)[0] + 1
    if len(breaks) == 0 and len(days):
        return np.ascontiguousarray(array[site, days[0] : days[-1] + 1], dtype=dtype)
    out = np.empty((len(days),) + tuple(shape), dtype=dtype)
    for run, start in zip(np.split(days, breaks), np.split(np.arange(len(days)), breaks)):
        out[start[0] : start[0] + len(run)] = array[site, run[0] : run[-1] + 1]
    return out


class Era5Store:
    """Normalised daily volumes ``[C, D, H, W]`` by (site, day) from an era5.zarr store, or their
    anomalies from each site's climatology (``use_climatology``; ``ppeye.data.climatology``).
    An int16 store (``data.store_packing``) is decoded and normalised in one step."""

    def __init__(self, path, norm=None):
        """``norm``: ``(mean, std)`` per variable to normalise with instead of the store's own
        statistics (inference normalises a new store exactly as the training store was)."""
        self.path = str(path)
        self._group = None
        self.climatology = None
        group = self.group
        attrs = dict(group.attrs)
        missing = [k for k in ("identity", "mean", "std", "variables") if k not in attrs]
        if missing:
            raise DataError(f"{self.path}: not a finished era5.zarr (attributes {missing} missing); "
                            "run tools/preprocess.py --stage era5")
        if norm is None and not attrs["mean"]:
            raise DataError(f"{self.path}: no normalisation statistics (no valid day in data.norm_period?)")
        self.identity = attrs["identity"]
        self.variables = list(attrs["variables"])
        mean, std = norm if norm is not None else (attrs["mean"], attrs["std"])
        if len(mean) != len(self.variables) or len(std) != len(self.variables):
            raise DataError(f"{self.path}: {len(self.variables)} variables but normalisation statistics for "
                            f"{len(mean)}")
        self.mean = np.asarray(mean, dtype=np.float32)[:, None, None, None]
        self.std = np.asarray(std, dtype=np.float32)[:, None, None, None]
        self.inv_std = (1.0 / self.std).astype(np.float32)
        self.sites = [int(s) for s in group["site"][:]]
        self.site_position = {code: i for i, code in enumerate(self.sites)}
        start = np.datetime64(self.identity["start_date"], "D")
        self.n_days = int(group["weather"].shape[1])
        self.dates = start + np.arange(self.n_days)
        self.valid = np.asarray(group["valid"][:], dtype=bool)  # [S, T]
        self.shape = tuple(int(x) for x in group["weather"].shape[2:])  # C, D, H, W
        self.packing = Packing.from_attrs(attrs["packing"], self.path) if "packing" in attrs else None
        if self.packing is not None:    # (code * scale + offset - mean) / std = code * a + b
            if self.packing.variables != self.variables:
                raise DataError(f"{self.path}: its packing lists variables {self.packing.variables}, the store "
                                f"{self.variables}")
            scale = self.packing.scale.astype(np.float32)[:, None, None, None]
            offset = self.packing.offset[:, None, None, None]
            self.code_scale = (scale * self.inv_std).astype(np.float32)
            self.code_shift = ((offset - self.mean) * self.inv_std).astype(np.float32)

    @property
    def group(self):
        if self._group is None:
            import zarr

            try:
                self._group = zarr.open_group(self.path, mode="r")
            except Exception as e:  # zarr raises several types for a missing or foreign store
                raise DataError(f"cannot open era5 store {self.path}: {type(e).__name__}: {e}") from None
        return self._group

    def __getstate__(self):  # workers reopen the store themselves
        state = self.__dict__.copy()
        state["_group"] = None
        return state

    def day_index(self, dates):
        """Store day indices of ``dates`` (numpy datetime64[D])."""
        return (np.asarray(dates, dtype="datetime64[D]") - self.dates[0]).astype(np.int64)

    def read_normalised(self, site, days):
        """Normalised volumes for one site and sorted day indices: ``[len(days), C, D, H, W]``.

        Normalisation is done in place, as a subtraction and a multiplication.
        """
        if self.packing is not None:
            codes = read_days(self.group["weather"], site, days, self.shape, dtype=np.int16)
            out = np.empty(codes.shape, np.float32)
            np.multiply(codes, self.code_scale, out=out, casting="unsafe")
            np.add(out, self.code_shift, out=out)
            missing = ~self.valid[site, np.asarray(days)]
            if missing.any():      # a day not (wholly) written: its unwritten values read as NaN, as in float32
                out[missing] = np.where(codes[missing] == FILL, np.nan, out[missing])
            return out
        out = read_days(self.group["weather"], site, days, self.shape)
        np.subtract(out, self.mean, out=out)
        np.multiply(out, self.inv_std, out=out)
        return out

    def read_values(self, site, start, stop):
        """The stored values of days ``start..stop-1`` of one site in store units (float64, NaN where
        nothing was written): for baselines that take their own statistics."""
        raw = self.group["weather"][site, start:stop]
        if self.packing is not None:
            return self.packing.unpack(raw)
        return np.asarray(raw, dtype=np.float64)

    def read(self, site, days):
        """What the model reads: the normalised volumes, minus the site's climatology of each
        calendar day when one is in use."""
        out = self.read_normalised(site, days)
        if self.climatology is not None:
            np.subtract(out, self.climatology.at(self.sites[site], self.dates[np.asarray(days)]), out=out)
        return out

    def use_climatology(self, climatology):
        """Read anomalies from ``climatology`` (None: plain normalised volumes); reading a site it
        does not cover is an error naming the site."""
        if climatology is not None:
            if tuple(climatology.coefficients.shape[2:]) != tuple(self.shape):
                raise DataError(f"{self.path}: the climatology is for volumes {climatology.coefficients.shape[2:]}, "
                                f"the store holds {self.shape}")
        self.climatology = climatology
        return self

    def describe(self):
        return json.dumps({"path": self.path, "sites": self.sites, "days": self.n_days, "shape": self.shape})


def open_dataset(path):
    """era5.zarr as an xarray Dataset with one variable per ERA5 variable (``t2m``, ``tp``, ...),
    each ``[site, date, hour, y, x]`` in store units with its ``units`` and ``long_name``, ``lat`` /
    ``lon`` as coordinates, and ``valid`` / ``land`` beside them: for looking at the weather, not
    for training (the model reads :class:`Era5Store`). Values are not normalised. For example
    ``open_dataset("data/demo/work/era5.zarr").t2m.sel(site=11001, date="2019-07-01")``.
    """
    import xarray as xr

    ds = xr.open_zarr(str(path), consolidated=None)
    names = [str(v) for v in ds["variable"].values]
    units = ([str(u) for u in ds["variable_units"].values] if "variable_units" in ds.coords
             else list(ds.attrs.get("units") or [""] * len(names)))
    long_names = ([str(u) for u in ds["variable_long_name"].values] if "variable_long_name" in ds.coords else names)
    extra = [c for c in ("variable_units", "variable_long_name") if c in ds.coords]
    packing = Packing.from_attrs(ds.attrs["packing"], str(path)) if "packing" in ds.attrs else None

    def values(i, name):        # an int16 store: xarray has masked -32768; the scale is per variable
        v = ds["weather"].sel(variable=name).drop_vars(["variable", *extra])
        return v if packing is None else v * packing.scale[i] + packing.offset[i]

    out = xr.Dataset({name: values(i, name).assign_attrs(units=unit, long_name=long_name)
                      for i, (name, unit, long_name) in enumerate(zip(names, units, long_names))})
    for name in ("valid", "land"):
        out[name] = ds[name]
    return out.assign_attrs({k: ds.attrs[k] for k in ("identity", "norm_period") if k in ds.attrs})
