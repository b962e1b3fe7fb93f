"""era5.zarr as int16 with one scale per variable (``data.store_packing: int16``): half the bytes,
decoded into the normalisation, within half a packing step of the float32 store everywhere."""
import os

import numpy as np
import pytest
import xarray as xr
from conftest import DEMO, PIPE, ROOT, TINY

import ppeye
from ppeye.baselines.features import ClimateFeatures
from ppeye.core.errors import ConfigError, DataError
from ppeye.data.era5.convert import Spec, convert_era5
from ppeye.data.era5.packing import FILL, Packing
from ppeye.data.era5.values import PLAUSIBLE, UNIT_CONVERSIONS
from ppeye.data.era5.variables import BY_SHORT, VARIABLES
from ppeye.data.store import Era5Store, open_dataset
from ppeye.data.synthetic.make import make_synthetic

REAL = os.path.join(ROOT, "..", "shared", "data", "era5", "era5land_sp_land_32x32_20220101.nc")


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """The same raw files converted twice: float32 and int16."""
    tmp = tmp_path_factory.mktemp("packing")
    paths = [f"data.era5_raw_dir={tmp}/raw/era5", f"data.ukb_table={tmp}/raw/ukb.csv"]
    cfg = ppeye.load_config(DEMO, TINY + PIPE + paths + [f"data.work_dir={tmp}/f32"])
    make_synthetic(cfg, str(tmp / "raw"))
    convert_era5(cfg)
    packed = ppeye.load_config(DEMO, TINY + PIPE + paths + [f"data.work_dir={tmp}/i16", "data.store_packing=int16"])
    convert_era5(packed)
    return tmp, cfg, packed


def test_an_int16_store_reads_as_the_float32_one_within_half_a_step(stores):
    tmp, cfg, _ = stores
    a, b = Era5Store(str(tmp / "f32" / "era5.zarr")), Era5Store(str(tmp / "i16" / "era5.zarr"))
    assert a.group["weather"].dtype == np.float32 and b.group["weather"].dtype == np.int16
    assert np.array_equal(a.valid, b.valid) and (~a.valid).any()          # the generator's gaps: invalid days
    half = (b.packing.scale / 2 / a.std.reshape(-1)).reshape(-1, 1, 1, 1)  # half a step, in normalised units
    for site in range(len(a.sites)):
        days = np.arange(a.n_days)
        x, y = a.read(site, days), b.read(site, days)
        assert np.array_equal(np.isnan(x), np.isnan(y))                   # days without data: NaN in both
        ok = ~np.isnan(x)
        # plus float32 rounding of code * a + b: for precipitation, whose range spans ~1700 sd, ~5e-5 sd
        rounding = 4 * np.finfo(np.float32).eps * (np.abs(b.code_shift) + np.abs(x))
        assert (np.abs(x - y) <= half + rounding)[ok].all()
    # the same normalisation statistics (computed before packing), so the model's inputs differ by the rounding only
    assert np.allclose(a.mean, b.mean) and np.allclose(a.std, b.std)
    # the xarray view decodes the codes per variable, in store units
    va, vb = open_dataset(str(tmp / "f32" / "era5.zarr")), open_dataset(str(tmp / "i16" / "era5.zarr"))
    for c, name in enumerate(a.variables):
        diff = np.abs(va[name].values - vb[name].values)
        assert np.nanmax(diff) <= b.packing.scale[c] / 2 * (1 + 1e-3)
        assert va[name].attrs["units"] == vb[name].attrs["units"]
    # the climate baseline's daily means read the stored values through the store too
    fa, fb = ClimateFeatures(a, cfg["data"]["norm_period"]), ClimateFeatures(b, cfg["data"]["norm_period"])
    assert np.allclose(fa.daily, fb.daily, atol=0.01)


def test_a_float32_store_keeps_its_identity_and_the_two_packings_never_mix(stores):
    tmp, cfg, packed = stores
    assert "packing" not in Spec(cfg).identity() and Spec(packed).identity()["packing"] == "int16"
    mixed = ppeye.load_config(DEMO, TINY + PIPE + [f"data.era5_raw_dir={tmp}/raw/era5",
                                                   f"data.work_dir={tmp}/f32", "data.store_packing=int16"])
    with pytest.raises(DataError, match="was built for other settings \\(packing differ\\)"):
        convert_era5(mixed)
    with pytest.raises(ConfigError, match="data.store_packing must be one of float32, int16, got 'int8'"):
        Spec(ppeye.load_config(DEMO, TINY + ["data.store_packing=int8"]))


def test_every_variable_has_a_physical_range_and_a_value_outside_it_is_refused_not_clipped():
    assert {v.short for v in VARIABLES} <= set(PLAUSIBLE)
    packing = Packing.for_variables([BY_SHORT["t2m"], BY_SHORT["tp"]])      # store units: degC, mm h-1
    assert packing.offset[0] - 32767 * packing.scale[0] <= 170 - 273.15 and packing.scale[0] < 0.003
    weather = np.zeros((1, 2, 2, 1, 3, 3))
    weather[0, 0, 0] = 25.0
    weather[0, 1, 1, 0, 0, 0] = np.nan
    codes = packing.pack(weather, "ERA5 2019-01")
    assert codes.dtype == np.int16 and codes[0, 1, 1, 0, 0, 0] == FILL
    back = packing.unpack(codes)
    assert np.isnan(back[0, 1, 1, 0, 0, 0]) and np.nanmax(np.abs(back - weather)) <= packing.scale.max() / 2
    weather[0, 0, 1, 0, 1, 1] = 400.0                                          # mm in an hour: beyond any record
    with pytest.raises(DataError, match=r"ERA5 2019-01 tp: 1 values outside the int16 packing range"):
        packing.pack(weather, "ERA5 2019-01")


@pytest.mark.skipif(not os.path.isfile(REAL), reason="../shared/data (real ERA5-Land) is not beside the project")
def test_on_real_era5_land_the_int16_error_is_below_the_source_packing_step_of_temperature_and_pressure():
    """The real file's values sit on ERA5-Land's GRIB lattice (16 bits a message: 2^-9 K for
    temperatures, 1 Pa for pressure); int16 over each variable's physical range errs by at most
    half its own step, which is below that lattice's step for these variables."""
    ds = xr.open_dataset(REAL)
    for name in ("t2m", "d2m", "skt", "stl1", "sp"):
        var = BY_SHORT[name]
        packing = Packing.for_variables([var])
        _, factor, shift = UNIT_CONVERSIONS.get((var.units, var.accumulated), (var.units, 1.0, 0.0))
        field = ds[name].values.astype(np.float64)                            # [24, 32, 32], file units
        gaps = [np.diff(np.unique(h[~np.isnan(h)])) for h in field]
        grib = float(np.median([g[g > 0].min() for g in gaps])) * factor      # the source step, store units
        values = field * factor + shift
        back = packing.unpack(packing.pack(values[None, None, None], "real"))[0, 0, 0]
        err = float(np.nanmax(np.abs(back - values)))
        assert err <= packing.scale[0] / 2 * (1 + 1e-6) and err < grib, (name, err, grib)
