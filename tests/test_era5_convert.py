"""Raw ERA5 -> era5.zarr: values, land/sea, missing days, incremental runs, bad input."""
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import ppeye
from conftest import DEMO, TINY, shared
from ppeye.core.errors import DataError
from ppeye.data.era5.convert import convert_era5
from ppeye.data.era5.reader import open_raw

STORE = ["data.hours=8", "data.norm_period=[2019-01-01, 2019-03-31]"]


def convert(raw_dir, work, extra=(), **kw):
    cfg = ppeye.load_config(DEMO, TINY + STORE + [f"data.era5_raw_dir={raw_dir}", f"data.work_dir={work}", *extra])
    return convert_era5(cfg, **kw), os.path.join(work, "era5.zarr")


def open_store(path):
    return xr.open_zarr(path, consolidated=False).load()


@pytest.fixture(scope="module")
def converted(tiny, tmp_path_factory):
    out, gt = tiny
    work = str(tmp_path_factory.mktemp("work"))
    report, path = convert(os.path.join(out, "era5"), work)
    return out, report, open_store(path)


def test_store_layout(converted):
    _, report, st = converted
    assert dict(st.weather.sizes) == {"site": 2, "date": 181, "variable": 4, "hour": 8, "y": 8, "x": 8}
    assert list(st.variable.values) == ["t2m", "tp", "ssrd", "d2m"] and list(st.hour.values) == [0, 3, 6, 9, 12, 15, 18, 21]
    assert list(st.site_name.values) == ["Liverpool", "Manchester"]
    assert st.attrs["units"] == ["degC", "mm h**-1", "W m**-2", "degC"]
    assert st.weather.encoding["chunks"] == (1, 8, 4, 8, 8, 8)
    assert report["converted"] == ["2019-01", "2019-02", "2019-03", "2019-04", "2019-05", "2019-06"]


def test_values_match_the_raw_files(converted):
    out, _, st = converted
    raw = open_raw(os.path.join(out, "era5", "2019", "02", "g00.zip"))
    nxt = open_raw(os.path.join(out, "era5", "2019", "03", "g00.zip"))
    lat, lon = float(st.lat.values[1, 3]), float(st.lon.values[1, 3])  # Manchester, the site cell
    here = dict(latitude=lat, longitude=lon)
    day = st.sel(site=11001, date="2019-02-28")
    # instantaneous: sampled at 00, 03, ... UTC, K -> degC
    t2m = raw.t2m.sel(time=slice("2019-02-28T00", "2019-02-28T23"), **here).values[::3] - 273.15
    np.testing.assert_allclose(day.weather.sel(variable="t2m").values[:, 3, 3], t2m, atol=1e-4)
    # accumulated: hourly amounts (the last one closed by March's 00 UTC), 3-hour means, m -> mm/h
    acc = np.concatenate([raw.tp.sel(time=slice("2019-02-28T01", "2019-02-28T23"), **here).values,
                          nxt.tp.sel(time=["2019-03-01T00"], **here).values])
    amounts = np.diff(np.concatenate([[0.0], acc]))
    np.testing.assert_allclose(day.weather.sel(variable="tp").values[:, 3, 3], amounts.reshape(8, 3).mean(1) * 1000,
                               rtol=1e-4, atol=1e-6)
    assert bool(day.valid)


def test_sea_cells_are_masked_and_filled_from_land(converted):
    _, _, st = converted
    liverpool, manchester = st.land.values
    assert manchester.all() and not liverpool.all() and liverpool[3, 3]
    cube = st.weather.sel(site=11016, date="2019-02-10").values  # [C, D, H, W]
    assert not np.isnan(cube).any()
    ys, xs = np.nonzero(~liverpool)
    land_ys, land_xs = np.nonzero(liverpool)
    y, x = ys[0], xs[0]
    nearest = np.argmin((land_ys - y) ** 2 + (land_xs - x) ** 2)
    np.testing.assert_array_equal(cube[..., y, x], cube[..., land_ys[nearest], land_xs[nearest]])


def test_the_last_day_waits_for_the_next_month_and_is_reported(converted):
    _, report, st = converted
    assert not st.valid.sel(date="2019-06-30").any() and st.valid.sel(date="2019-06-29").all()
    last = st.weather.sel(date="2019-06-30", variable="tp").values  # [site, hour, y, x]
    assert np.isnan(last[:, -1]).all() and not np.isnan(last[:, 0]).any()  # the open block is NaN, never zero
    listed = pd.read_csv(report["missing_days_csv"])
    assert sorted(listed.site) == ["Liverpool", "Manchester"] and set(listed.date) == {"2019-06-30"}


def test_normalisation_uses_the_norm_period_only(converted):
    _, report, st = converted
    period = st.weather.sel(date=slice("2019-01-01", "2019-03-31"))
    ok = st.valid.sel(date=slice("2019-01-01", "2019-03-31")).values
    values = period.values[ok]  # [k, C, D, H, W]
    np.testing.assert_allclose(st.attrs["mean"], values.mean(axis=(0, 2, 3, 4)), rtol=1e-5)
    np.testing.assert_allclose(st.attrs["std"], values.std(axis=(0, 2, 3, 4)), rtol=1e-4)
    summer = st.weather.sel(date="2019-06", variable="t2m").mean().item()
    assert summer > st.attrs["mean"][0] + 2  # the winter statistics did not see June


def test_reruns_are_incremental(tiny, tmp_path):
    out, _ = tiny
    raw = tmp_path / "era5"
    shutil.copytree(os.path.join(out, "era5"), raw, ignore=shutil.ignore_patterns("2019-06*"))
    shutil.rmtree(raw / "2019" / "06")
    first, path = convert(str(raw), str(tmp_path / "w"), ["data.end_date=2019-06-30"])
    assert first["months_without_files"] == ["2019-06"]
    assert not open_store(path).valid.sel(date="2019-05-31").any()  # June's 00 UTC is not there yet
    again, _ = convert(str(raw), str(tmp_path / "w"), ["data.end_date=2019-06-30"])
    assert again["converted"] == [] and len(again["skipped"]) == 5
    shutil.copytree(os.path.join(out, "era5", "2019", "06"), raw / "2019" / "06")
    third, _ = convert(str(raw), str(tmp_path / "w"), ["data.end_date=2019-06-30"])
    assert third["converted"] == ["2019-05", "2019-06"]  # May's last day can now be closed
    assert open_store(path).valid.sel(date="2019-05-31").all()


def test_a_later_end_date_extends_the_store(tiny, tmp_path):
    out, _ = tiny
    raw = os.path.join(out, "era5")
    convert(raw, str(tmp_path / "w"), ["data.end_date=2019-02-28"])
    report, path = convert(raw, str(tmp_path / "w"), ["data.end_date=2019-04-30"])
    st = open_store(path)
    assert report["converted"] == ["2019-03", "2019-04"] and st.sizes["date"] == 120
    assert st.valid.sel(date="2019-02-28").all() and st.valid.sel(date="2019-04-29").all()


def test_a_store_for_other_settings_is_refused(converted, tiny, tmp_path):
    out, _ = tiny
    convert(os.path.join(out, "era5"), str(tmp_path / "w"), ["data.end_date=2019-01-31"])
    with pytest.raises(DataError, match="variables differ"):
        convert(os.path.join(out, "era5"), str(tmp_path / "w"), ["data.end_date=2019-01-31", "data.variables=[t2m, tp]"])


def test_a_corrupt_file_stops_with_its_name_and_keeps_the_store(tiny, tmp_path):
    out, _ = tiny
    raw = tmp_path / "era5"
    shutil.copytree(os.path.join(out, "era5"), raw)
    _, path = convert(str(raw), str(tmp_path / "w"), ["data.end_date=2019-02-28"])
    before = open_store(path)
    bad = raw / "2019" / "03" / "g01.nc"
    bad.write_bytes(bad.read_bytes()[:3000])
    with pytest.raises(DataError, match=r"2019/03/g01\.nc"):
        convert(str(raw), str(tmp_path / "w"), ["data.end_date=2019-03-31"])
    after = open_store(path)
    np.testing.assert_array_equal(after.weather.sel(date="2019-02").values, before.weather.sel(date="2019-02").values)


def test_missing_variables_and_uncovered_sites_are_named(tiny, tmp_path):
    out, _ = tiny
    raw = os.path.join(out, "era5")
    with pytest.raises(DataError, match=r"variables \['sp'\] are in none of"):
        convert(raw, str(tmp_path / "a"), ["data.variables=[t2m, tp, ssrd, d2m, sp]"])
    with pytest.raises(DataError, match="does not cover the 8x8 box of Glasgow"):
        convert(raw, str(tmp_path / "b"), ["data.sites=[Liverpool, Glasgow]"])


def test_real_era5_grib_at_a_quarter_degree_is_regridded(tmp_path):
    raw = tmp_path / "era5" / "2019" / "03"
    raw.mkdir(parents=True)
    os.symlink(shared("era5", "era5-2mt-2019-03-uk.grib"), raw / "g00.grib")
    report, path = convert(str(tmp_path / "era5"), str(tmp_path / "w"), [
        "data.sites=[Manchester, Bristol]", "data.variables=[t2m]", "data.start_date=2019-03-01",
        "data.end_date=2019-03-31", "data.hours=24", "data.era5_product=era5",
        "data.norm_period=[2019-03-01, 2019-03-31]"])
    st = open_store(path)
    assert st.valid.values.all() and st.land.values.all()  # ERA5 has values over the sea
    src = open_raw(shared("era5", "era5-2mt-2019-03-uk.grib")).t2m
    lat, lon = float(st.lat.values[0, 2]), float(st.lon.values[0, 5])
    expected = src.sel(time="2019-03-15T12").interp(latitude=lat, longitude=lon).item() - 273.15
    assert st.weather.sel(site=11001, date="2019-03-15", variable="t2m", hour=12).values[2, 5] == pytest.approx(expected, abs=1e-3)
    assert 0 < st.attrs["mean"][0] < 12  # a British March in degC


def test_a_file_with_missing_hours_marks_those_days_missing(tiny, tmp_path):
    out, _ = tiny
    raw = tmp_path / "era5"
    shutil.copytree(os.path.join(out, "era5"), raw)
    path = raw / "2019" / "02" / "g01.nc"  # d2m for February
    ds = open_raw(path)
    ds.isel(time=[i for i in range(ds.sizes["time"]) if not (216 <= i < 221)]).to_netcdf(path)  # 10 Feb 00-04 UTC
    report, store = convert(str(raw), str(tmp_path / "w"), ["data.end_date=2019-03-31"])
    st = open_store(store)
    assert not st.valid.sel(date="2019-02-10").any() and st.valid.sel(date="2019-02-11").all()
    assert "2019-02-10" in set(pd.read_csv(report["missing_days_csv"]).date)


def test_converting_months_in_parallel_gives_the_same_store(tiny, tmp_path):
    out, _ = tiny
    raw = os.path.join(out, "era5")
    _, one = convert(raw, str(tmp_path / "one"), ["data.end_date=2019-03-31"])
    _, two = convert(raw, str(tmp_path / "two"), ["data.end_date=2019-03-31", "data.convert_workers=3"])
    a, b = open_store(one), open_store(two)
    np.testing.assert_array_equal(a.weather.values, b.weather.values)
    np.testing.assert_array_equal(a.valid.values, b.valid.values)
    assert a.attrs["mean"] == b.attrs["mean"] and a.attrs["months"].keys() == b.attrs["months"].keys()


@pytest.mark.parametrize("change, message", [
    ("degC", "d2m: units 'degC' in the file, expected ERA5-Land's 'K'"),
    ("no_units", "d2m: the file gives no units; ppeye expects ERA5-Land's 'K'"),
    ("inf", "d2m: 1 values are infinite"),
    ("centikelvin", "d2m: .* values outside the plausible range 170.0..345.0 K"),
    ("sea_in_february", "the land cells of .* box differ from the months converted before"),
])
def test_units_values_and_the_land_mask_are_checked_and_name_the_file_and_variable(tiny, tmp_path, change, message):
    out, _ = tiny
    raw = tmp_path / "era5"
    shutil.copytree(os.path.join(out, "era5"), raw)
    path = raw / "2019" / "02" / "g01.nc"  # d2m for February
    ds = open_raw(path).load()
    d2m = ds["d2m"]
    if change == "degC":
        ds["d2m"] = (d2m - 273.15).assign_attrs(units="degC")
    elif change == "no_units":
        unitless = d2m.copy()
        del unitless.attrs["units"]
        ds["d2m"] = unitless
    elif change == "inf":
        values = d2m.values.copy()
        values[6, 3, 3] = np.inf                  # 06 UTC: an hour the store keeps
        ds["d2m"] = d2m.copy(data=values)
    elif change == "centikelvin":
        ds["d2m"] = (d2m * 100).assign_attrs(d2m.attrs)
    else:                                          # two rows without any value in this month only
        values = d2m.values.copy()
        values[:, 6:8, :] = np.nan
        ds["d2m"] = d2m.copy(data=values)
    ds.to_netcdf(path)
    with pytest.raises(DataError, match=message):
        convert(str(raw), str(tmp_path / "w"), ["data.end_date=2019-03-31", "data.convert_workers=1"])


def test_the_month_fingerprint_is_the_content_not_the_size_and_time(tiny, tmp_path):
    from ppeye.data.era5.reader import source_fingerprint as _fingerprint

    f = tmp_path / "a.nc"
    f.write_bytes(b"0123456789")
    st = os.stat(f)
    hashes = {}
    before = _fingerprint([str(f)], hashes)
    f.write_bytes(b"9876543210")                                  # same size ...
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))              # ... and the same modification time
    assert _fingerprint([str(f)], hashes) != before
    # a file touched but unchanged: its month is not converted again
    out, _ = tiny
    raw = tmp_path / "era5"
    shutil.copytree(os.path.join(out, "era5"), raw)
    convert(str(raw), str(tmp_path / "w"), ["data.end_date=2019-03-31"])
    os.utime(raw / "2019" / "02" / "g01.nc")
    again, _ = convert(str(raw), str(tmp_path / "w"), ["data.end_date=2019-03-31"])
    assert again["converted"] == []


def test_a_file_in_the_wrong_month_folder_is_named(tiny, tmp_path):
    out, _ = tiny
    raw = tmp_path / "era5"
    shutil.copytree(os.path.join(out, "era5"), raw)
    shutil.copyfile(raw / "2019" / "01" / "g01.nc", raw / "2019" / "02" / "g01.nc")   # January's d2m in February
    with pytest.raises(DataError, match="2019/02/g01.nc: 744 of its 744 time steps .* are outside 2019-02"):
        convert(str(raw), str(tmp_path / "w"), ["data.end_date=2019-03-31"])


def test_a_kill_while_the_store_is_first_created_leaves_none_and_a_rerun_builds_it(tiny, tmp_path, monkeypatch):
    from ppeye.data.era5 import convert as C

    out, _ = tiny
    real = C._skeleton

    class Interrupted:
        def __init__(self, spec):
            self.ds = real(spec)

        def to_zarr(self, path, **kw):
            self.ds.isel(date=slice(0, 1)).to_zarr(path, **kw)     # part of it is on disk ...
            raise KeyboardInterrupt                                # ... when the process is stopped

    monkeypatch.setattr(C, "_skeleton", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert(os.path.join(out, "era5"), str(tmp_path / "w"), ["data.end_date=2019-02-28"])
    assert not os.path.exists(tmp_path / "w" / "era5.zarr")
    monkeypatch.setattr(C, "_skeleton", real)
    report, path = convert(os.path.join(out, "era5"), str(tmp_path / "w"), ["data.end_date=2019-02-28"])
    assert report["converted"] == ["2019-01", "2019-02"] and open_store(path).sizes["date"] == 59


def test_the_store_opens_in_xarray_as_cf_style_data(tiny_work):
    """Consolidated metadata (no warning), lat / lon as coordinates, units and long names per
    variable, and ``ppeye.data.store.open_dataset`` with one variable per ERA5 variable."""
    import warnings

    import xarray as xr

    from ppeye.data.store import open_dataset

    path = os.path.join(next(o for o in tiny_work if o.startswith("data.work_dir=")).split("=", 1)[1], "era5.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(path)
    assert {"lat", "lon", "variable_units", "variable_long_name"} <= set(ds.coords)
    assert ds["lat"].attrs["units"] == "degrees_north" and ds["lon"].attrs["standard_name"] == "longitude"
    assert list(ds["variable_units"].values) == ["degC", "mm h**-1", "W m**-2", "degC"]
    day = ds.weather.sel(site=int(ds.site.values[0]), date="2019-03-01")
    assert day.shape == (4, 8, 8, 8) and day.dims == ("variable", "hour", "y", "x")
    cf = open_dataset(path)
    assert cf["t2m"].attrs["units"] == "degC" and "temperature" in cf["t2m"].attrs["long_name"]
    assert cf["t2m"].dims == ("site", "date", "hour", "y", "x") and "lat" in cf["t2m"].coords
    np.testing.assert_array_equal(cf["ssrd"].isel(site=0, date=59).values, day.sel(variable="ssrd").values)
