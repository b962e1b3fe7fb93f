"""Reading every raw ERA5 layout (real files from ../shared/data) and de-accumulating."""
import zipfile

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from conftest import shared
from ppeye.core.errors import DataError
from ppeye.data.era5.reader import deaccumulate, normalise, open_raw, step_type


def check_normalised(ds):
    assert list(ds.dims) == ["time", "latitude", "longitude"] or set(ds.dims) == {"time", "latitude", "longitude"}
    assert set(ds.coords) == {"time", "latitude", "longitude"}
    assert np.all(np.diff(ds.latitude.values) < 0) and np.all(np.diff(ds.longitude.values) > 0)
    assert all(ds[v].dtype == np.float32 for v in ds.data_vars)


def test_grib_from_the_cds():
    ds = open_raw(shared("era5", "era5-2mt-2019-03-uk.grib"))
    check_normalised(ds)
    assert list(ds.data_vars) == ["t2m"] and ds.sizes["time"] == 744
    assert ds.time.values[0] == np.datetime64("2019-03-01T00:00") and 260 < float(ds.t2m.mean()) < 290


def test_current_cds_netcdf_with_valid_time_number_expver():
    ds = open_raw(shared("era5", "cds_netcdf", "week_stepType-instant.nc"))
    check_normalised(ds)
    assert set(ds.data_vars) == {"d2m", "u10", "v10", "sp"} and ds.sizes["time"] == 168
    assert step_type(ds, "sp") == "instant"


def test_zipped_step_types_merge_into_one_dataset(tmp_path):
    path = tmp_path / "request.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for part in ("instant", "accum"):
            zf.write(shared("era5", "cds_netcdf", f"week_stepType-{part}.nc"), f"data_stream-oper_stepType-{part}.nc")
    ds = open_raw(path)
    assert set(ds.data_vars) == {"d2m", "u10", "v10", "sp", "tp"}
    assert step_type(ds, "tp") == "accum"


def test_era5_land_netcdf_keeps_sea_as_nan():
    ds = open_raw(shared("era5", "era5land_se_coast_64x64_20220101.nc"))
    check_normalised(ds)
    assert 0.3 < float(np.isnan(ds.t2m.isel(time=0)).mean()) < 0.6


def test_old_layout_int16_packed_with_time_dimension(tmp_path):
    real = xr.open_dataset(shared("era5", "era5land_sp_land_32x32_20220101.nc")).load()
    lo, hi = float(real.t2m.min()), float(real.t2m.max())
    scale = (hi - lo) / 65000
    path = tmp_path / "old.nc"
    real[["t2m"]].to_netcdf(path, format="NETCDF3_64BIT", encoding={
        "t2m": {"dtype": "int16", "scale_factor": scale, "add_offset": (hi + lo) / 2, "_FillValue": -32767}})
    ds = open_raw(path)
    np.testing.assert_allclose(ds.t2m.values, real.t2m.values, atol=scale)


def test_old_layout_expver_dimension_keeps_the_first_valid_version():
    time = pd.date_range("2023-01-01", periods=3, freq="h")
    era5 = np.array([1.0, 2.0, np.nan])[:, None, None]
    era5t = np.array([np.nan, 20.0, 3.0])[:, None, None]
    ds = xr.Dataset({"t2m": (("time", "expver", "latitude", "longitude"), np.stack([era5, era5t], 1))},
                    coords={"time": time, "expver": [1, 5], "latitude": [50.0], "longitude": [0.0]})
    np.testing.assert_array_equal(normalise(ds).t2m.values.ravel(), [1.0, 2.0, 3.0])


def test_grib_forecast_layout_is_laid_out_by_valid_time():
    time = pd.to_datetime(["2023-01-01T00", "2023-01-01T12"])
    step = pd.to_timedelta([1, 2, 3], unit="h")
    values = np.arange(6, dtype=np.float32).reshape(2, 3, 1, 1)
    ds = xr.Dataset({"tp": (("time", "step", "latitude", "longitude"), values)},
                    coords={"time": time, "step": step, "latitude": [50.0], "longitude": [359.9]})
    out = normalise(ds)
    assert list(out.time.values.astype("datetime64[h]").astype(str)) == [
        "2023-01-01T01", "2023-01-01T02", "2023-01-01T03", "2023-01-01T13", "2023-01-01T14", "2023-01-01T15"]
    assert out.longitude.values[0] == pytest.approx(-0.1)  # 0..360 longitudes wrapped to -180..180


@pytest.mark.parametrize("damage", ["truncate", "empty", "text"])
def test_damaged_files_name_the_file(tmp_path, damage):
    src = open(shared("era5", "cds_netcdf", "week_stepType-accum.nc"), "rb").read()
    path = tmp_path / "bad.nc"
    path.write_bytes({"truncate": src[: len(src) // 2], "empty": b"", "text": b"<html>quota exceeded</html>"}[damage])
    with pytest.raises(DataError, match="bad.nc"):
        open_raw(path)


def test_damaged_zip_member_is_named(tmp_path):
    src = open(shared("era5", "cds_netcdf", "week_stepType-accum.nc"), "rb").read()
    path = tmp_path / "req.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data_stream-oper_stepType-accum.nc", src[:4000])
    with pytest.raises(DataError, match=r"req\.zip!data_stream-oper_stepType-accum\.nc"):
        open_raw(path)


def test_deaccumulation_of_real_era5_land():
    ds = open_raw(shared("era5", "era5land_sp_land_32x32_20220101.nc"))
    hourly = deaccumulate(ds.tp, sign=1, label="real")
    assert np.isnan(hourly.values[0]).all()  # 00 UTC needs the previous file's 23 UTC value
    amounts = hourly.values[1:]
    assert np.nanmin(amounts) >= 0
    # the amounts of hours ending 01..23 add up to the 23 UTC accumulation
    np.testing.assert_allclose(np.nansum(amounts, 0), np.nan_to_num(ds.tp.values[23]), rtol=1e-4, atol=1e-7)
    assert float(np.nanmean(ds.ssrd.values[3])) == 0.0  # 03 UTC is midnight at 50 W: no sunshine yet


def test_deaccumulation_continues_across_files():
    times = pd.date_range("2023-01-31T22", periods=4, freq="h")  # 22, 23, 00, 01
    acc = xr.DataArray(np.array([5.0, 6.0, 7.5, 0.4], np.float32)[:, None, None], dims=("time", "latitude", "longitude"),
                       coords={"time": times, "latitude": [50.0], "longitude": [0.0]}, name="tp")
    out = deaccumulate(acc.isel(time=slice(2, 4)), previous=acc.values[1], sign=1)
    np.testing.assert_allclose(out.values.ravel(), [1.5, 0.4])


def test_hourly_era5_is_refused_as_accumulation():
    ds = open_raw(shared("era5", "cds_netcdf", "week_stepType-accum.nc"))  # ERA5: already hourly
    with pytest.raises(DataError, match="era5_product"):
        deaccumulate(ds.tp, sign=1, label="week")


def test_gaps_in_time_are_named():
    times = pd.to_datetime(["2023-01-01T01", "2023-01-01T02", "2023-01-01T05"])
    acc = xr.DataArray(np.zeros((3, 1, 1), np.float32), dims=("time", "latitude", "longitude"),
                       coords={"time": times, "latitude": [50.0], "longitude": [0.0]}, name="tp")
    with pytest.raises(DataError, match="not hourly around.*2023-01-01T05"):
        deaccumulate(acc, label="x")
