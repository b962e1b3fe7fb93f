#!/usr/bin/env python
"""The weather loader against a GPU's appetite (printed, not asserted; issue 27).

At full size a grouped batch is 476 day volumes of 50 x 24 x 20 x 20 float32 (1.92 MB each,
914 MB), and one GPU at bf16 consumes 5.6-9.4 GB/s of them. This measures what one loader
process delivers: GB/s of **assembled, normalised float32 day volumes** (runs of consecutive days
read from the store, decoded and normalised into the batch), for candidate store encodings
against today's in the same run, with 1, 2 and 4 worker processes, the store's size on disk and
the precision each encoding loses, in the variables' units and against the ERA5-Land source's
own precision (the GRIB packing step of the real file, its smallest gap between values).

The volumes are **real ERA5-Land** values (``../shared/data/era5/era5land_sp_land_32x32_20220101.nc``:
14 variables, 24 hours, 0.1 deg): each day and channel is a 20 x 20 crop at a random offset of one
of the 14 variables at a random hour shift, with a smooth day anomaly put back on that variable's
GRIB lattice (accumulations: hourly amounts scaled by a day factor), in era5.zarr's units, so values
keep ERA5's bit patterns and no two days repeat byte runs (which would flatter compression).
Encodings (zarr format 2, chunks of ``--chunk_days`` days as era5.zarr has; Blosc lz4 level 5 with
byte shuffle is what xarray writes era5.zarr with):

* ``today``: float32, Blosc lz4, read by ``Era5Store.read_normalised`` (decode, subtract, multiply);
* ``f32_raw``: float32 uncompressed; ``f32_zstd1``: float32, zstd level 1;
* ``int16 (store_packing)``: ``data.store_packing: int16`` as shipped (ppeye/data/era5/packing.py:
  one scale per variable over its physical range, Blosc lz4), read by the same
  ``Era5Store.read_normalised`` (``code * a + b`` straight into float32); ``i16_raw`` and
  ``i16_zstd1``: the same codes uncompressed or with Blosc zstd level 1;
* ``f16_norm``: the normalised values as float16, uncompressed (one conversion pass).

Blosc runs single-threaded in every worker (``numcodecs.blosc.set_nthreads(1)``), as it must in
DataLoader workers that share the cores.

    python bench/bench_loader.py [--days 96] [--chunk_days 8] [--run_days 28] [--seconds 4]
"""
import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SOURCE = os.path.join(ROOT, "..", "shared", "data", "era5", "era5land_sp_land_32x32_20220101.nc")
C, D, H, W = 50, 24, 20, 20


def source_step(field):
    """The GRIB packing step of one variable in the real file: per hourly field (one GRIB message),
    the smallest gap between its distinct values; the median over the hours."""
    gaps = []
    for hour in field:
        values = np.unique(hour[~np.isnan(hour)])
        diffs = np.diff(values)
        if len(diffs) and (diffs > 0).any():
            gaps.append(diffs[diffs > 0].min())
    return float(np.median(gaps))


def real_volumes(days, seed=0):
    """``[days, C, D, H, W]`` float32 volumes of real ERA5-Land values (see the module), and per
    channel its variable's name, whether it is accumulated and its source step."""
    import xarray as xr

    from ppeye.data.era5.variables import BY_SHORT, VARIABLES

    accumulated = {v.short for v in VARIABLES if v.accumulated}
    ds = xr.open_dataset(SOURCE)
    names = [v for v in ds.data_vars if float(ds[v].std()) > 0]          # sd: constant over the crop
    fields = {v: ds[v].values.astype(np.float64) for v in names}
    step = {v: source_step(fields[v]) for v in names}
    for v in accumulated & set(names):    # hourly amounts, as the store holds (the file: since 00 UTC, whose own
        acc = fields[v]                     # step holds the day before's total)
        hourly = np.diff(acc, axis=0, prepend=acc[:1])
        hourly[0], hourly[1] = acc[1], acc[1]
        sign = BY_SHORT[v].sign             # packing noise of the wrong sign is zero, as ppeye's de-accumulation does
        fields[v] = np.clip(hourly, 0, None) if sign > 0 else np.clip(hourly, None, 0) if sign < 0 else hourly
    rng = np.random.default_rng(seed)
    out = np.empty((days, C, D, H, W), np.float32)
    channel_var = [names[c % len(names)] for c in range(C)]
    yy, xx = np.meshgrid(np.linspace(0, 1, H), np.linspace(0, 1, W), indexing="ij")
    for c, v in enumerate(channel_var):
        f, sd = fields[v], float(np.nanstd(fields[v]))
        for d in range(days):
            y0, x0, shift = rng.integers(0, f.shape[1] - H + 1), rng.integers(0, f.shape[2] - W + 1), rng.integers(D)
            crop = np.roll(f[:, y0:y0 + H, x0:x0 + W], shift, axis=0)
            if v in accumulated:                       # a wetter or sunnier day: same sign, same zeros
                out[d, c] = crop * np.exp(rng.normal(0, 0.3))
            else:                                      # a smooth anomaly, back on the GRIB lattice
                a, b, phase = rng.normal(0, 0.3 * sd), rng.normal(0, 0.1 * sd), rng.uniform(0, 2 * np.pi)
                smooth = a + b * np.sin(2 * np.pi * (yy + xx) + phase)
                out[d, c] = np.round((crop + smooth) / step[v]) * step[v]
    return (np.nan_to_num(out), channel_var, np.array([v in accumulated for v in channel_var]),
            np.array([step[v] for v in channel_var]))


def to_store_units(volumes, names, step):
    """File units -> era5.zarr's (``UNIT_CONVERSIONS``: K -> degC, Pa -> hPa, accumulations per hour ->
    mm h-1 and W m-2), in place; the source steps converted alike."""
    from ppeye.data.era5.values import UNIT_CONVERSIONS
    from ppeye.data.era5.variables import BY_SHORT

    step = step.copy()
    for c, v in enumerate(names):
        var = BY_SHORT[v]
        _, factor, shift = UNIT_CONVERSIONS.get((var.units, var.accumulated), (var.units, 1.0, 0.0))
        volumes[:, c] = volumes[:, c] * factor + shift
        step[c] *= factor
    return volumes, step


def encodings():
    from numcodecs import Blosc, Zstd

    lz4 = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)      # what xarray writes era5.zarr with
    return {"today": ("f4", lz4), "f32_raw": ("f4", None), "f32_zstd1": ("f4", Zstd(level=1)),
            "int16 (store_packing)": ("i2", lz4), "i16_raw": ("i2", None),
            "i16_zstd1": ("i2", Blosc(cname="zstd", clevel=1, shuffle=Blosc.SHUFFLE)), "f16_norm": ("f2", None)}


def write_store(path, kind, compressor, volumes, names, mean, std, packing, chunk_days):
    """One era5.zarr-like store of ``volumes`` (``[site=1, day, C, D, H, W]``, with the attributes
    :class:`Era5Store` reads); returns (MB of weather on disk, values decoded back in store units)."""
    import zarr

    group = zarr.open_group(path, mode="w", zarr_format=2)
    attrs = {"identity": {"start_date": "2000-01-01"}, "mean": mean.reshape(-1).tolist(),
             "std": std.reshape(-1).tolist(), "variables": list(names)}
    if kind == "i2":
        data = packing.pack(volumes, "bench")
        back = packing.unpack(data)
        attrs["packing"] = packing.attrs()
    elif kind == "f2":
        data = ((volumes - mean) / std).astype(np.float16)
        back = data.astype(np.float64) * std + mean
    else:
        data, back = volumes, volumes
    group.attrs.update(attrs)
    group.create_array("site", data=np.array([0]))
    group.create_array("valid", data=np.ones((1, len(volumes)), bool))
    arr = group.create_array("weather", shape=(1,) + data.shape, chunks=(1, chunk_days, C, D, H, W),
                             dtype=kind, compressors=compressor, fill_value=0)
    arr[0] = data
    weather = os.path.join(path, "weather")
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(weather) for f in fs)
    return size / 2**20, back


def _worker(args):
    """Read runs of ``run_days`` consecutive days for ``seconds``, decoded and normalised; returns GB of
    float32 output and seconds. float32 and int16 stores go through ``Era5Store.read_normalised``
    itself (the loader's code); float16 holds normalised values and is only converted."""
    path, kind, run_days, seconds, seed = args
    import numcodecs

    from ppeye.data.store import Era5Store

    numcodecs.blosc.set_nthreads(1)
    store = Era5Store(path)
    array = store.group["weather"]
    rng = np.random.default_rng(seed)
    n_days, done, t0 = store.n_days, 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        d0 = int(rng.integers(0, n_days - run_days + 1))
        if kind == "f2":
            out = np.asarray(array[0, d0:d0 + run_days], dtype=np.float32)
        else:
            out = store.read_normalised(0, np.arange(d0, d0 + run_days))
        done += out.nbytes
    return done / 1e9, time.perf_counter() - t0


def throughput(path, kind, run_days, seconds, workers):
    """GB/s of normalised float32 volumes from ``workers`` processes reading at once."""
    jobs = [(path, kind, run_days, seconds, k) for k in range(workers)]
    if workers == 1:
        results = [_worker(jobs[0])]
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            results = pool.map(_worker, jobs)
    return sum(gb / s for gb, s in results)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=96, help="days in each store (1.92 MB each as float32)")
    p.add_argument("--chunk_days", type=int, default=8)
    p.add_argument("--run_days", type=int, default=28, help="consecutive days per read (a window's run)")
    p.add_argument("--seconds", type=float, default=4.0, help="reading time per measurement")
    p.add_argument("--workers", default="1,2,4")
    args = p.parse_args()
    if not os.path.isfile(SOURCE):
        sys.exit(f"{SOURCE} is missing: this benchmark reads real ERA5-Land values from ../shared/data")
    from ppeye.data.era5.packing import Packing
    from ppeye.data.era5.variables import BY_SHORT

    t0 = time.time()
    volumes, names, accumulated, step = real_volumes(args.days)
    volumes, step = to_store_units(volumes, names, step)
    per = (1, C, 1, 1, 1)
    mean = volumes.mean(axis=(0, 2, 3, 4), dtype=np.float64).reshape(per)
    std = volumes.std(axis=(0, 2, 3, 4), dtype=np.float64).reshape(per)
    packing = Packing.for_variables([BY_SHORT[v] for v in names])
    print(f"{args.days} real ERA5-Land day volumes of {C} x {D} x {H} x {W} ({volumes[0].nbytes / 2**20:.2f} MB each) "
          f"built in {time.time() - t0:.0f} s; {os.cpu_count()} cores; runs of {args.run_days} days, "
          f"chunks of {args.chunk_days} days")
    workers = [int(w) for w in args.workers.split(",")]
    tmp = tempfile.mkdtemp(prefix="bench_loader_")
    rows, errors = [], {}
    try:
        for name, (kind, compressor) in encodings().items():
            path = os.path.join(tmp, "store.zarr")
            mb, back = write_store(path, kind, compressor, volumes, names, mean, std, packing, args.chunk_days)
            err = np.abs(back - volumes.astype(np.float64)).max(axis=(0, 2, 3, 4))
            errors[kind] = err
            ratio = float(np.max((err / step)[~accumulated]))
            norm_err = float(np.max(err / std.reshape(-1)))
            rates = [throughput(path, kind, args.run_days, args.seconds, w) for w in workers]
            rows.append((name, mb, ratio, norm_err, rates))
            shutil.rmtree(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    today = rows[0]
    print("\n| encoding | MB on disk (x today) | worst error / GRIB step (instantaneous) | worst error / sd | "
          + " | ".join(f"GB/s, {w} worker{'s' if w > 1 else ''} (x today)" for w in workers) + " |")
    print("|---|---|---|---|" + "---|" * len(workers))
    for name, mb, ratio, norm_err, rates in rows:
        cells = " | ".join(f"{r:.2f} ({r / t:.1f}x)" for r, t in zip(rates, today[4]))
        print(f"| {name} | {mb:.0f} ({mb / today[1]:.2f}) | {ratio:.2f} | {norm_err:.1e} | {cells} |")
    print("\nPrecision per variable in store units (GRIB step: the real file's packing step; accumulated variables "
          "are float32-limited there):\n\n| variable | sd | GRIB step | int16 worst error | float16 worst error |\n"
          "|---|---|---|---|---|")
    for c in range(len(set(names))):
        grib = "float32" if accumulated[c] else f"{step[c]:.3g}"
        print(f"| {names[c]} | {std.reshape(-1)[c]:.3g} | {grib} | {errors['i2'][c]:.3g} | {errors['f2'][c]:.3g} |")
    print(f"\nA GPU at 5.6-9.4 GB/s needs that many GB/s from its workers; more workers than the {os.cpu_count()} "
          f"cores share them. Total {time.time() - t0:.0f} s.")


if __name__ == "__main__":
    main()
