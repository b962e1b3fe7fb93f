"""Writing the synthetic weather as the CDS delivers ERA5-Land: one zip per month and group of
variables, holding a NetCDF file per step type, and the download manifest."""
import datetime as dt
import json
import os
import tempfile
import zipfile

import numpy as np
import pandas as pd
import xarray as xr

from ..era5.variables import plan_groups

ZIP_MEMBER = "data_stream-oper_stepType-{}.nc"


def month_list(start, end):
    months = pd.period_range(pd.Timestamp(start), pd.Timestamp(end), freq="M")
    return [(p.year, p.month) for p in months]


def _dataset(variables, days, fields, lats, lons, step_type):
    times = pd.DatetimeIndex([d + pd.Timedelta(hours=h) for d in days for h in range(24)])
    data_vars = {}
    for v in variables:
        arr = fields[v.short].reshape(len(times), len(lats), len(lons))
        attrs = {
            "GRIB_paramId": v.param_id,
            "GRIB_dataType": "fc" if v.accumulated else "an",
            "GRIB_stepType": step_type,
            "GRIB_gridType": "regular_ll",
            "GRIB_name": v.long_name,
            "GRIB_shortName": v.short,
            "GRIB_units": v.units,
            "GRIB_cfVarName": v.short,
            "long_name": v.long_name,
            "units": v.units,
            "standard_name": "unknown",
        }
        data_vars[v.short] = (("valid_time", "latitude", "longitude"), arr, attrs)
    ds = xr.Dataset(
        data_vars,
        coords={
            "number": 0,
            "valid_time": times,
            "latitude": ("latitude", lats, {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude"}),
            "longitude": ("longitude", lons, {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude"}),
            "expver": ("valid_time", np.full(len(times), "0001")),
        },
        attrs={
            "GRIB_centre": "ecmf",
            "GRIB_centreDescription": "European Centre for Medium-Range Weather Forecasts",
            "GRIB_subCentre": 0,
            "Conventions": "CF-1.7",
            "institution": "European Centre for Medium-Range Weather Forecasts",
            "history": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M} synthetic ERA5-Land-like data "
            "written by ppeye.data.synthetic (not Copernicus data)",
        },
    )
    ds["valid_time"].encoding.update(units="seconds since 1970-01-01", calendar="proleptic_gregorian", dtype="int64")
    return ds


def _write_netcdf(ds, path):
    encoding = {
        name: {"zlib": True, "complevel": 1, "shuffle": True, "dtype": "float32", "_FillValue": np.float32(np.nan)}
        for name in ds.data_vars
    }
    ds.to_netcdf(path, engine="netcdf4", format="NETCDF4", encoding=encoding)


def write_month(out_dir, year, month, days, fields, variables, geometry, group_size):
    """Write one month's files; returns manifest lines (one per file)."""
    folder = os.path.join(out_dir, f"{year:04d}", f"{month:02d}")
    os.makedirs(folder, exist_ok=True)
    lines = []
    for group, members in plan_groups(variables, group_size).items():
        by_step = {}
        for v in members:
            by_step.setdefault(v.step_type, []).append(v)
        datasets = {st: _dataset(vs, days, fields, geometry.lats, geometry.lons, st) for st, vs in by_step.items()}
        if len(datasets) == 1:
            name = f"{group}.nc"
            _write_netcdf(next(iter(datasets.values())), os.path.join(folder, name))
        else:
            name = f"{group}.zip"
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                with zipfile.ZipFile(os.path.join(folder, name), "w", zipfile.ZIP_STORED) as zf:
                    for st, ds in datasets.items():
                        member = os.path.join(tmp, ZIP_MEMBER.format(st))
                        _write_netcdf(ds, member)
                        zf.write(member, ZIP_MEMBER.format(st))
        lines.append(
            {
                "file": f"{year:04d}/{month:02d}/{name}",
                "dataset": "reanalysis-era5-land",
                "variables": [v.name for v in members],
                "year": year,
                "month": month,
                "days": [d.day for d in days],
                "area": geometry.grid.area,
                "state": "done",
            }
        )
    return lines


def write_manifest(out_dir, lines):
    with open(os.path.join(out_dir, "manifest.jsonl"), "w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
