"""Read raw ERA5 / ERA5-Land files in every layout the CDS has delivered, into one form.

Layouts handled by :func:`open_raw`:

* current CDS NetCDF: dimension ``valid_time``, extra ``number``/``expver``
  coordinates, one file per GRIB step type, often zipped together;
* old CDS NetCDF: dimension ``time``, int16 packed with ``scale_factor``/``add_offset``
  (decoded by xarray), sometimes an ``expver`` dimension mixing ERA5 and ERA5T;
* GRIB (through cfgrib), analyses with a ``time`` dimension and forecasts
  (accumulations) with ``time`` x ``step``.

The normalised dataset has dimensions ``(time, latitude, longitude)``, latitude
north to south, longitude in [-180, 180), float32 data variables named by their
ERA5 short names (``t2m``, ``tp``...), and nothing else. Every error names the file.
"""
import os
import tempfile
import threading
import zipfile

import numpy as np
import pandas as pd
import xarray as xr

from ...core.errors import DataError
from ...core.io import sha256
from ...core.optional import require
from .variables import BY_SHORT

NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf")
GRIB_SUFFIXES = (".grib", ".grb", ".grib2", ".grb2")
# HDF5 (under netCDF4) and ecCodes are not safe to call from several threads at once (two
# threads reading NetCDF crashed the process): every file read in this process holds this lock.
READ_LOCK = threading.Lock()
# names cfgrib or older converters use for variables whose ERA5 short name differs
ALIASES = {"2t": "t2m", "2d": "d2m", "10u": "u10", "10v": "v10", "sd_we": "sd"}


def open_raw(path):
    """Open one raw file (``.zip``, NetCDF or GRIB) as a normalised, loaded Dataset."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: raw ERA5 file not found")
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: file is empty (an interrupted download?)")
    if zipfile.is_zipfile(path):
        return _open_zip(path)
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic.startswith(b"GRIB") or path.lower().endswith(GRIB_SUFFIXES):
        return _open_grib(path, path)
    if magic[:3] == b"CDF" or magic[1:4] == b"HDF" or path.lower().endswith(NETCDF_SUFFIXES):
        return _open_netcdf(path, path)
    raise DataError(f"{path}: not a zip, NetCDF or GRIB file (starts with {magic[:4]!r})")


def _open_zip(path):
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist() if not m.endswith("/")]
            if not members:
                raise DataError(f"{path}: the zip archive is empty")
            parts = []
            with tempfile.TemporaryDirectory() as tmp:
                for m in members:
                    target = zf.extract(m, tmp)
                    label = f"{path}!{m}"
                    if m.lower().endswith(GRIB_SUFFIXES):
                        parts.append(_open_grib(target, label))
                    else:
                        parts.append(_open_netcdf(target, label))
    except zipfile.BadZipFile as e:
        raise DataError(f"{path}: corrupt zip archive ({e})") from None
    return _merge(parts, path)


def _merge(parts, label):
    try:
        return xr.merge(parts, join="outer", compat="no_conflicts")
    except (ValueError, xr.MergeError) as e:
        raise DataError(f"{label}: its parts do not fit together ({e})") from None


def _open_netcdf(path, label):
    try:
        with READ_LOCK, xr.open_dataset(path, engine="netcdf4", mask_and_scale=True, decode_times=True) as ds:
            ds = ds.load()
    except Exception as e:  # netCDF4 raises OSError, RuntimeError or ValueError for damaged files
        raise DataError(f"{label}: cannot read as NetCDF ({type(e).__name__}: {e}); the file may be truncated") from None
    return normalise(ds, label)


def _open_grib(path, label):
    try:
        with READ_LOCK:
            datasets = _cfgrib_datasets(path)
    except Exception as e:
        raise DataError(f"{label}: cannot read as GRIB ({type(e).__name__}: {e}); the file may be truncated") from None
    if not datasets:
        raise DataError(f"{label}: the GRIB file holds no fields")
    return _merge([normalise(ds, label) for ds in datasets], label)


def _cfgrib_datasets(path):
    cfgrib = require("cfgrib")

    return [ds.load() for ds in cfgrib.open_datasets(path, backend_kwargs={"indexpath": ""})]


def normalise(ds, label="dataset"):
    """Bring any of the layouts to ``(time, latitude, longitude)`` with short-named float32 variables."""
    ds = ds.rename({k: v for k, v in ALIASES.items() if k in ds.data_vars})
    if "valid_time" in ds.dims:
        ds = ds.rename({"valid_time": "time"})
    elif "step" in ds.dims and "time" in ds.dims:
        ds = _forecast_to_valid_time(ds, label)
    elif "time" in ds.dims and "valid_time" in ds.coords and "step" in ds.coords:
        ds = ds.assign_coords(time=ds["valid_time"].values)
    if "expver" in ds.dims:  # old layout mixing final ERA5 and preliminary ERA5T: keep the first valid
        merged = ds.isel(expver=0, drop=True)
        for i in range(1, ds.sizes["expver"]):
            merged = merged.combine_first(ds.isel(expver=i, drop=True))
        ds = merged
    missing = [d for d in ("time", "latitude", "longitude") if d not in ds.dims]
    if missing:
        raise DataError(f"{label}: expected dimensions time (or valid_time), latitude, longitude; missing {missing}")
    keep = [v for v in ds.data_vars if set(ds[v].dims) == {"time", "latitude", "longitude"}]
    if not keep:
        raise DataError(f"{label}: no (time, latitude, longitude) variables found (has {list(ds.data_vars)})")
    ds = ds[keep]
    ds = ds.drop_vars([c for c in ds.coords if c not in ("time", "latitude", "longitude")])
    lon = ds["longitude"].values
    if lon.max() > 180:
        ds = ds.assign_coords(longitude=np.where(lon > 180, lon - 360, lon))
    ds = ds.sortby("latitude", ascending=False).sortby("longitude").sortby("time")
    ds = ds.assign_coords(latitude=np.round(ds.latitude.values, 6), longitude=np.round(ds.longitude.values, 6))
    for v in ds.data_vars:
        step = ds[v].attrs.get("GRIB_stepType")
        ds[v] = ds[v].astype(np.float32).transpose("time", "latitude", "longitude")
        if step:
            ds[v].attrs["GRIB_stepType"] = step
    if ds.indexes["time"].has_duplicates:
        raise DataError(f"{label}: repeated time steps")
    return ds


def _forecast_to_valid_time(ds, label):
    """GRIB accumulations come as forecast ``time`` x ``step``: lay them out by valid time."""
    stacked = ds.stack(vt=("time", "step"))
    valid = (stacked["time"] + stacked["step"]).values
    stacked = stacked.drop_vars(["vt", "time", "step", "valid_time"], errors="ignore")
    stacked = stacked.assign_coords(vt=valid).rename({"vt": "time"})
    stacked = stacked.dropna("time", how="all")
    return stacked


def step_type(ds, name):
    """``instant`` or ``accum`` for a variable: from the file's GRIB metadata, else from our table."""
    attr = ds[name].attrs.get("GRIB_stepType")
    if attr in ("instant", "accum", "avg", "max", "min"):
        return "accum" if attr == "accum" else "instant"
    var = BY_SHORT.get(name)
    if var is None:
        raise DataError(f"variable '{name}' is not an ERA5-Land variable ppeye knows")
    return var.step_type


def deaccumulate(da, previous=None, sign=0, label=""):
    """Hourly amounts (the hour *ending* at each time) from accumulations since 00 UTC.

    ``da``: ``[time, lat, lon]`` at consecutive hours. The amount of the hour ending
    at 01 UTC is the 01 UTC value itself; every other hour is the difference to
    the previous hour (at 00 UTC the previous day's total minus its 23 UTC value).
    ``previous`` is the field one hour before ``da``'s first time (from the
    previous file), needed when ``da`` does not start at 01 UTC; without it the
    first amount is NaN. ``sign`` (+1 / -1) clips the small values of the wrong
    sign that come from packing noise; a large wrong-signed amount means the
    data are not ERA5-Land accumulations and is an error.
    """
    times = da["time"].values
    if len(times) > 1:
        steps = np.diff(times).astype("timedelta64[m]").astype(int)
        if (steps != 60).any():
            bad = times[1:][steps != 60][:3]
            raise DataError(f"{label}: accumulated '{da.name}' is not hourly around {[str(t)[:16] for t in bad]}")
    values = da.values.astype(np.float64)
    amounts = np.empty_like(values)
    amounts[1:] = values[1:] - values[:-1]
    if previous is not None:
        amounts[0] = values[0] - np.asarray(previous, dtype=np.float64)
    else:
        amounts[0] = np.nan
    hours = (times.astype("datetime64[h]").astype(int) % 24)
    restart = hours == 1
    amounts[restart] = values[restart]
    if sign:
        scale = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 0.0
        wrong = amounts * sign < 0
        big = wrong & (np.abs(amounts) > 1e-3 * scale + 1e-12)
        if big.any() and big.mean() > 0.01:
            raise DataError(
                f"{label}: de-accumulating '{da.name}' gives {100 * big.mean():.1f}% large values of the wrong "
                "sign: the data do not look accumulated since 00 UTC (ERA5 single levels are hourly already: "
                "set data.era5_product: era5)"
            )
        amounts[wrong] = 0.0
    return xr.DataArray(amounts.astype(np.float32), coords=da.coords, dims=da.dims, name=da.name, attrs=da.attrs)


# ------------------------------------------------------------------ the raw directory, a month


def month_files(raw_dir):
    """``{(year, month): [paths]}`` from the ``<YYYY>/<MM>/<group>.*`` layout."""
    if not os.path.isdir(raw_dir):
        raise DataError(f"data.era5_raw_dir {raw_dir} does not exist (run tools/download.py or tools/make_synthetic.py)")
    out = {}
    for year in sorted(os.listdir(raw_dir)):
        ydir = os.path.join(raw_dir, year)
        if not (year.isdigit() and len(year) == 4 and os.path.isdir(ydir)):
            continue
        for month in sorted(os.listdir(ydir)):
            mdir = os.path.join(ydir, month)
            if not (month.isdigit() and os.path.isdir(mdir)):
                continue
            files = sorted(os.path.join(mdir, f) for f in os.listdir(mdir)
                           if not f.startswith(".") and f.lower().endswith((".zip", ".nc", ".grib", ".grb", ".grib2")))
            if files:
                out[(int(year), int(month))] = files
    return out


def source_fingerprint(files, hashes=None):
    """``[[name, size, sha256 of the content], ...]``: a file replaced by another of the same size
    and modification time still changes it. ``hashes`` ({path: [size, mtime_ns, ctime_ns, inode,
    sha256]}, updated in place) spares rehashing a file whose status has not changed."""
    hashes = {} if hashes is None else hashes
    out = []
    for f in files or []:
        st = os.stat(f)
        status = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        known = hashes.get(f)
        if not known or known[:4] != status:
            known = status + [sha256(f)]
            hashes[f] = known
        out.append([os.path.basename(f), st.st_size, known[4]])
    return out


def read_month(files, variables, label, month=None):
    """All variables of one month's files merged; an error names what is missing. ``month``
    (a ``pandas.Period``): every file must hold times of that month (its folder's)."""
    parts = [open_raw(f) for f in files]
    if month is not None:
        lo, hi = month.start_time, (month + 1).start_time
        for f, part in zip(files, parts):
            t = pd.DatetimeIndex(part["time"].values)
            outside = int(((t < lo) | (t >= hi)).sum())
            if outside:
                raise DataError(f"{f}: {outside} of its {len(t)} time steps ({t.min():%Y-%m-%d %H:%M} .. "
                                f"{t.max():%Y-%m-%d %H:%M}) are outside {month}, the month of its folder: a file "
                                f"in the wrong folder?")
    try:
        ds = xr.merge(parts, join="outer", compat="no_conflicts")
    except (ValueError, xr.MergeError) as e:
        raise DataError(f"{label}: the files {[os.path.basename(f) for f in files]} do not fit together ({e})") from None
    missing = [v.short for v in variables if v.short not in ds.data_vars]
    if missing:
        raise DataError(f"{label}: variables {missing} are in none of {[os.path.basename(f) for f in files]}")
    return ds[[v.short for v in variables]]
