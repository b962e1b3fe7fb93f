"""The regular latitude/longitude grid of ERA5-Land and the per-site boxes cut from it.

Conventions (used by the converter, the store and the synthetic generator alike):

* grid rows run north to south (latitude descending, as the CDS delivers them),
  columns west to east; cell ``(i, j)`` is at ``lat = 90 - i*res``,
  ``lon = -180 + j*res``;
* a site's box is ``H x W`` cells; the cell nearest to the site sits at row
  ``(H - 1) // 2`` and column ``(W - 1) // 2`` of the box (for 20 x 20: row 9,
  column 9, so the box reaches 9 cells north/west and 10 south/east of it).
  Box row 0 is the northern edge, box column 0 the western edge.
"""
from dataclasses import dataclass

import numpy as np

from ...core.errors import ConfigError

ERA5_LAND_RESOLUTION = 0.1


def _check_res(resolution):
    steps = 1.0 / resolution
    if resolution <= 0 or abs(steps - round(steps)) > 1e-9:
        raise ConfigError(f"grid resolution must divide 1 degree evenly (0.1, 0.25, ...), got {resolution}")


def nearest_index(lat, lon, resolution=ERA5_LAND_RESOLUTION):
    """Row and column of the grid cell nearest to ``(lat, lon)``."""
    _check_res(resolution)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ConfigError(f"coordinates out of range: lat={lat}, lon={lon}")
    return int(round((90.0 - lat) / resolution)), int(round((lon + 180.0) / resolution))


def row_lat(i, resolution=ERA5_LAND_RESOLUTION):
    return np.round(90.0 - np.asarray(i) * resolution, 6)


def col_lon(j, resolution=ERA5_LAND_RESOLUTION):
    return np.round(-180.0 + np.asarray(j) * resolution, 6)


@dataclass(frozen=True)
class Box:
    """Grid rows ``[row0, row0 + height)`` and columns ``[col0, col0 + width)``."""

    row0: int
    col0: int
    height: int
    width: int
    resolution: float = ERA5_LAND_RESOLUTION

    @property
    def rows(self):
        return np.arange(self.row0, self.row0 + self.height)

    @property
    def cols(self):
        return np.arange(self.col0, self.col0 + self.width)

    @property
    def lats(self):
        return row_lat(self.rows, self.resolution)

    @property
    def lons(self):
        return col_lon(self.cols, self.resolution)

    @property
    def area(self):
        """``[N, W, S, E]`` in degrees, the order of a CDS ``area`` request."""
        return [float(self.lats[0]), float(self.lons[0]), float(self.lats[-1]), float(self.lons[-1])]


def site_box(lat, lon, size=(20, 20), resolution=ERA5_LAND_RESOLUTION):
    """The ``size`` box of cells around the site (see the module docstring)."""
    height, width = size
    if height < 1 or width < 1:
        raise ConfigError(f"box size must be positive, got {size}")
    i, j = nearest_index(lat, lon, resolution)
    return Box(i - (height - 1) // 2, j - (width - 1) // 2, height, width, resolution)


def union_box(boxes, margin=0):
    """The smallest box holding all ``boxes``, grown by ``margin`` cells on each side."""
    boxes = list(boxes)
    if not boxes:
        raise ConfigError("no site boxes to cover")
    res = boxes[0].resolution
    row0 = min(b.row0 for b in boxes) - margin
    col0 = min(b.col0 for b in boxes) - margin
    row1 = max(b.row0 + b.height for b in boxes) + margin
    col1 = max(b.col0 + b.width for b in boxes) + margin
    return Box(row0, col0, row1 - row0, col1 - col0, res)
