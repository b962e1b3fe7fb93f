"""ERA5-Land values as the store holds them: units checked against the variable table (never
assumed or guessed), finite values inside each variable's physical range, accumulations
de-accumulated, hours sampled or averaged to ``data.hours``, and units converted (K -> degC,
Pa -> hPa, accumulated m -> mm h-1, accumulated J m-2 -> W m-2)."""
import numpy as np

from ...core.errors import DataError
from .reader import deaccumulate, step_type

# Physical ranges per variable in ERA5-Land's file units (accumulated: the amount of one hour),
# generous: beyond them a value is a wrong unit or a damaged file (Earth's records: 184-330 K,
# 0.305 m of rain in an hour, solar constant 1361 W m-2 = 4.9e6 J m-2 in an hour). Short-wave
# allows 4x that: the demo's planted sunshine events, louder than physics on purpose, reach 1.3e7;
# a day's accumulation left undifferenced (up to ~3e7) is still caught.
PLAUSIBLE = {
    **{k: (170.0, 345.0) for k in ("t2m", "d2m", "skt", "stl1", "stl2", "stl3", "stl4", "tsn",
                                    "lblt", "lict", "lmlt", "ltlt")},
    "sp": (30000.0, 110000.0), "u10": (-120.0, 120.0), "v10": (-120.0, 120.0),
    **{k: (0.0, 1.0) for k in ("swvl1", "swvl2", "swvl3", "swvl4", "fal", "asn")},
    "snowc": (0.0, 100.0), "tp": (0.0, 0.35), "sf": (0.0, 0.35), "ssrd": (0.0, 2.0e7), "ssr": (0.0, 2.0e7),
    "strd": (0.0, 3.0e6), "str": (-2.0e6, 1.0e6), "slhf": (-5.0e6, 5.0e6), "sshf": (-5.0e6, 5.0e6),
    # water (m of water in an hour; evaporation is negative in ECMWF's convention), lakes, vegetation, snow
    **{k: (-0.01, 0.01) for k in ("e", "es", "pev", "evabs", "evaow", "evatc", "evavt")},
    **{k: (0.0, 0.35) for k in ("ro", "sro", "ssro", "smlt")},
    "src": (0.0, 0.1), "licd": (0.0, 20.0), "lmld": (0.0, 500.0), "lshf": (0.0, 1.0),
    "lai_hv": (0.0, 20.0), "lai_lv": (0.0, 20.0), "rsn": (0.0, 1000.0), "sde": (0.0, 100.0), "sd": (0.0, 100.0),
}
UNIT_CONVERSIONS = {  # (units in the file, accumulated) -> (store units, scale, offset)
    ("K", False): ("degC", 1.0, -273.15),
    ("Pa", False): ("hPa", 0.01, 0.0),
    ("m", True): ("mm h**-1", 1000.0, 0.0),
    ("m of water equivalent", True): ("mm h**-1", 1000.0, 0.0),
    ("J m**-2", True): ("W m**-2", 1.0 / 3600.0, 0.0),
}


def daily_values(ds, acc, inst, var, spec, n_days, label):
    """One variable of the month as [n_days, D, lat, lon] in store units, and those units."""
    kind = step_type(ds, var.short)
    step = 24 // spec.hours
    if kind == "accum":
        series = acc[var.short]
        if spec.product == "era5-land":  # starts at 01 UTC: the accumulation restarts, no earlier value needed
            series = deaccumulate(series, sign=var.sign, label=f"{label} {var.short}")
        values = series.values.reshape(n_days, spec.hours, step, *series.shape[1:]).mean(axis=2)
    else:
        values = inst[var.short].values.reshape(n_days, 24, *inst[var.short].shape[1:])[:, ::step]
    units = ds[var.short].attrs.get("units")
    if units is None:
        raise DataError(f"{label} {var.short}: the file gives no units; ppeye expects ERA5-Land's {var.units!r} and "
                        f"does not assume them")
    if normalise_units(units) != normalise_units(var.units):
        raise DataError(f"{label} {var.short}: units {units!r} in the file, expected ERA5-Land's {var.units!r}; "
                        f"ppeye converts from ERA5-Land's own units only and does not guess others")
    check_plausible(values, var, label)
    store_units, scale, offset = UNIT_CONVERSIONS.get((var.units, kind == "accum"), (var.units, 1.0, 0.0))
    return values * scale + offset, store_units


def store_units(var):
    """The units ``var`` has in era5.zarr (after the conversions of ``UNIT_CONVERSIONS``)."""
    return UNIT_CONVERSIONS.get((var.units, var.accumulated), (var.units,))[0]


def normalise_units(text):
    """Unit strings compared loosely: ``m s**-1`` = ``m s-1``; the dimensionless spellings are one."""
    u = " ".join(str(text).replace("**", "").replace("^", "").split())
    if u in ("(0 - 1)", "(0-1)", "1", "dimensionless", "~", "Proportion", "0-1"):
        return "1"
    return "m" if u == "m of water equivalent" else u


def check_plausible(values, var, label):
    """Every value finite (NaN marks sea or a gap; +-inf is an error), and inside the physical
    range of ``PLAUSIBLE`` for the variable (in its file units, per hour for accumulated ones)."""
    bad = np.isinf(values)
    if bad.any():
        raise DataError(f"{label} {var.short}: {int(bad.sum())} values are infinite")
    bounds = PLAUSIBLE.get(var.short)
    if bounds is None:
        return
    lo, hi = bounds
    tol = 1e-6 * max(1.0, abs(hi - lo))
    with np.errstate(invalid="ignore"):
        out = (values < lo - tol) | (values > hi + tol)
    if out.any():
        vals = values[out]
        raise DataError(f"{label} {var.short}: {int(out.sum())} values outside the plausible range {lo}..{hi} "
                        f"{var.units}{' per hour' if var.accumulated else ''} (from {np.nanmin(vals):.6g} to "
                        f"{np.nanmax(vals):.6g}): wrong units or a damaged file?")
