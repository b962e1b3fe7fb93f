#!/usr/bin/env python
"""Does the day encoder see the planted event? (printed, not asserted)

The planted weather event is a per-day quantity: the event variable's daily total inside the
planted region minus outside (``ppeye.data.synthetic.signals.day_contrast``). This measures,
on the demo's training centres and on a fresh weather draw (the same config with another
``synthetic.seed``: the same centres, new weather, so no day of it was seen in training):

1. **ceiling**: the config's day encoder (ResNet3D and its projection, freshly initialised)
   trained by squared error on that per-day contrast, ``--passes`` passes over the training
   centres' days (every 5th day held out);
2. **a trained run** (``--weights``, e.g. ``output/demo/compare/weather_only``, or the day
   encoder of ``tools/pretrain_days.py``, ``output/demo_days``): how well a ridge read-out of its
   day embeddings, fitted on the same days, recovers the contrast.

Pearson correlations on the held-out days and on every day of the fresh draw. If (1) is
high and (2) low, the encoder can represent the event and the onset labels did not teach it.

    python bench/bench_day_encoder.py --weights output/demo/compare/weather_only

Needs the demo data (``make demo``); writes the fresh draw to a temporary directory (about
250 MB, 30 s). About 1 minute per pass on 2 cores.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def site_days(store, positions, region, variable):
    """Volumes [N, C, D, H, W] of every valid day at the store positions, their contrast [N] and
    day numbers [N]."""
    from ppeye.data.synthetic.signals import day_contrast

    vi = store.variables.index(variable)
    xs, ys, ds = [], [], []
    for s in positions:
        days = np.nonzero(store.valid[s])[0]
        x = store.read(s, days)
        xs.append(x)
        ys.append(day_contrast(x[:, vi], region))
        ds.append(days)
    return np.concatenate(xs), np.concatenate(ys).astype(np.float32), np.concatenate(ds)


def embed(model, x, paddle, head=None, chunk=128):
    """Day embeddings [N, E] of volumes [N, C, D, H, W] in eval mode (or ``head``'s outputs of them)."""
    model.eval()
    with paddle.no_grad():
        out = []
        for i in range(0, len(x), chunk):
            e = model.encode_days(paddle.to_tensor(x[i : i + chunk]))[0]
            out.append((head(e)[:, 0] if head is not None else e).numpy())
    return np.concatenate(out)


def ridge(x, y, lam=1.0):
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = np.c_[(x - mu) / sd, np.ones(len(x))]
    w = np.linalg.solve(z.T @ z + lam * np.eye(z.shape[1]), z.T @ y)
    return lambda q: np.c_[(q - mu) / sd, np.ones(len(q))] @ w


def corr(a, b):
    return float(np.corrcoef(a, b)[0, 1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", default=os.path.join(ROOT, "configs", "demo.yaml"))
    p.add_argument("--weights", help="a trained run (its config.yaml builds the model)")
    p.add_argument("--passes", type=int, default=1, help="passes of the ceiling's training")
    p.add_argument("--fresh_seed", type=int, default=7)
    args = p.parse_args()
    import ppeye
    from ppeye.core.paddle_env import import_paddle
    from ppeye.core.seed import seed_everything
    from ppeye.data.era5.convert import convert_era5
    from ppeye.data.store import Era5Store
    from ppeye.data.synthetic import make_synthetic
    from ppeye.engine.checkpoint import load_pretrained

    paddle = import_paddle()
    cfg = ppeye.load_config(args.config)
    if args.weights:
        run_cfg = ppeye.load_config(os.path.join(args.weights, "config.yaml"))
        if not run_cfg["model"].get("weather_branch", True):
            raise SystemExit(f"{args.weights}: a patient-only run (model.weather_branch: false) has no day encoder")
    work = cfg["data"]["work_dir"]
    gt_path = os.path.join(os.path.dirname(cfg["data"]["era5_raw_dir"].rstrip("/")), "ground_truth.json")
    if not (os.path.isfile(gt_path) and os.path.isdir(os.path.join(work, "era5.zarr"))):
        raise SystemExit(f"bench_day_encoder needs the synthetic data of {args.config} ({gt_path} and "
                         f"{work}/era5.zarr): run `make demo` first")
    with open(gt_path) as f:
        gt = json.load(f)
    region, variable = gt["event"]["region_cells"], gt["event"]["variable"]
    store = Era5Store(os.path.join(work, "era5.zarr"))
    cohort = pd.read_parquet(os.path.join(work, "cohort.parquet"), columns=["site", "split"])
    external = set(cohort.loc[cohort["split"] == "external", "site"])
    train_pos = [store.site_position[s] for s in store.sites if s not in external]
    x, y, day = site_days(store, train_pos, region, variable)
    held = day % 5 == 0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fresh_cfg = ppeye.load_config(args.config, [f"synthetic.seed={args.fresh_seed}",
                                                    f"data.era5_raw_dir={tmp}/raw/era5", f"data.work_dir={tmp}/work"])
        make_synthetic(fresh_cfg, os.path.join(tmp, "raw"), log=lambda *a: None)
        convert_era5(fresh_cfg)
        # normalised as the training store, as inference does
        fresh = Era5Store(os.path.join(tmp, "work", "era5.zarr"), norm=(store.mean.ravel(), store.std.ravel()))
        fx, fy, _ = site_days(fresh, range(len(fresh.sites)), region, variable)
        print(f"{len(train_pos)} training centres: {int((~held).sum())} days to fit, {int(held.sum())} held out; "
              f"fresh draw (seed {args.fresh_seed}, {len(fresh.sites)} centres): {len(fy)} days "
              f"(made in {time.perf_counter() - t0:.0f} s)")

        seed_everything(0)
        model = ppeye.build_model(ppeye.load_config(args.config, ["model.patient_branch=false"]))
        head = paddle.nn.Linear(model.width, 1)
        params = list(model.backbone.parameters()) + list(model.day_proj.parameters()) + list(head.parameters())
        opt = paddle.optimizer.Adam(1e-3, parameters=params, use_multi_tensor=True)
        mu, sd = y[~held].mean(), y[~held].std()
        fit_rows = np.nonzero(~held)[0]
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        for k in range(args.passes):
            model.train()
            order = rng.permutation(fit_rows)
            for i in range(0, len(order), 64):
                b = order[i : i + 64]
                pred = head(model.encode_days(paddle.to_tensor(x[b]))[0])[:, 0]
                loss = ((pred - paddle.to_tensor((y[b] - mu) / sd)) ** 2).mean()
                loss.backward()
                opt.step()
                opt.clear_grad()
            f_held, f_fresh = embed(model, x[held], paddle, head), embed(model, fx, paddle, head)
            print(f"  ceiling, encoder trained on the contrast, pass {k + 1}: held-out days {corr(f_held, y[held]):.3f}, "
                  f"fresh draw {corr(f_fresh, fy):.3f}  ({time.perf_counter() - t0:.0f} s)")

        if args.weights:
            trained = ppeye.build_model(run_cfg)
            load_pretrained(trained, args.weights)   # a whole run, or a day-encoder run (pretrain_days.py)
            e, fe = embed(trained, x, paddle), embed(trained, fx, paddle)
            read = ridge(e[~held], y[~held])
            print(f"  {args.weights}: ridge read-out of its day embeddings: held-out days {corr(read(e[held]), y[held]):.3f}, "
                  f"fresh draw {corr(read(fe), fy):.3f}")


if __name__ == "__main__":
    main()
