#!/usr/bin/env python
"""Throughput of the synthetic generator: weather MB/s and table rows/s (printed, not asserted).

    python bench/bench_synthetic.py [--participants 20000] [--features 424]
"""
import argparse
import os
import sys
import tempfile
import resource
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ppeye  # noqa: E402
from ppeye.data.synthetic import make_synthetic  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(label, overrides):
    cfg = ppeye.load_config(os.path.join(ROOT, "configs", "demo.yaml"), overrides)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        gt = make_synthetic(cfg, os.path.join(tmp, "raw"))
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        table_mb = os.path.getsize(os.path.join(tmp, "raw", gt["files"]["table"])) / 2**20
    mb = gt["files"]["era5_megabytes"]
    n = gt["counts"]["participants"]
    print(f"{label:<28} {seconds:7.1f} s  weather {mb:8.1f} MB ({mb / gt['seconds']['weather']:6.1f} MB/s)  "
          f"table {n} x {gt['counts']['features']} ({table_mb:.1f} MB)  process peak RSS so far {peak:6.0f} MB")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--participants", type=int, default=20000)
    parser.add_argument("--features", type=int, default=424)
    args = parser.parse_args()
    run("demo config", [])
    run("demo weather, 3 months", ["data.end_date=2019-03-31", "synthetic.num_participants=100"])
    run(f"table {args.participants} x {args.features}", [
        "data.end_date=2019-03-31", "data.sites=[Manchester]", "data.variables=[t2m, ssrd]",
        f"synthetic.num_participants={args.participants}", f"synthetic.num_features={args.features}",
        "data.num_features=424"])


if __name__ == "__main__":
    main()
