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
import xarray as xr

from ...core.errors import ConfigError, DataError

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


# ------------------------------------------------------------------ a source grid to the box


def source_resolution(ds, label):
    lat = ds.latitude.values
    if len(lat) < 2:
        raise DataError(f"{label}: the grid has a single latitude row")
    return float(np.round(abs(np.median(np.diff(lat))), 6))


def check_covers(ds, box, centre, label, res):
    lat, lon = ds.latitude.values, ds.longitude.values
    need = box.area  # N, W, S, E
    tol = res / 2 + 1e-6
    if need[0] > lat.max() + tol or need[2] < lat.min() - tol or need[1] < lon.min() - tol or need[3] > lon.max() + tol:
        raise DataError(
            f"{label}: the grid (lat {lat.min():.2f}..{lat.max():.2f}, lon {lon.min():.2f}..{lon.max():.2f}) does not "
            f"cover the {box.height}x{box.width} box of {centre.name} (N {need[0]}, W {need[1]}, S {need[2]}, E {need[3]})"
        )


def box_index(ds, box):
    """Rows and columns of ``ds``'s grid that hold the box's cells (same resolution)."""
    rows = np.searchsorted(-ds.latitude.values, -box.lats)
    cols = np.searchsorted(ds.longitude.values, box.lons)
    rows, cols = np.clip(rows, 0, ds.sizes["latitude"] - 1), np.clip(cols, 0, ds.sizes["longitude"] - 1)
    if not (np.allclose(ds.latitude.values[rows], box.lats, atol=1e-4)
            and np.allclose(ds.longitude.values[cols], box.lons, atol=1e-4)):
        raise DataError("the file's grid cells are not on the data.resolution grid (shifted grid?)")
    return rows[:, None], cols[None, :]


def nearest_fill_indices(land):
    """For each cell, the (row, col) of the nearest land cell; None when all cells are land."""
    from scipy import ndimage

    if land.all():
        return None
    _, (ri, ci) = ndimage.distance_transform_edt(~land, return_indices=True)
    return ri, ci


def regrid(values, src_lat, src_lon, box):
    """Bilinear interpolation of [n, lat, lon] (no NaN) to the box cells."""
    src = xr.DataArray(values, dims=("t", "latitude", "longitude"), coords={"latitude": src_lat, "longitude": src_lon})
    return src.interp(latitude=box.lats, longitude=box.lons, method="linear").values
