#!/usr/bin/env python
"""Data pipeline benchmarks (printed, not asserted):

1. window assembly: full-size 365-day windows (C x 24 x 20 x 20) per second from era5.zarr
   vs from the raw NetCDF files per sample, in the same run;
2. bytes read per sample at batch 16 with the site/date grouping sampler vs random batches;
3. conversion throughput (MB of raw input per second) and peak memory for 3 vs 12 months,
   each in a fresh process (memory must not grow with the number of months).

    python bench/bench_data.py [--variables 50] [--samples 3]

Makes its own synthetic data for one site (Manchester) in a temporary directory.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import ppeye  # noqa: E402
from ppeye.data.era5.convert import Spec, convert_era5, convert_month, month_files  # noqa: E402
from ppeye.data.store import Era5Store  # noqa: E402
from ppeye.data.synthetic import make_synthetic  # noqa: E402


def config(tmp, n_vars, end="2020-01-31", extra=()):
    from ppeye.data.era5.variables import VARIABLES

    names = ",".join(v.short for v in VARIABLES[:n_vars]) if n_vars < 50 else ",".join(v.short for v in VARIABLES)
    return ppeye.load_config(os.path.join(ROOT, "configs", "full.yaml"), [
        "data.sites=[Manchester]", f"data.variables=[{names}]", "data.start_date=2019-01-01", f"data.end_date={end}",
        "data.norm_period=[2019-01-01, 2019-12-31]", "synthetic.num_participants=200", "synthetic.num_features=16",
        "data.num_features=16", f"data.era5_raw_dir={tmp}/raw/era5", f"data.ukb_table={tmp}/raw/ukb.csv",
        f"data.work_dir={tmp}/work", "synthetic.signals.event.lags=[30, 90]", *extra])


def raw_window(cfg, index_date, T):
    """The naive path: open every month file the window touches and cut the box, per sample."""
    import pandas as pd

    spec = Spec(cfg)
    files = month_files(spec.raw_dir)
    first = pd.Timestamp(index_date) - pd.Timedelta(days=T)
    days = []
    for period in pd.period_range(first, pd.Timestamp(index_date) - pd.Timedelta(days=1), freq="M"):
        nxt = period + 1
        weather, _, _, _ = convert_month(period.year, period.month, files[(period.year, period.month)],
                                         files.get((nxt.year, nxt.month)), spec)
        dates = pd.date_range(max(period.start_time, spec.start), periods=weather.shape[1], freq="D")
        keep = (dates >= first) & (dates < pd.Timestamp(index_date))
        days.append(weather[0, keep])
    return np.concatenate(days)


def convert_peak(cfg_args):
    """Convert in a fresh process; returns (seconds, peak RSS MB) printed by the child."""
    code = (
        "import sys, time, resource; sys.path.insert(0, %r)\n"
        "sys.argv = %r\n"
        "import bench_data as b; cfg = b.config(sys.argv[1], int(sys.argv[2]), extra=sys.argv[3:])\n"
        "t = time.time(); b.convert_era5(cfg)\n"
        "print(time.time() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    ) % (os.path.dirname(os.path.abspath(__file__)), ["x", *cfg_args])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(out.stderr)
    seconds, peak = out.stdout.split()[-2:]
    return float(seconds), float(peak)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variables", type=int, default=50)
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(tmp, args.variables)
        t0 = time.time()
        gt = make_synthetic(cfg, f"{tmp}/raw")
        print(f"synthetic: 13 months, {args.variables} variables, {gt['files']['era5_megabytes']} MB raw in {time.time() - t0:.0f} s")

        # 3. conversion throughput and memory versus months (fresh processes)
        for months, end in ((3, "2019-03-31"), (12, "2019-12-31")):
            work = f"{tmp}/work{months}"
            seconds, peak = convert_peak([tmp, str(args.variables), f"data.end_date={end}", f"data.work_dir={work}"])
            raw_mb = sum(os.path.getsize(os.path.join(r, f)) for m in range(1, months + 1)
                         for r, _, fs in os.walk(f"{tmp}/raw/era5/2019/{m:02d}") for f in fs) / 2**20
            print(f"conversion, {months:2d} months: {seconds:6.1f} s, {raw_mb / seconds:5.1f} MB/s of raw input, "
                  f"peak RSS {peak:6.0f} MB")
        convert_era5(cfg)
        store = Era5Store(f"{tmp}/work/era5.zarr")
        T = 365
        index_dates = ["2020-01-10", "2020-01-20", "2020-01-25", "2020-01-28", "2020-01-31"][: args.samples]

        # 1. window assembly, zarr vs raw per sample
        def window_days(date):
            end = int(store.day_index([np.datetime64(date)])[0])
            return np.arange(end - T, end)

        # steady-state throughput: each path is warmed up once (imports, metadata, codecs), then timed
        store.read(0, window_days(index_dates[-1]))
        t0 = time.time()
        for d in index_dates:
            zarr_window = store.read(0, window_days(d))
        zarr_rate = len(index_dates) / (time.time() - t0)
        raw_window(cfg, index_dates[-1], 31)
        t0 = time.time()
        raw = raw_window(cfg, index_dates[0], T)
        raw_rate = 1 / (time.time() - t0)
        reference = store.read(0, window_days(index_dates[0]))
        same = np.allclose((raw - store.mean[None]) / store.std[None], reference, atol=1e-3)
        mb = zarr_window.nbytes / 2**20
        print(f"window assembly, warm ({T} x {tuple(store.shape)} = {mb:.0f} MB per sample): era5.zarr "
              f"{zarr_rate:.2f} samples/s, raw NetCDF {raw_rate:.3f} samples/s, ratio {zarr_rate / raw_rate:.0f}x "
              f"(same values: {same})")

    # 2. bytes read per sample, grouped vs random batches, on the demo pipeline if it was built
    demo = ppeye.load_config(os.path.join(ROOT, "configs", "demo.yaml"))
    if os.path.exists(os.path.join(demo.data.work_dir, "cohort_imputed.parquet")):
        from ppeye.data.dataset import OnsetDataset, SiteDateBatchSampler

        ds = OnsetDataset(demo, "train")
        volume = int(np.prod(ds.store.shape)) * 4
        grouped = [len({(ds.site[i], d) for i in b for d in ds[i]["days"]}) for b in SiteDateBatchSampler(ds, 16)]
        rng = np.random.default_rng(0)
        random = [len({(ds.site[i], d) for i in rng.choice(len(ds), 16, replace=False) for d in ds[i]["days"]})
                  for _ in range(len(grouped))]
        expanded = 16 * ds.T
        print(f"bytes per sample at batch 16 (demo, {volume / 1024:.0f} KB per volume): grouped "
              f"{np.mean(grouped) * volume / 16 / 2**20:.2f} MB, random {np.mean(random) * volume / 16 / 2**20:.2f} MB, "
              f"no sharing {expanded * volume / 16 / 2**20:.2f} MB; grouped reads {expanded / np.mean(grouped):.1f}x "
              f"less than no sharing and {np.mean(random) / np.mean(grouped):.1f}x less than random batches")
    else:
        print("bytes per sample: build the demo pipeline first (make demo)")


if __name__ == "__main__":
    main()
