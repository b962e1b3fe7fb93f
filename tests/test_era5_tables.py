"""The ERA5-Land variable table and grid conventions, checked against real files."""
import numpy as np
import pytest
import xarray as xr

from conftest import shared
from ppeye.core.errors import ConfigError
from ppeye.data.era5 import variables as V
from ppeye.data.era5.grid import nearest_index, site_box, union_box
from ppeye.data.ukb.centres import CENTRES, get_centre, resolve_sites


def test_fifty_variables_nineteen_accumulated():
    assert len(V.VARIABLES) == 50
    assert len({v.name for v in V.VARIABLES}) == 50 and len({v.short for v in V.VARIABLES}) == 50
    assert set(V.ACCUMULATED) == {"tp", "sf", "smlt", "es", "e", "evabs", "evaow", "evatc", "evavt", "pev",
                                  "ro", "ssro", "sro", "ssr", "str", "ssrd", "strd", "slhf", "sshf"}


def test_real_era5_land_file_matches_the_table():
    ds = xr.open_dataset(shared("era5", "era5land_sp_land_32x32_20220101.nc"))
    for name, da in ds.data_vars.items():
        var = V.get_variable(name)
        assert var.units == da.attrs["units"], name
        assert var.step_type == da.attrs["GRIB_stepType"], name


def test_real_file_accumulation_convention():
    # ERA5-Land accumulates from 00 UTC; the 00 UTC value is the previous day's total,
    # so within a day (01..23 UTC) an accumulated non-negative flux never decreases
    ds = xr.open_dataset(shared("era5", "era5land_sp_land_32x32_20220101.nc"))
    tp = ds.tp.values
    assert np.nanmin(np.diff(tp[1:], axis=0)) >= -1e-6
    assert np.nanmean(tp[0]) > np.nanmean(tp[1])  # 00 UTC holds a whole day


def test_lookup_by_cds_or_short_name_and_errors():
    assert V.get_variable("2m_temperature") is V.get_variable("t2m")
    with pytest.raises(ConfigError, match="Did you mean 2m_temperature"):
        V.get_variable("2m_temprature")
    with pytest.raises(ConfigError, match="twice"):
        V.resolve_variables(["t2m", "2m_temperature"])
    assert len(V.resolve_variables("all")) == 50


def test_request_groups_stay_under_the_size_limit():
    groups = V.plan_groups(V.VARIABLES, 8)
    assert [len(g) for g in groups.values()] == [8, 8, 8, 8, 8, 8, 2]
    assert list(groups)[0] == "g00"


def test_grid_cells_fall_on_the_real_era5_land_grid():
    ds = xr.open_dataset(shared("era5", "era5land_se_coast_64x64_20220101.nc"))
    lat0, lon0 = float(ds.latitude[0]), float(ds.longitude[0])
    i, j = nearest_index(lat0, lon0)
    box = site_box(lat0 - 0.9, lon0 + 0.9, (20, 20))
    assert box.row0 == i and box.col0 == j  # 9 cells north/west of the site cell
    np.testing.assert_allclose(box.lats, ds.latitude.values[:20], atol=1e-6)
    np.testing.assert_allclose(box.lons, ds.longitude.values[:20], atol=1e-6)


def test_site_box_puts_the_site_at_row_and_column_9():
    box = site_box(53.48, -2.24, (20, 20))
    assert box.lats[9] == pytest.approx(53.5) and box.lons[9] == pytest.approx(-2.2)
    assert box.lats[0] > box.lats[-1]  # north first
    london = site_box(51.5, -0.1, (20, 20))
    u = union_box([box, london], margin=2)
    assert u.row0 == box.row0 - 2 and u.row0 + u.height == london.row0 + 20 + 2
    assert u.col0 == box.col0 - 2 and u.col0 + u.width == london.col0 + 20 + 2
    assert u.area[0] > u.area[2] and u.area[1] < u.area[3]  # [N, W, S, E]


def test_the_22_assessment_centres():
    assert len(CENTRES) == 22 and len({c.code for c in CENTRES}) == 22
    assert get_centre("manchester") is get_centre(11001) is get_centre("11001")
    assert all(49.9 < c.lat < 58.7 and -8.2 < c.lon < 1.8 for c in CENTRES)  # Great Britain
    with pytest.raises(ConfigError, match="unknown assessment centre 'Atlantis'"):
        get_centre("Atlantis")
    with pytest.raises(ConfigError, match="more than once"):
        resolve_sites(["Bury", 11008])
