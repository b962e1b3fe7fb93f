"""The 50 ERA5-Land hourly variables: CDS request name, NetCDF short name, units, step type.

``accumulated`` variables are delivered accumulated since 00 UTC of the day (the
00 UTC value holds the previous day's total) and must be de-accumulated to hourly
amounts. ``sign`` says which way an accumulated flux goes in ECMWF's convention
(+1 never negative, -1 never positive, 0 either), so de-accumulation knows which
small values of the wrong sign are packing noise.

The ``synth`` entry parametrises the synthetic generator (ppeye.data.synthetic):
for instantaneous variables ``(mean, seasonal amplitude, diurnal amplitude, noise
sd, lower bound, upper bound)``; for accumulated ones ``(mean daily total,
seasonal amplitude as a fraction, daily shape, wet-day driven)``. The ``group``
says which variables share weather noise (temperatures move together, etc.).
"""
from dataclasses import dataclass

from ...core.errors import ConfigError


@dataclass(frozen=True)
class Variable:
    name: str  # CDS request name
    short: str  # variable name in the CDS NetCDF files
    param_id: int  # GRIB paramId
    long_name: str
    units: str
    accumulated: bool
    group: str
    synth: tuple
    sign: int = 0

    @property
    def step_type(self):
        return "accum" if self.accumulated else "instant"


def _inst(name, short, pid, long_name, units, group, *synth):
    return Variable(name, short, pid, long_name, units, False, group, tuple(synth))


def _acc(name, short, pid, long_name, units, group, sign, *synth):
    return Variable(name, short, pid, long_name, units, True, group, tuple(synth), sign)


INF = float("inf")

# fmt: off
VARIABLES = (
    _inst("10m_u_component_of_wind", "u10", 165, "10 metre U wind component", "m s**-1", "wind", 1.5, 0.4, 0.8, 3.0, -INF, INF),
    _inst("10m_v_component_of_wind", "v10", 166, "10 metre V wind component", "m s**-1", "wind", 0.8, 0.3, 0.5, 3.0, -INF, INF),
    _inst("2m_dewpoint_temperature", "d2m", 168, "2 metre dewpoint temperature", "K", "temperature", 280.0, 5.0, 1.0, 2.5, 200.0, 330.0),
    _inst("2m_temperature", "t2m", 167, "2 metre temperature", "K", "temperature", 283.5, 6.0, 3.5, 3.0, 200.0, 330.0),
    _acc("evaporation_from_bare_soil", "evabs", 228101, "Evaporation from bare soil", "m of water equivalent", "moisture", -1, 0.0002, 0.8, "solar", False),
    _acc("evaporation_from_open_water_surfaces_excluding_oceans", "evaow", 228102, "Evaporation from open water surfaces excluding oceans", "m of water equivalent", "moisture", -1, 0.00001, 0.8, "solar", False),
    _acc("evaporation_from_the_top_of_canopy", "evatc", 228100, "Evaporation from the top of canopy", "m of water equivalent", "moisture", -1, 0.0002, 0.6, "solar", True),
    _acc("evaporation_from_vegetation_transpiration", "evavt", 228103, "Evaporation from vegetation transpiration", "m of water equivalent", "moisture", -1, 0.001, 0.9, "solar", False),
    _inst("forecast_albedo", "fal", 243, "Forecast albedo", "(0 - 1)", "vegetation", 0.16, -0.01, 0.0, 0.01, 0.0, 1.0),
    _inst("lake_bottom_temperature", "lblt", 228010, "Lake bottom temperature", "K", "lake", 282.0, 2.5, 0.0, 0.3, 273.15, 310.0),
    _inst("lake_ice_depth", "licd", 228014, "Lake ice total depth", "m", "lake", 0.005, -0.005, 0.0, 0.005, 0.0, INF),
    _inst("lake_ice_temperature", "lict", 228013, "Lake ice surface temperature", "K", "lake", 272.0, 1.0, 0.5, 0.5, 230.0, 273.15),
    _inst("lake_mix_layer_depth", "lmld", 228009, "Lake mix-layer depth", "m", "lake", 4.0, -1.5, 0.0, 0.4, 0.5, 50.0),
    _inst("lake_mix_layer_temperature", "lmlt", 228008, "Lake mix-layer temperature", "K", "lake", 284.0, 6.0, 0.5, 1.0, 273.15, 310.0),
    _inst("lake_shape_factor", "lshf", 228012, "Lake shape factor", "dimensionless", "lake", 0.65, 0.0, 0.0, 0.0, 0.5, 0.8),
    _inst("lake_total_layer_temperature", "ltlt", 228011, "Lake total layer temperature", "K", "lake", 283.0, 4.0, 0.2, 0.8, 273.15, 310.0),
    _inst("leaf_area_index_high_vegetation", "lai_hv", 66, "Leaf area index, high vegetation", "m**2 m**-2", "vegetation", 3.0, 1.5, 0.0, 0.1, 0.0, 10.0),
    _inst("leaf_area_index_low_vegetation", "lai_lv", 67, "Leaf area index, low vegetation", "m**2 m**-2", "vegetation", 2.0, 1.0, 0.0, 0.1, 0.0, 10.0),
    _acc("potential_evaporation", "pev", 228251, "Potential evaporation", "m", "moisture", -1, 0.003, 0.8, "solar", False),
    _acc("runoff", "ro", 205, "Runoff", "m", "precipitation", 1, 0.001, -0.4, "flat", True),
    _inst("skin_reservoir_content", "src", 198, "Skin reservoir content", "m of water equivalent", "precipitation", 0.0002, -0.0001, 0.0, 0.0001, 0.0, 0.001),
    _inst("skin_temperature", "skt", 235, "Skin temperature", "K", "temperature", 283.5, 7.0, 5.0, 3.0, 200.0, 340.0),
    _inst("snow_albedo", "asn", 32, "Snow albedo", "(0 - 1)", "snow", 0.85, 0.0, 0.0, 0.02, 0.5, 0.9),
    _inst("snow_cover", "snowc", 260038, "Snow cover", "%", "snow", 2.0, -2.0, 0.0, 4.0, 0.0, 100.0),
    _inst("snow_density", "rsn", 33, "Snow density", "kg m**-3", "snow", 110.0, 0.0, 0.0, 10.0, 100.0, 450.0),
    _inst("snow_depth", "sde", 3066, "Snow depth", "m", "snow", 0.004, -0.004, 0.0, 0.01, 0.0, INF),
    _inst("snow_depth_water_equivalent", "sd", 228141, "Snow depth", "m of water equivalent", "snow", 0.001, -0.001, 0.0, 0.003, 0.0, INF),
    _acc("snow_evaporation", "es", 44, "Snow evaporation", "m of water equivalent", "snow", -1, 0.000001, -0.9, "flat", False),
    _acc("snowfall", "sf", 144, "Snowfall", "m of water equivalent", "precipitation", 1, 0.0001, -0.9, "flat", True),
    _acc("snowmelt", "smlt", 45, "Snowmelt", "m of water equivalent", "snow", 1, 0.0001, -0.9, "solar", False),
    _inst("soil_temperature_level_1", "stl1", 139, "Soil temperature level 1", "K", "temperature", 284.0, 6.0, 1.5, 1.5, 240.0, 330.0),
    _inst("soil_temperature_level_2", "stl2", 170, "Soil temperature level 2", "K", "temperature", 284.0, 5.5, 0.5, 1.0, 240.0, 330.0),
    _inst("soil_temperature_level_3", "stl3", 183, "Soil temperature level 3", "K", "temperature", 284.0, 4.5, 0.0, 0.6, 240.0, 330.0),
    _inst("soil_temperature_level_4", "stl4", 236, "Soil temperature level 4", "K", "temperature", 284.0, 3.0, 0.0, 0.3, 240.0, 330.0),
    _acc("sub_surface_runoff", "ssro", 9, "Sub-surface runoff", "m", "precipitation", 1, 0.0007, -0.4, "flat", False),
    _acc("surface_latent_heat_flux", "slhf", 147, "Surface latent heat flux", "J m**-2", "radiation", 0, -4.0e6, 0.8, "solar", False),
    _acc("surface_net_solar_radiation", "ssr", 176, "Surface net solar radiation", "J m**-2", "radiation", 1, 8.5e6, 0.8, "solar", False),
    _acc("surface_net_thermal_radiation", "str", 177, "Surface net thermal radiation", "J m**-2", "radiation", 0, -5.0e6, 0.2, "flat", False),
    _inst("surface_pressure", "sp", 134, "Surface pressure", "Pa", "pressure", 100500.0, 0.0, 50.0, 1200.0, 85000.0, 106000.0),
    _acc("surface_runoff", "sro", 8, "Surface runoff", "m", "precipitation", 1, 0.0003, -0.4, "flat", True),
    _acc("surface_sensible_heat_flux", "sshf", 146, "Surface sensible heat flux", "J m**-2", "radiation", 0, -1.0e6, 0.8, "solar", False),
    _acc("surface_solar_radiation_downwards", "ssrd", 169, "Surface short-wave (solar) radiation downwards", "J m**-2", "radiation", 1, 1.0e7, 0.8, "solar", False),
    _acc("surface_thermal_radiation_downwards", "strd", 175, "Surface long-wave (thermal) radiation downwards", "J m**-2", "radiation", 1, 2.7e7, 0.12, "flat", False),
    _inst("temperature_of_snow_layer", "tsn", 238, "Temperature of snow layer", "K", "snow", 271.0, 2.0, 1.0, 1.5, 220.0, 273.16),
    _acc("total_evaporation", "e", 182, "Evaporation", "m of water equivalent", "moisture", -1, 0.0015, 0.8, "solar", False),
    _acc("total_precipitation", "tp", 228, "Total precipitation", "m", "precipitation", 1, 0.0025, -0.2, "flat", True),
    _inst("volumetric_soil_water_layer_1", "swvl1", 39, "Volumetric soil water layer 1", "m**3 m**-3", "soil", 0.32, -0.08, 0.0, 0.04, 0.01, 0.7),
    _inst("volumetric_soil_water_layer_2", "swvl2", 40, "Volumetric soil water layer 2", "m**3 m**-3", "soil", 0.33, -0.06, 0.0, 0.03, 0.01, 0.7),
    _inst("volumetric_soil_water_layer_3", "swvl3", 41, "Volumetric soil water layer 3", "m**3 m**-3", "soil", 0.34, -0.04, 0.0, 0.02, 0.01, 0.7),
    _inst("volumetric_soil_water_layer_4", "swvl4", 42, "Volumetric soil water layer 4", "m**3 m**-3", "soil", 0.35, -0.02, 0.0, 0.01, 0.01, 0.7),
)
# fmt: on

BY_NAME = {v.name: v for v in VARIABLES}
BY_SHORT = {v.short: v for v in VARIABLES}
ACCUMULATED = tuple(v.short for v in VARIABLES if v.accumulated)


def get_variable(name):
    """Look a variable up by CDS request name or NetCDF short name."""
    if name in BY_NAME:
        return BY_NAME[name]
    if name in BY_SHORT:
        return BY_SHORT[name]
    import difflib

    near = difflib.get_close_matches(str(name), list(BY_NAME) + list(BY_SHORT), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    raise ConfigError(f"unknown ERA5-Land variable '{name}'.{hint} Use a CDS request name or short name (see ppeye.data.era5.variables)")


def resolve_variables(names):
    """The Variables for a config's ``data.variables`` (``"all"`` means all 50), in order."""
    if names == "all" or names == ["all"]:
        return list(VARIABLES)
    if not isinstance(names, (list, tuple)) or not names:
        raise ConfigError(f"data.variables must be a non-empty list of variable names or 'all', got {names!r}")
    out = [get_variable(n) for n in names]
    seen = set()
    for v in out:
        if v.short in seen:
            raise ConfigError(f"data.variables lists '{v.name}' ({v.short}) twice")
        seen.add(v.short)
    return out


def plan_groups(variables, group_size=8):
    """Split variables into request groups of at most ``group_size`` (the CDS cost limit).

    Instantaneous and accumulated variables are kept in config order; the group
    name (``g00``, ``g01``...) is the raw file's stem for each month.
    """
    if group_size < 1:
        raise ConfigError(f"the request group size must be >= 1, got {group_size}")
    variables = list(variables)
    return {f"g{i // group_size:02d}": variables[i : i + group_size] for i in range(0, len(variables), group_size)}
