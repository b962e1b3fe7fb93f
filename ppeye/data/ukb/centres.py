"""The 22 UK Biobank baseline assessment centres (field 54, data-coding 10).

Coordinates are the centres' towns (WGS84, about 1 km precision), enough to
place a 0.1 degree box. ``sea`` describes the stylised coastline the synthetic
generator draws for coastal centres: the direction (compass degrees) towards
the sea and the distance (km) from the centre to the shore. It is not used for
real data, where ERA5-Land's own NaN cells mark the sea.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

from ...core.errors import ConfigError


@dataclass(frozen=True)
class Centre:
    code: int
    name: str
    lat: float
    lon: float
    sea: Optional[Tuple[float, float]] = None  # (bearing degrees, distance km)

    @property
    def coastal(self):
        return self.sea is not None


# fmt: off
CENTRES = (
    Centre(10003, "Stockport", 53.408, -2.149),
    Centre(11001, "Manchester", 53.481, -2.243),
    Centre(11002, "Oxford", 51.752, -1.258),
    Centre(11003, "Cardiff", 51.482, -3.179, (150.0, 6.0)),
    Centre(11004, "Glasgow", 55.864, -4.252, (270.0, 30.0)),
    Centre(11005, "Edinburgh", 55.953, -3.188, (0.0, 4.0)),
    Centre(11006, "Stoke", 53.003, -2.179),
    Centre(11007, "Reading", 51.454, -0.978),
    Centre(11008, "Bury", 53.593, -2.297),
    Centre(11009, "Newcastle", 54.978, -1.618, (90.0, 13.0)),
    Centre(11010, "Leeds", 53.801, -1.549),
    Centre(11011, "Bristol", 51.455, -2.588, (290.0, 12.0)),
    Centre(11012, "Barts", 51.518, -0.100),
    Centre(11013, "Nottingham", 52.955, -1.158),
    Centre(11014, "Sheffield", 53.381, -1.470),
    Centre(11016, "Liverpool", 53.408, -2.992, (270.0, 6.0)),
    Centre(11017, "Middlesborough", 54.574, -1.235, (45.0, 7.0)),
    Centre(11018, "Hounslow", 51.475, -0.368),
    Centre(11020, "Croydon", 51.376, -0.098),
    Centre(11021, "Birmingham", 52.486, -1.890),
    Centre(11022, "Swansea", 51.621, -3.944, (180.0, 3.0)),
    Centre(11023, "Wrexham", 53.043, -2.993, (0.0, 30.0)),
)
# fmt: on

BY_CODE = {c.code: c for c in CENTRES}
BY_NAME = {c.name.lower(): c for c in CENTRES}


def get_centre(key):
    """A centre by field-54 code (int or numeric string) or by name (any case)."""
    if isinstance(key, bool):
        key = str(key)
    if isinstance(key, (int, float)) and int(key) in BY_CODE:
        return BY_CODE[int(key)]
    text = str(key).strip()
    if text.isdigit() and int(text) in BY_CODE:
        return BY_CODE[int(text)]
    if text.lower() in BY_NAME:
        return BY_NAME[text.lower()]
    names = ", ".join(f"{c.name} ({c.code})" for c in CENTRES)
    raise ConfigError(f"unknown assessment centre {key!r}; known centres: {names}")


def resolve_sites(sites):
    """The Centres for a config's ``data.sites`` (``"all"`` means all 22), without repeats."""
    if sites == "all" or sites == ["all"]:
        return list(CENTRES)
    if not isinstance(sites, (list, tuple)) or not sites:
        raise ConfigError(f"data.sites must be a non-empty list of centre names/codes or 'all', got {sites!r}")
    out = [get_centre(s) for s in sites]
    codes = [c.code for c in out]
    dupes = sorted({c.name for c in out if codes.count(c.code) > 1})
    if dupes:
        raise ConfigError(f"data.sites lists {', '.join(dupes)} more than once")
    return out
