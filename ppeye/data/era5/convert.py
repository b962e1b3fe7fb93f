"""Raw ERA5 files -> ``era5.zarr``: daily cubes of the cells around each site.

The store (see :mod:`ppeye.data.store` for reading it) holds

* ``weather`` ``(site, date, variable, hour, y, x)`` float32, chunked ``(1,
  data.store_chunk_days, C, D, H, W)`` so a window of days is a few contiguous reads;
* ``valid`` ``(site, date)``: False where any hour of any variable is missing (those
  days stay NaN and are reported; nothing is zero-filled);
* ``land`` ``(site, y, x)``: False for sea cells;
* coordinates for sites (codes, names, coordinates), dates, variables, hours, and
  the latitude/longitude of every box cell; units and normalisation statistics in attrs.

How values are made (documented choices):

* accumulated ERA5-Land variables are de-accumulated to hourly amounts (the amount
  of the hour ending at 00 UTC belongs to the previous day); ``data.era5_product:
  era5`` skips this for ERA5 single levels, whose accumulations are hourly already;
* with ``data.hours = D < 24``, instantaneous variables are sampled at 00, 24/D, ...
  UTC and accumulated ones averaged over each block of 24/D hours;
* units: K -> degC, Pa -> hPa, accumulated m -> mm h-1, accumulated J m-2 ->
  W m-2 (hourly means); other units unchanged;
* the box of ``data.box`` cells (see :mod:`.grid`) is cut from grids at
  ``data.resolution``; a coarser source grid (ERA5 at 0.25 degrees) is interpolated
  bilinearly to the box cells after its sea cells are filled from their nearest
  land neighbour, and a box cell is sea where the nearest source cell is sea;
* sea cells take the value of the nearest land cell in the box (Euclidean
  distance in cells); the ``land`` mask keeps which they are;
* normalisation statistics (per-variable mean and standard deviation) come from
  the valid days inside ``data.norm_period`` only.

Conversion is month by month (``data.convert_workers`` months at a time through dask:
local threads, or the dask.distributed cluster of ``data.dask_scheduler``) and
incremental: each converted month records a fingerprint of its source files, so a rerun converts only new or changed months
(and a month whose last day waited for the next month's first hour).
"""
import calendar
import csv
import datetime as dt
import os

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from ...core.errors import ConfigError, DataError
from ...core.io import atomic_directory, atomic_write
from ...core.logger import get_logger
from ..ukb.centres import resolve_sites
from .grid import box_index, check_covers, nearest_fill_indices, regrid, site_box, source_resolution
from .packing import Packing, check_packing, mark_packed, unwritten
from .reader import month_files, read_month, source_fingerprint
from .values import daily_values, store_units
from .variables import resolve_variables

STORE_NAME = "era5.zarr"
FORMAT_VERSION = 1
class Spec:
    """What the store must contain, from the config's data section."""

    def __init__(self, cfg):
        data = cfg["data"]
        self.raw_dir = data["era5_raw_dir"]
        self.path = os.path.join(data["work_dir"], STORE_NAME)
        self.sites = resolve_sites(data["sites"])
        self.variables = resolve_variables(data["variables"])
        self.start = pd.Timestamp(str(data["start_date"]))
        self.end = pd.Timestamp(str(data["end_date"]))
        if self.end < self.start:
            raise ConfigError(f"data.end_date {self.end.date()} is before data.start_date {self.start.date()}")
        self.hours = int(data["hours"])
        if self.hours < 1 or 24 % self.hours:
            raise ConfigError(f"data.hours must divide 24, got {self.hours}")
        self.box = tuple(int(b) for b in data["box"])
        self.resolution = float(data["resolution"])
        self.product = data["era5_product"]
        if self.product not in ("era5-land", "era5"):
            raise ConfigError(f"data.era5_product must be era5-land or era5, got {self.product!r}")
        self.chunk_days = int(data["store_chunk_days"])
        self.packing = check_packing(data.get("store_packing", "float32"))
        self.dask_scheduler = data.get("dask_scheduler")
        period = data["norm_period"]
        if not (isinstance(period, list) and len(period) == 2):
            raise ConfigError(f"data.norm_period must be [first, last] dates, got {period!r}")
        self.norm_period = (pd.Timestamp(str(period[0])), pd.Timestamp(str(period[1])))
        self.dates = pd.date_range(self.start, self.end, freq="D")
        self.boxes = [site_box(c.lat, c.lon, self.box, self.resolution) for c in self.sites]

    def identity(self):
        """What a store must match to be extended rather than rebuilt (float32 names no packing, as before)."""
        return {
            "format_version": FORMAT_VERSION,
            "sites": [c.code for c in self.sites],
            "variables": [v.short for v in self.variables],
            "hours": self.hours,
            "box": list(self.box),
            "resolution": self.resolution,
            "product": self.product,
            "start_date": str(self.start.date()),
            **({"packing": self.packing} if self.packing != "float32" else {}),
        }


# ------------------------------------------------------------------------------ one month


def convert_month(year, month, files, next_files, spec):
    """Convert one month: ``(weather [S, n, C, D, H, W], valid [S, n], land [S, H, W], units)``.

    ``next_files`` (the next month's files, or None) supply the 00 UTC step that
    closes the month's last day for accumulated variables; without them that day
    is not valid. Only the days within ``[data.start_date, data.end_date]`` are returned.
    """
    label = f"ERA5 {year:04d}-{month:02d}"
    n_days = calendar.monthrange(year, month)[1]
    first = pd.Timestamp(year, month, 1)
    days = pd.date_range(first, periods=n_days, freq="D")
    keep = (days >= spec.start) & (days <= spec.end)
    ds = read_month(files, spec.variables, label, pd.Period(year=year, month=month, freq="M"))
    hours = pd.date_range(first, periods=n_days * 24, freq="h")
    inst = ds.reindex(time=hours)
    acc_source = ds
    if next_files:
        following = first + pd.offsets.MonthBegin()
        nxt = read_month(next_files, spec.variables, f"ERA5 {following:%Y-%m}", pd.Period(following, freq="M"))
        if np.datetime64(following) in nxt.time.values:
            acc_source = xr.concat([ds, nxt.sel(time=[following])], dim="time")
    acc = acc_source.reindex(time=hours + pd.Timedelta(hours=1))  # hours ending 01 .. the next 00 UTC
    res = source_resolution(ds, label)
    same_grid = abs(res - spec.resolution) < 1e-6
    for centre, box in zip(spec.sites, spec.boxes):
        check_covers(ds, box, centre, label, res)
    S, C, D, (H, W) = len(spec.sites), len(spec.variables), spec.hours, spec.box
    weather = np.full((S, n_days, C, D, H, W), np.nan, dtype=np.float32)
    land = np.ones((S, H, W), dtype=bool)
    units = []
    for c, var in enumerate(spec.variables):
        values, unit = daily_values(ds, acc, inst, var, spec, n_days, label)
        units.append(unit)
        sea_src = np.isnan(values).all(axis=(0, 1))  # never a value this month: sea (ERA5-Land is land-only)
        for s, box in enumerate(spec.boxes):
            if same_grid:
                try:
                    rows, cols = box_index(ds, box)
                except DataError as e:
                    raise DataError(f"{label}: {e}") from None
                cube, sea = values[..., rows, cols], sea_src[rows, cols]
            else:
                fill = nearest_fill_indices(~sea_src)
                src = values if fill is None else values[..., fill[0], fill[1]]
                cube = regrid(src.reshape(-1, *src.shape[-2:]), ds.latitude.values, ds.longitude.values, box)
                cube = cube.reshape(n_days, D, H, W)
                near = regrid(sea_src[None].astype(np.float32), ds.latitude.values, ds.longitude.values, box)[0]
                sea = near > 0.5
            land[s] &= ~sea
            weather[s, :, c] = cube
    for s in range(S):
        if not land[s].any():
            raise DataError(f"{label}: the box of {spec.sites[s].name} has no land cell in the data")
        fill = nearest_fill_indices(land[s])
        if fill is not None:
            weather[s] = weather[s][..., fill[0], fill[1]]
    valid = ~np.isnan(weather).any(axis=(2, 3, 4, 5))
    return weather[:, keep], valid[:, keep], land, units


# ------------------------------------------------------------------------------ the store


def _skeleton(spec):
    import dask.array as da

    S, T, C, D, (H, W) = len(spec.sites), len(spec.dates), len(spec.variables), spec.hours, spec.box
    chunks = (1, spec.chunk_days, C, D, H, W)
    packed = spec.packing == "int16"
    ds = xr.Dataset(
        {
            "weather": (("site", "date", "variable", "hour", "y", "x"), unwritten((S, T, C, D, H, W), chunks, packed)),
            "valid": (("site", "date"), da.zeros((S, T), dtype=bool, chunks=(S, spec.chunk_days * 16))),
            "land": (("site", "y", "x"), np.ones((S, H, W), dtype=bool),
                     {"long_name": "land cell (sea cells hold their nearest land cell's values)"}),
        },
        coords={
            # CF-style coordinates: xr.open_zarr(store).weather.sel(site=..., date=...) just works
            "lat": (("site", "y"), np.stack([b.lats for b in spec.boxes]),
                    {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": (("site", "x"), np.stack([b.lons for b in spec.boxes]),
                    {"standard_name": "longitude", "units": "degrees_east"}),
            "variable_long_name": ("variable", [v.long_name for v in spec.variables]),
            "variable_units": ("variable", [store_units(v) for v in spec.variables]),
            "site": [c.code for c in spec.sites],
            "site_name": ("site", [c.name for c in spec.sites]),
            "site_lat": ("site", [c.lat for c in spec.sites]),
            "site_lon": ("site", [c.lon for c in spec.sites]),
            "date": spec.dates.values,
            "variable": [v.short for v in spec.variables],
            "hour": ("hour", np.arange(0, 24, 24 // D), {"long_name": "hour of the day (UTC)", "units": "h"}),
        },
        attrs={"identity": spec.identity(), "months": {}, "month_stats": {}, "units": [], "mean": [], "std": []},
    )
    ds["weather"].attrs.update({"long_name": "hourly ERA5 values in a box around each site",
                                "units": "per variable: see variable_units"})
    ds["valid"].attrs["long_name"] = "every hour of every variable present on that day"
    ds["weather"].encoding["chunks"] = chunks
    return mark_packed(ds, spec.variables) if packed else ds


def _open_or_create(spec, log):
    if os.path.exists(spec.path):
        existing = xr.open_zarr(spec.path, consolidated=False)
        identity = existing.attrs.get("identity", {})
        if identity != spec.identity():
            diff = sorted(k for k in set(identity) | set(spec.identity()) if identity.get(k) != spec.identity().get(k))
            raise DataError(
                f"{spec.path} was built for other settings ({', '.join(diff)} differ); "
                "use another data.work_dir or delete the store to rebuild it"
            )
        have = pd.DatetimeIndex(existing.date.values)
        if len(have) < len(spec.dates):
            extra = _skeleton(spec).isel(date=slice(len(have), None))
            extra.drop_vars([v for v in extra.data_vars if "date" not in extra[v].dims]).drop_vars(
                [c for c in extra.coords if "date" not in extra[c].dims and c not in extra.dims]).to_zarr(
                spec.path, append_dim="date", consolidated=False)
            log.info(f"era5.zarr extended to {spec.end.date()}")
        elif len(have) > len(spec.dates):
            raise DataError(f"{spec.path} runs to {have[-1].date()}, past data.end_date {spec.end.date()}; use another data.work_dir")
        return dict(existing.attrs)
    os.makedirs(os.path.dirname(spec.path) or ".", exist_ok=True)
    # created beside and renamed into place whole: a kill while it is written leaves no store
    # that a rerun could not open (only a temporary, cleaned once its process is gone).
    # zarr format 2: string coordinates (site names) have no stable format-3 encoding yet
    with atomic_directory(spec.path) as tmp:
        _skeleton(spec).to_zarr(tmp, compute=False, consolidated=False, mode="w", zarr_format=2)
    return {"identity": spec.identity(), "months": {}, "month_stats": {}}


def _consolidate(path):
    """Consolidated metadata, so ``xr.open_zarr(path)`` reads the store's layout in one request
    (written after every conversion: appended months change the date axis)."""
    import zarr

    zarr.consolidate_metadata(path)


def _write_attrs(path, attrs):
    import zarr

    group = zarr.open_group(path, mode="r+")
    group.attrs.update(attrs)


def convert_era5(cfg, progress=False, log=None):
    """Convert ``data.era5_raw_dir`` into ``<data.work_dir>/era5.zarr``; returns a report dict."""
    log = log or get_logger("ppeye.era5")
    spec = Spec(cfg)
    available = month_files(spec.raw_dir)
    attrs = _open_or_create(spec, log)
    packing = Packing.for_variables(spec.variables) if spec.packing == "int16" else None
    months_done, month_stats = dict(attrs.get("months", {})), dict(attrs.get("month_stats", {}))
    months = pd.period_range(spec.start, spec.end, freq="M")
    date_index = {d: i for i, d in enumerate(spec.dates)}
    units = attrs.get("units") or []
    hashes = dict(attrs.get("file_hashes", {}))
    converted, skipped, missing_months = [], [], []
    pending_months = []
    for period in months:
        key = f"{period.year:04d}-{period.month:02d}"
        files = available.get((period.year, period.month))
        nxt = period + 1
        next_files = available.get((nxt.year, nxt.month))
        if not files:
            missing_months.append(key)
            continue
        fingerprint = {"files": source_fingerprint(files, hashes), "next": source_fingerprint(next_files, hashes)}
        if months_done.get(key, {}).get("fingerprint") == fingerprint:
            skipped.append(key)
            continue
        pending_months.append((period, key, files, next_files, fingerprint))
    workers = max(1, int(cfg["data"]["convert_workers"]))
    bar = tqdm(total=len(pending_months), desc="ERA5 -> zarr", unit="month", disable=not progress)
    for first in range(0, len(pending_months), workers):
        batch = pending_months[first : first + workers]
        results = _convert_batch(batch, spec, workers)
        for (period, key, files, next_files, fingerprint), (weather, valid, land, units) in zip(batch, results):
            start_day = max(period.start_time.normalize(), spec.start)
            i0 = date_index[start_day]
            i1 = i0 + weather.shape[1]
            codes = packing.pack(weather, f"ERA5 {key}") if packing is not None else weather
            region = xr.Dataset({"weather": (("site", "date", "variable", "hour", "y", "x"), codes),
                                 "valid": (("site", "date"), valid)})
            region.to_zarr(spec.path, region={"site": slice(None), "date": slice(i0, i1)}, consolidated=False)
            stored = xr.open_zarr(spec.path, consolidated=False)["land"].values
            if months_done and not np.array_equal(stored, land):
                # ERA5-Land's land-sea mask is fixed: a cell without values in one month only is a gap
                # or a damaged file, not sea, and would mask that cell in every month
                s = int(np.nonzero((stored != land).any(axis=(1, 2)))[0][0])
                raise DataError(f"ERA5 {key}: the land cells of {spec.sites[s].name}'s box differ from the months "
                                f"converted before ({int((stored[s] & ~land[s]).sum())} cells without any value this "
                                f"month, {int((~stored[s] & land[s]).sum())} with values only now); check its files: "
                                f"{', '.join(os.path.relpath(f, spec.raw_dir) for f in files)}")
            land_now = stored & land
            xr.Dataset({"land": (("site", "y", "x"), land_now)}).to_zarr(
                spec.path, region={"site": slice(None), "y": slice(None), "x": slice(None)}, consolidated=False)
            month_stats[key] = _month_stats(weather, valid, spec, start_day)
            months_done[key] = {"fingerprint": fingerprint, "valid_days": int(valid.all(axis=0).sum())}
            _write_attrs(spec.path, {"months": months_done, "month_stats": month_stats, "units": units,
                                     "file_hashes": hashes})
            converted.append(key)
            bar.update(1)
        del results, batch
        _release_memory()
    bar.close()
    mean, std = _norm_stats(month_stats, spec)
    _write_attrs(spec.path, {"mean": mean, "std": std, "norm_period": [str(d.date()) for d in spec.norm_period],
                             "file_hashes": hashes,
                             "units": units, "variables": [v.short for v in spec.variables]})
    _consolidate(spec.path)
    report = _missing_report(spec)
    log.info(f"era5.zarr: {len(converted)} months converted, {len(skipped)} unchanged, "
             f"{len(missing_months)} without files; {report['missing_site_days']} site-days missing "
             f"(listed in {report['missing_days_csv']})")
    return {"converted": converted, "skipped": skipped, "months_without_files": missing_months, **report,
            "path": spec.path, "mean": mean, "std": std}


def _convert_batch(batch, spec, workers):
    """Convert a few months at once with dask; results come back in the batch's order.

    Locally the months run in ``workers`` threads; their file reads take turns (HDF5 is not
    thread-safe, see reader.READ_LOCK), the rest overlaps. Measured on the demo with 2
    workers: 6.4 s vs 7.1 s, the same store; dask's process scheduler took 14.8 s (start-up
    and sending a month of arrays back). With ``data.dask_scheduler`` set the months run on
    the dask.distributed client that tools/preprocess.py connected, whose worker processes
    read in parallel. Only
    the client writes to the store: month boundaries do not match the store's chunks,
    so two workers writing regions could overwrite each other's days.
    """
    if not spec.dask_scheduler and (workers == 1 or len(batch) == 1):
        return [convert_month(p.year, p.month, files, nxt, spec) for p, _, files, nxt, _ in batch]
    import dask

    tasks = [dask.delayed(convert_month)(p.year, p.month, files, nxt, spec) for p, _, files, nxt, _ in batch]
    if spec.dask_scheduler:  # the dask.distributed client that tools/preprocess.py connected
        return dask.compute(*tasks)
    return dask.compute(*tasks, scheduler="threads", num_workers=workers)


def _release_memory():
    """Hand the month's freed arrays back to the system (glibc keeps them otherwise).

    Measured on 13 months of 50 variables: resident memory between months stays at
    320-395 MB with this, and creeps from 490 to 740 MB without it.
    """
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        pass


def _month_stats(weather, valid, spec, first):
    days = pd.date_range(first, periods=weather.shape[1], freq="D")
    in_period = (days >= spec.norm_period[0]) & (days <= spec.norm_period[1])
    use = valid & in_period[None, :]
    sel = weather[use]  # [k, C, D, H, W]
    if sel.size == 0:
        return {"count": 0, "sum": [0.0] * weather.shape[2], "sumsq": [0.0] * weather.shape[2]}
    flat = sel.transpose(1, 0, 2, 3, 4).reshape(sel.shape[1], -1).astype(np.float64)
    return {"count": int(flat.shape[1]), "sum": flat.sum(1).tolist(), "sumsq": (flat**2).sum(1).tolist()}


def _norm_stats(month_stats, spec):
    C = len(spec.variables)
    count, total, sq = 0, np.zeros(C), np.zeros(C)
    for stats in month_stats.values():
        count += stats["count"]
        total += np.asarray(stats["sum"])
        sq += np.asarray(stats["sumsq"])
    if count == 0:
        return [], []
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean**2, 0.0))
    return mean.tolist(), np.where(std > 0, std, 1.0).tolist()


def _missing_report(spec):
    ds = xr.open_zarr(spec.path, consolidated=False)
    valid = ds["valid"].values
    path = os.path.join(os.path.dirname(spec.path), "era5_missing_days.csv")
    rows = [(str(ds.site_name.values[s]), str(pd.Timestamp(ds.date.values[d]).date()))
            for s, d in zip(*np.nonzero(~valid))]
    with atomic_write(path, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["site", "date"])
        writer.writerows(rows)
    return {"missing_site_days": len(rows), "missing_days_csv": path,
            "checked_at": dt.datetime.now().isoformat(timespec="seconds")}
