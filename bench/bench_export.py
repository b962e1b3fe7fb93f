#!/usr/bin/env python
"""Exported model vs dygraph (printed, not asserted), in the same run, same inputs:

1. latency (median per batch) and throughput (people/s) of the eval-mode forward at batch 1
   and 32: dygraph, Paddle Inference without oneDNN, Paddle Inference with oneDNN;
2. the export's size, float32 vs int8 weights (``--quantize``), and the int8 model's change
   in test ROC-AUC;
3. tools/infer.py end to end (table -> features -> store reads -> predictor -> CSV), rows/s.

Uses the demo run (``make demo``: output/demo and data/demo/work); without it, a freshly
initialised demo model on the demo data if that exists, else stops with a message.

    python bench/bench_export.py [--reps 5] [--threads 2]
"""
import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def median_time(fn, reps):
    fn()                                    # warm-up (oneDNN builds its kernels on the first run)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=os.path.join(ROOT, "configs", "demo.yaml"))
    p.add_argument("--weights", default=os.path.join(ROOT, "output", "demo"))
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.chdir(ROOT)

    import numpy as np
    import pandas as pd

    import ppeye
    from ppeye.core.paddle_env import import_paddle
    from ppeye.data.dataset import OnsetDataset, WeatherCollator
    from ppeye.deploy.export import export_model
    from ppeye.deploy.predictor import create_predictor, run_predictor
    from ppeye.deploy.infer import infer_table
    from ppeye.deploy.sample import scoring_table
    from ppeye.engine.checkpoint import load_weights
    from ppeye.metrics import multilabel_metrics

    paddle = import_paddle()
    cfg = ppeye.load_config(args.config, [f"weights={args.weights}"])
    if not os.path.isdir(args.weights):
        sys.exit(f"{args.weights} does not exist: run `make demo` first (the benchmark uses the demo run)")
    tmp = tempfile.mkdtemp(prefix="bench_export_")
    t = time.perf_counter()
    export_model(cfg, out_dir=os.path.join(tmp, "fp32"))
    t_export = time.perf_counter() - t
    t = time.perf_counter()
    export_model(cfg, out_dir=os.path.join(tmp, "int8"), quantize=True)
    t_quant = time.perf_counter() - t
    print(f"export {t_export:.1f} s (int8 weights: {t_quant:.1f} s), {args.threads} threads\n")

    model = ppeye.build_model(cfg)
    load_weights(model, args.weights)
    model.eval()
    ds = OnsetDataset(cfg, "test")
    order = np.lexsort((ds.start, ds.site))          # people of one site and nearby dates, as infer batches them
    collate = WeatherCollator(ds.store)
    names = ["weather_unique", "day_index", "tab", "tab_mask"]
    print("1. eval forward, same inputs (median of", args.reps, "runs)")
    print(f"   {'batch':>5} {'volumes':>7} | {'dygraph':>17} | {'Inference':>17} | {'Inference+oneDNN':>17} | speed-up")
    for batch in (1, 32):
        b = collate([ds[int(i)] for i in order[:batch]])
        arrays = [b[n] for n in names]
        with paddle.no_grad():
            t_dy = median_time(lambda: model(*[paddle.to_tensor(a) for a in arrays]), args.reps)
        row = [t_dy]
        for onednn in (False, True):
            pred = create_predictor(os.path.join(tmp, "fp32"), "cpu", onednn=onednn, threads=args.threads)
            row.append(median_time(lambda: run_predictor(pred, arrays), args.reps))
        cells = " | ".join(f"{x * 1000:7.1f} ms {batch / x:5.0f}/s" for x in row)
        print(f"   {batch:>5} {len(arrays[0]):>7} | {cells} | {row[0] / row[2]:.1f}x (oneDNN), {row[0] / row[1]:.1f}x")

    size = {k: os.path.getsize(os.path.join(tmp, k, "model.pdiparams")) for k in ("fp32", "int8")}
    table = os.path.join(tmp, "test.csv")
    n = scoring_table(cfg, "test", table)
    era5 = os.path.join(cfg["data"]["work_dir"], "era5.zarr")
    cohort = pd.read_parquet(os.path.join(cfg["data"]["work_dir"], "cohort.parquet"))
    labels = cohort[cohort["split"] == "test"][[f"label_{d}" for d in ("glaucoma", "cataract", "amd", "dr")]]
    aucs, rates = {}, {}
    for kind in ("fp32", "int8"):
        t = time.perf_counter()
        s = infer_table(os.path.join(tmp, kind), table, era5=era5, output=os.path.join(tmp, f"{kind}.csv"))
        rates[kind] = s["scored"] / (time.perf_counter() - t)
        risks = pd.read_csv(os.path.join(tmp, f"{kind}.csv"))
        col = "model_risk_" if "model_risk_amd" in risks else "risk_"
        probs = risks[[f"{col}{d}" for d in ("glaucoma", "cataract", "amd", "dr")]].to_numpy()
        aucs[kind] = multilabel_metrics(labels.to_numpy(), probs)["macro_roc_auc"]
    print(f"\n2. export size (model.pdiparams): fp32 {size['fp32'] / 1e6:.2f} MB, int8 weights "
          f"{size['int8'] / 1e6:.2f} MB (stored as float32: Paddle Inference on CPU cannot run Paddle's "
          f"int8 program, see ppeye/deploy/quantize.py)")
    print(f"   test macro ROC-AUC ({n} people, model alone): fp32 {aucs['fp32']:.4f}, int8 weights "
          f"{aucs['int8']:.4f} (change {aucs['int8'] - aucs['fp32']:+.4f})")
    print(f"\n3. tools/infer.py end to end on {n} rows: {rates['fp32']:.0f} rows/s (fp32, oneDNN, incl. "
          f"model loading, features, store reads, CSV)")


if __name__ == "__main__":
    main()
