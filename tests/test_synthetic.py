"""The built-in synthetic data: real raw formats, and planted signals that are really there."""
import glob
import json
import os
import re
import zipfile

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import ppeye
from ppeye.core.errors import ConfigError
from ppeye.data.era5.grid import site_box
from ppeye.data.synthetic import make_synthetic
from ppeye.data.synthetic.signals import auc, solve_intercept, window_sums
from ppeye.data.ukb import fields as F
from ppeye.data.ukb.centres import get_centre

from conftest import DEMO, SMALL, shared, tiny_cfg


def open_raw(path):
    """One raw file as the CDS delivers it (a zip of per-stepType NetCDF files, or one .nc)."""
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            parts = [xr.open_dataset(xr.backends.NetCDF4DataStore(netCDF4.Dataset(n, memory=zf.read(n)))).load()
                     for n in zf.namelist()]
        return xr.merge(parts)
    with xr.open_dataset(path) as ds:
        return ds.load()


@pytest.fixture(scope="session")
def tiny_era5(tiny):
    out, _ = tiny
    files = sorted(glob.glob(os.path.join(out, "era5", "*", "*", "g0*.*")))
    months = {}
    for f in files:
        months.setdefault(os.path.dirname(f), []).append(open_raw(f))
    return xr.concat([xr.merge(parts) for _, parts in sorted(months.items())], dim="valid_time")


# ------------------------------------------------------------------------------ ERA5 files


def test_files_follow_the_cds_layout(tiny):
    out, gt = tiny
    assert sorted(os.listdir(os.path.join(out, "era5", "2019"))) == ["01", "02", "03", "04", "05", "06"]
    # g00 mixes instant (t2m) and accumulated (tp, ssrd) variables: a zip of two files, as the CDS sends
    with zipfile.ZipFile(os.path.join(out, "era5", "2019", "01", "g00.zip")) as zf:
        assert sorted(zf.namelist()) == ["data_stream-oper_stepType-accum.nc", "data_stream-oper_stepType-instant.nc"]
    assert os.path.exists(os.path.join(out, "era5", "2019", "01", "g01.nc"))  # d2m alone: one NetCDF
    lines = [json.loads(x) for x in open(os.path.join(out, "era5", "manifest.jsonl"))]
    assert len(lines) == 12 and lines[0]["variables"] == ["2m_temperature", "total_precipitation",
                                                          "surface_solar_radiation_downwards"]


def test_netcdf_matches_a_real_cds_file(tiny):
    out, _ = tiny
    real = xr.open_dataset(shared("era5", "cds_netcdf", "week_stepType-accum.nc"))
    ours = open_raw(os.path.join(out, "era5", "2019", "02", "g00.zip"))
    assert set(ours.dims) == set(real.dims) == {"valid_time", "latitude", "longitude"}
    assert set(real.coords) <= set(ours.coords)  # number, expver, valid_time, latitude, longitude
    assert set(ours.attrs) == set(real.attrs)
    assert set(ours.tp.attrs) <= set(real.tp.attrs)
    assert ours.tp.dtype == np.float32 and ours.expver.values[0] == "0001"
    lat = ours.latitude.values
    assert np.all(np.diff(lat) < 0) and np.allclose(np.diff(lat), -0.1)  # north to south, 0.1 degrees
    assert ours.valid_time.values[0] == np.datetime64("2019-02-01T00:00")
    assert len(ours.valid_time) == 28 * 24


def test_accumulations_restart_at_00_and_continue_across_files(tiny_era5):
    tp = tiny_era5.tp.values.astype(np.float64)  # [hours, y, x], hourly since 2019-01-01 00 UTC
    land = ~np.isnan(tp[0])
    by_day = tp.reshape(-1, 24, *tp.shape[1:])
    within = np.diff(by_day[:, 1:], axis=1)  # 01..23 UTC never decreases
    assert np.min(within[:, :, land]) >= -1e-7
    # 00 UTC of day d+1 = day d's total = its 23 UTC value plus the last hour's amount (also across months)
    last_hour = by_day[1:, 0] - by_day[:-1, 23]
    assert np.min(last_hour[:, land]) >= -1e-7
    jan31, feb01 = 30, 31
    assert by_day[feb01, 0][land].sum() >= by_day[jan31, 23][land].sum()


def test_solar_radiation_is_zero_at_night_and_peaks_in_summer(tiny_era5):
    ssrd = tiny_era5.ssrd
    night = ssrd.sel(valid_time=ssrd.valid_time.dt.hour == 3)  # accumulated since 00 UTC: still dark
    assert float(np.nanmax(night.values)) == 0.0
    daily_total = ssrd.sel(valid_time=ssrd.valid_time.dt.hour == 0)
    jan = float(daily_total.sel(valid_time="2019-01").mean())
    jun = float(daily_total.sel(valid_time="2019-06").mean())
    assert 1e6 < jan < jun < 3e7  # J m-2 per day, UK-like magnitudes


def test_temperatures_are_plausible(tiny_era5):
    t2m, d2m = tiny_era5.t2m.values, tiny_era5.d2m.values
    assert 250 < np.nanmin(t2m) and np.nanmax(t2m) < 310
    assert np.nanmax(d2m - t2m) <= 0  # dew point never above air temperature
    jan = float(tiny_era5.t2m.sel(valid_time="2019-01").mean())
    jun = float(tiny_era5.t2m.sel(valid_time="2019-06").mean())
    assert jun - jan > 6  # a seasonal cycle
    hourly = tiny_era5.t2m.sel(valid_time="2019-06").groupby("valid_time.hour").mean(...)
    assert int(np.argmax(hourly.values)) in range(12, 17)  # warmest in the afternoon


def test_sea_cells_are_nan_for_a_coastal_site_only(tiny_era5, tmp_path):
    t2m = tiny_era5.t2m.isel(valid_time=0)
    liverpool = get_centre("Liverpool")
    box = site_box(liverpool.lat, liverpool.lon, (8, 8))
    cells = t2m.sel(latitude=box.lats, longitude=box.lons, method="nearest").values
    assert np.isnan(cells).any() and not np.isnan(cells[3, 3])  # sea to the west, the site on land
    gt = make_synthetic(ppeye.load_config(DEMO, SMALL + ["data.sites=[Manchester]"]), str(tmp_path / "inland"))
    assert gt["grid"]["land_share"] == 1.0


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    cfg = ppeye.load_config(DEMO, SMALL)
    a, b = make_synthetic(cfg, str(tmp_path / "a")), make_synthetic(cfg, str(tmp_path / "b"))
    assert a["oracle_auc"] == b["oracle_auc"]
    assert (tmp_path / "a" / "ukb.csv").read_bytes() == (tmp_path / "b" / "ukb.csv").read_bytes()
    ra = open_raw(str(tmp_path / "a" / "era5" / "2019" / "02" / "g00.zip"))
    rb = open_raw(str(tmp_path / "b" / "era5" / "2019" / "02" / "g00.zip"))
    np.testing.assert_array_equal(ra.tp.values, rb.tp.values)
    make_synthetic(ppeye.load_config(DEMO, SMALL + ["synthetic.seed=1"]), str(tmp_path / "c"))
    rc = open_raw(str(tmp_path / "c" / "era5" / "2019" / "02" / "g00.zip"))
    assert not np.allclose(np.nan_to_num(ra.t2m.values), np.nan_to_num(rc.t2m.values))


# ------------------------------------------------------------------------------ UKB table


@pytest.fixture(scope="session")
def table(tiny):
    out, _ = tiny
    return pd.read_csv(os.path.join(out, "ukb.csv"), low_memory=False)


@pytest.fixture(scope="session")
def truth(tiny):
    out, _ = tiny
    return pd.read_csv(os.path.join(out, "truth.csv"))


def test_table_uses_ukbconv_names_and_conventions(tiny, table):
    _, gt = tiny
    assert table.columns[0] == "eid" and table.eid.is_unique
    assert table.eid.between(1000000, 9999999).all()
    assert all(re.fullmatch(r"\d+-\d+\.\d+", c) for c in table.columns[1:])
    fields = {int(c.split("-")[0]) for c in table.columns[1:]}
    assert set(gt["counts"]["feature_fields"]) <= fields and len(gt["counts"]["feature_fields"]) == 20
    assert {31, 34, 53, 54, 40000, 41270, 41280, 131186, 131164, 131182, 131184} <= fields
    assert set(table["54-0.0"]) <= {11016, 11001}
    assessed = pd.to_datetime(table["53-0.0"])
    assert assessed.min() >= pd.Timestamp("2015-01-01") and assessed.max() <= pd.Timestamp("2020-01-01")
    assert table["21001-0.0"].dropna().between(14, 65).all()  # BMI
    assert set(table["31-0.0"]) == {0, 1} and table["34-0.0"].notna().all()


def test_table_is_messy_like_an_export(table, truth):
    assert (table["20116-0.0"] == -3).sum() > 0  # prefer not to answer
    assert set(table["2443-0.0"].dropna()) >= {-1, -3, 0, 1}
    eye = table["5262-0.0"].isna().mean()
    assert 0.55 < eye < 0.85  # eye measures exist for about 30%
    assert 0 < table["30750-0.0"].isna().mean() < 0.3
    fo = pd.concat([table[f"{f}-0.0"] for fs in F.FIRST_OCCURRENCE.values() for f in fs])
    assert fo.isin(F.PLACEHOLDER_DATES).sum() > 0
    unknown = sum((~truth[f"onset_date_known_{d}"] & (truth[f"y_{d}"] == 1)).sum() for d in F.DISEASES)
    assert fo.isin(F.PLACEHOLDER_DATES).sum() == unknown
    codes = pd.concat([table[c] for c in table.columns if c.startswith("41270-")]).dropna()
    assert codes.str.fullmatch(r"[A-Z]\d{2,3}").all() and (codes == "H353").any()


def test_rap_names_and_tsv(tmp_path):
    cfg = ppeye.load_config(DEMO, SMALL + ["synthetic.table_style=rap", "synthetic.table_format=tsv"])
    make_synthetic(cfg, str(tmp_path / "rap"))
    table = pd.read_csv(tmp_path / "rap" / "ukb.tsv", sep="\t")
    assert {"eid", "p31", "p34", "p53_i0", "p54_i0", "p21001_i0", "p41270_a0", "p41280_a0", "p131186"} <= set(table.columns)


# ------------------------------------------------------------------------------ ground truth


def test_labels_follow_the_planted_risk(tiny, truth):
    _, gt = tiny
    el = truth[truth.eligible]
    assert len(el) > 0.8 * len(truth)
    for d in F.DISEASES:
        target = gt["prevalence"]["target"][d]
        assert el[f"p_{d}"].mean() == pytest.approx(target, abs=2e-3)  # intercepts hit the prevalence
        sd = np.sqrt(target * (1 - target) / len(el))
        assert abs(el[f"y_{d}"].mean() - target) < 4 * sd
        assert gt["oracle_auc"][d] == pytest.approx(auc(el[f"p_{d}"], el[f"y_{d}"]), abs=1e-4)  # p rounded in the csv
        assert gt["oracle_auc"][d] > 0.65
        assert (truth.loc[~truth.eligible, f"y_{d}"] == 0).all()


def test_cases_are_indexed_at_their_first_onset(table, truth):
    onsets = pd.DataFrame({d: pd.to_datetime(truth[f"onset_{d}"]) for d in F.DISEASES})
    cases = truth[onsets.notna().any(axis=1)]
    first = onsets.loc[cases.index].min(axis=1)
    assert (first == pd.to_datetime(cases.reference_date)).all()
    # the table's first-occurrence date is the true onset unless replaced by a placeholder
    merged = table.set_index("eid").loc[truth.eid]
    for d, fid in [("glaucoma", 131186), ("amd", 131182), ("dr", 131184)]:
        known = (truth[f"y_{d}"] == 1) & truth[f"onset_date_known_{d}"]
        written = merged[f"{fid}-0.0"].to_numpy()[known.to_numpy()]
        assert (written == truth.loc[known, f"onset_{d}"].to_numpy()).all()


def test_reference_dates_lie_in_follow_up_with_a_full_window(table, truth):
    el = truth[truth.eligible]
    ref = pd.to_datetime(el.reference_date)
    assert ref.min() >= pd.Timestamp("2019-01-29") and ref.max() <= pd.Timestamp("2019-06-30")
    assessed = pd.to_datetime(table.set_index("eid").loc[el.eid, "53-0.0"]).to_numpy()
    assert (ref.to_numpy() >= assessed).all()


def test_subgroups_match_age_and_season(tiny, truth):
    _, gt = tiny
    el = truth[truth.eligible]
    assert (el.older == (el.age_at_reference >= gt["subgroups"]["older_age"])).all()
    months = pd.to_datetime(el.reference_date).dt.month
    assert (el.winter == months.isin(gt["subgroups"]["winter_months"])).all()


def test_patient_signals_are_visible_in_the_table(table, truth):
    rows = table.set_index("eid").loc[truth.eid]
    dr = truth.y_dr.to_numpy() == 1
    diabetic = (rows["2443-0.0"] == 1).to_numpy()
    assert diabetic[dr].mean() > 3 * diabetic[~dr].mean()
    iop = rows["5262-0.0"].to_numpy()
    g = truth.y_glaucoma.to_numpy() == 1
    assert np.nanmean(iop[g]) > np.nanmean(iop[~g]) + 0.5


def test_planted_weather_events_are_in_the_raw_files(tiny, tiny_era5, truth):
    """Recompute each person's event exposure from the raw ssrd alone: it tracks the truth."""
    _, gt = tiny
    ssrd = tiny_era5.ssrd
    totals = ssrd.sel(valid_time=ssrd.valid_time.dt.hour == 0)  # 00 UTC = previous day's total
    totals = totals.assign_coords(valid_time=totals.valid_time - np.timedelta64(1, "D"))
    (r0, r1), (c0, c1) = gt["event"]["region_cells"]["rows"], gt["event"]["region_cells"]["cols"]
    lag_min, lag_max = gt["event"]["lags"]
    el = truth[truth.eligible]
    recomputed = []
    for centre, ref in zip(el.centre, pd.to_datetime(el.reference_date)):
        c = get_centre(int(centre))
        box = site_box(c.lat, c.lon, (8, 8))
        cube = totals.sel(latitude=box.lats, longitude=box.lons, method="nearest")
        win = cube.sel(valid_time=slice(ref - pd.Timedelta(days=lag_max), ref - pd.Timedelta(days=lag_min)))
        inside = win.isel(latitude=slice(r0, r1), longitude=slice(c0, c1)).mean(("latitude", "longitude"))
        recomputed.append(float((inside - win.mean(("latitude", "longitude"))).sum()))
    assert np.corrcoef(recomputed, el.z_event)[0, 1] > 0.4


def test_planted_period_dominates_the_site_spectrum(tiny, tiny_era5):
    _, gt = tiny
    c = get_centre("Manchester")
    box = site_box(c.lat, c.lon, (8, 8))
    t2m = tiny_era5.t2m.sel(latitude=box.lats[3], longitude=box.lons[3], method="nearest")
    daily = t2m.resample(valid_time="1D").mean().values
    anomaly = (daily - np.convolve(daily, np.ones(15) / 15, mode="same"))[10:-10]
    power = np.abs(np.fft.rfft(anomaly - anomaly.mean())) ** 2
    periods = 1 / np.fft.rfftfreq(len(anomaly))[1:]
    assert periods[np.argmax(power[1:])] == pytest.approx(gt["periodic"]["period_days"], rel=0.05)


# ------------------------------------------------------------------------------ helpers and errors


def test_window_sums_match_a_loop():
    rng = np.random.default_rng(0)
    daily = rng.random((50, 3))
    site, ref = np.array([0, 2, 1]), np.array([20, 49, 11])
    expected = [daily[r - 9 : r - 2, s].sum() for s, r in zip(site, ref)]  # lags 3..9
    np.testing.assert_allclose(window_sums(daily, site, ref, 3, 9), expected)


def test_auc_and_intercept_helpers():
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert auc([0.5, 0.5], [0, 1]) == 0.5
    rest = np.random.default_rng(1).normal(size=1000)
    b = solve_intercept(rest, 0.1)
    assert np.mean(1 / (1 + np.exp(-(b + rest)))) == pytest.approx(0.1, abs=1e-6)


@pytest.mark.parametrize("override, message", [
    ("synthetic.signals.event.variable=sp", "synthetic.signals.event.variable 'sp' is not in data.variables"),
    ("synthetic.signals.event.lags=[3, 40]", "lags"),
    ("synthetic.num_features=5", "synthetic.num_features must be at least"),
    ("data.end_date=2019-02-10", "must span more than data.window_days"),
    ("synthetic.table_style=excel", "synthetic.table_style"),
    ("synthetic.prevalence={amd: 0.7}", "synthetic.prevalence.amd"),
    ("synthetic.coastal=[Manchester]", "inland centres: Manchester"),
])
def test_bad_settings_are_named(tmp_path, override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_synthetic(tiny_cfg([override]), str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_a_stronger_planted_event_is_more_visible_in_the_store(tmp_path):
    """``signals.visibility``: the ideal detector's correlation with z_event rises with the
    event amplitude and is near zero without an event."""
    from ppeye.data.era5.convert import convert_era5
    from ppeye.data.store import Era5Store
    from ppeye.data.synthetic.signals import visibility

    seen = {}
    for amp in (0.0, 40.0):
        out = tmp_path / f"a{int(amp)}"
        cfg = ppeye.load_config(DEMO, SMALL + ["synthetic.num_participants=300", "data.hours=8",
                                               f"synthetic.signals.event.amplitude={amp}",
                                               f"data.era5_raw_dir={out}/raw/era5", f"data.work_dir={out}/work",
                                               "data.norm_period=[2019-01-01, 2019-03-15]"])
        gt = make_synthetic(cfg, str(out / "raw"))
        convert_era5(cfg)
        store = Era5Store(str(out / "work" / "era5.zarr"))
        truth = pd.read_csv(out / "raw" / "truth.csv")
        truth = truth[truth["eligible"]]
        end = store.day_index(pd.to_datetime(truth["reference_date"]).to_numpy().astype("datetime64[D]"))
        site = truth["centre"].map(store.site_position).to_numpy()
        seen[amp] = visibility(store, site, end, truth["z_event"], truth["z_periodic"], gt)
    assert abs(seen[0.0]["event"]) < 0.3
    assert seen[40.0]["event"] > 0.8


def test_the_day_contrast_is_the_event_variables_region_mean_minus_the_rest():
    """``signals.day_contrast`` on hand-made days: summed over the hours, inside the planted
    region minus outside; a uniform day gives 0 whatever its level."""
    from ppeye.data.synthetic.signals import day_contrast

    region = {"rows": [1, 2], "cols": [2, 3]}                    # 4 of the 5 x 6 = 30 cells
    days = np.full((3, 2, 5, 6), 7.0)                            # [days, hours, H, W]
    days[1, 0, 1, 2] += 8.0                                      # one hour of one region cell
    days[2, 1, 4, 0] += 26.0                                     # one hour of one cell outside
    got = day_contrast(days, region)
    np.testing.assert_allclose(got, [0.0, 8.0 / 4, -26.0 / 26])


def test_the_oscillation_drift_is_made_orthogonal_to_the_season():
    from ppeye.data.synthetic.weather import WeatherGenerator

    days = pd.date_range("2019-01-01", "2020-06-30", freq="D")
    angle = 2 * np.pi * days.dayofyear.to_numpy() / 365.25
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((len(days), 3))
    series = noise + np.stack([2 * np.sin(angle), -np.cos(angle), 0 * angle], axis=1) + 5.0
    out = WeatherGenerator._deseasonalise(series, days)
    for basis in (np.sin(angle), np.cos(angle)):
        assert np.abs(np.corrcoef(basis, out.T)[0, 1:]).max() < 1e-10
    np.testing.assert_allclose(out.mean(0), series.mean(0))      # the level is kept
    # what is not seasonal stays: the result is close to the noise plus the level
    assert np.corrcoef(out[:, 0], noise[:, 0])[0, 1] > 0.95
    short = series[:200]                                         # under a year: left alone
    np.testing.assert_array_equal(WeatherGenerator._deseasonalise(short, days[:200]), short)
