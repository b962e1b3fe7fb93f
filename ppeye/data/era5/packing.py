"""How era5.zarr holds its values (``data.store_packing``): float32, or int16 with one scale and
offset per variable.

A full-size batch is 476 day volumes of 1.92 MB as float32; a GPU at bf16 wants 5.6-9.4 GB/s of
them. ``int16`` halves the bytes read and decoded and folds the decoding into the normalisation:
the model's input ``(value - mean) / std`` is ``q * (scale / std) + (offset - mean) / std``, two
passes from the stored integers straight into the float32 batch (bench/bench_loader.py measures it).

The range of each variable is its physical range (``values.PLAUSIBLE``, the range every converted
value is checked against, widened by that check's tolerance) in the store's units, fixed before
any month is converted: nothing is clipped, months converted later share the scale, and the step
``(hi - lo) / 65534`` is at or below ERA5-Land's own GRIB packing step for the temperatures and
pressure (e.g. 0.0027 K against 0.0020 K: an error of at most half a step, 0.0013 K).
-32768 marks a value never written (a day not converted yet; ``valid`` says which days hold data).
"""
import numpy as np

from ...core.errors import ConfigError, DataError
from .values import PLAUSIBLE, UNIT_CONVERSIONS

PACKINGS = ("float32", "int16")
FILL = -32768
LEVELS = 65534                 # codes -32767..32767


def check_packing(name):
    if name not in PACKINGS:
        raise ConfigError(f"data.store_packing must be one of {', '.join(PACKINGS)}, got {name!r}")
    return name


def unwritten(shape, chunks, packed):
    """The store's weather before any month is written (dask): -32768 codes, or float32 NaN."""
    import dask.array as da

    if packed:
        return da.full(shape, FILL, dtype=np.int16, chunks=chunks)
    return da.full(shape, np.nan, dtype=np.float32, chunks=chunks)


def mark_packed(ds, variables):
    """The skeleton ``ds`` of an int16 store: xarray reads -32768 as missing, and the per-variable
    scale and offset (which ``ppeye.data.store`` applies) go into the attributes."""
    ds["weather"].encoding["_FillValue"] = FILL
    ds["weather"].attrs["units"] = "int16 codes: value = code * packing.scale + packing.offset, per variable"
    ds.attrs["packing"] = Packing.for_variables(variables).attrs()
    return ds


class Packing:
    """Per-variable ``offset`` and ``scale`` (store units) of an int16 store."""

    def __init__(self, variables, offset, scale):
        self.variables = list(variables)
        self.offset = np.asarray(offset, np.float64)
        self.scale = np.asarray(scale, np.float64)

    @classmethod
    def for_variables(cls, variables):
        """The packing of ``variables`` (``Variable`` records) from their physical ranges."""
        lo, hi = [], []
        for var in variables:
            a, b = PLAUSIBLE[var.short]
            tol = 2e-6 * max(1.0, abs(b - a))                   # check_plausible lets 1e-6 of the range pass
            _, factor, shift = UNIT_CONVERSIONS.get((var.units, var.accumulated), (var.units, 1.0, 0.0))
            lo.append((a - tol) * factor + shift)
            hi.append((b + tol) * factor + shift)
        lo, hi = np.array(lo), np.array(hi)
        return cls([v.short for v in variables], (lo + hi) / 2, (hi - lo) / LEVELS)

    def attrs(self):
        return {"dtype": "int16", "fill": FILL, "variables": self.variables,
                "offset": self.offset.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_attrs(cls, attrs, path):
        try:
            if attrs["dtype"] != "int16" or int(attrs["fill"]) != FILL:
                raise ValueError(f"dtype {attrs['dtype']!r}, fill {attrs['fill']!r}")
            return cls(attrs["variables"], attrs["offset"], attrs["scale"])
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{path}: its packing attributes are not ppeye's int16 packing ({e})") from None

    def pack(self, weather, label):
        """``weather`` ``[..., C, D, H, W]`` float (NaN: no value) as int16 codes (NaN -> -32768); a
        value outside its variable's range is an error naming the variable, never clipped."""
        offset, scale = self.offset.reshape(-1, 1, 1, 1), self.scale.reshape(-1, 1, 1, 1)
        with np.errstate(invalid="ignore"):
            q = np.round((weather - offset) / scale)
            outside = np.abs(q) > LEVELS // 2
        if outside.any():
            c = int(np.nonzero(outside.reshape(-1, *outside.shape[-4:]).any(axis=(0, 2, 3, 4)))[0][0])
            lo, hi = self.offset[c] - 32767 * self.scale[c], self.offset[c] + 32767 * self.scale[c]
            raise DataError(f"{label} {self.variables[c]}: {int(outside.sum())} values outside the int16 packing range "
                            f"{lo:.6g}..{hi:.6g} (data.store_packing: int16)")
        return np.where(np.isnan(q), FILL, q).astype(np.int16)

    def unpack(self, codes, axis=-4):
        """Store codes back to float64 values in store units (-32768 -> NaN); ``axis``: the variables'."""
        shape = [1] * codes.ndim
        shape[axis] = len(self.variables)
        out = codes.astype(np.float64) * self.scale.reshape(shape) + self.offset.reshape(shape)
        out[codes == FILL] = np.nan
        return out
