#!/usr/bin/env python
"""Can Grad-CAM find the planted region when the model is known to use it? (printed, not asserted)

The demo model's own maps mix two questions: whether the trained model reads the planted event
from its region, and whether the explanation method can show where a model reads. This answers
the second alone. It takes a day encoder (``--weights``: the day encoder of
``tools/pretrain_days.py``, ``output/demo_days``, or any run), fits a ridge read-out of the
planted per-day contrast (the event variable inside the planted region minus outside it,
``ppeye.data.synthetic.signals.day_contrast``) on its day embeddings, and wraps encoder + read-out
as a model whose logit *is* that read-out. Then, through ``ppeye.explain.GradCAM3D`` exactly as
``tools/visualize.py`` runs it, for every layer and method: the energy ratio (share of the map's
mass inside the planted region over the region's area share; 1 = chance) on the held-out days
with the strongest planted contrast (top quarter), per day (median) and of their summed map,
and the pointing game (share of days whose map peaks inside the region; chance = area share).
The last line scores the input's map of the event variable alone (its signed term, positive
part), the map ``tools/visualize.py`` scores on the demo model.

    python bench/bench_cam.py --weights output/demo_days

Needs the demo data and day encoder (``make demo``). About a minute on 2 cores.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", default=os.path.join(ROOT, "configs", "demo.yaml"), help="the data's config")
    p.add_argument("--weights", default="output/demo_days", help="a day-encoder run or a trained run")
    p.add_argument("--share", type=float, default=0.25, help="share of the held-out days scored (strongest contrast)")
    args = p.parse_args()
    import ppeye
    from bench_day_encoder import corr, embed, ridge, site_days
    from ppeye.core.paddle_env import import_paddle
    from ppeye.data.store import Era5Store
    from ppeye.engine.checkpoint import load_pretrained
    from ppeye.explain.gradcam import (METHODS, GradCAM3D, cam_layers, person_maps, pointing_game, region_energy_ratio,
                                       window_sum)

    paddle = import_paddle()
    cfg = ppeye.load_config(args.config)
    work = cfg["data"]["work_dir"]
    gt_path = os.path.join(os.path.dirname(cfg["data"]["era5_raw_dir"].rstrip("/")), "ground_truth.json")
    run_cfg_path = os.path.join(args.weights, "config.yaml")
    for path in (gt_path, os.path.join(work, "era5.zarr"), run_cfg_path):
        if not os.path.exists(path):
            raise SystemExit(f"bench_cam needs {path}: run `make demo` first (or pass --weights / -c)")
    with open(gt_path) as f:
        gt = json.load(f)
    region, variable = gt["event"]["region_cells"], gt["event"]["variable"]
    rows, cols = region["rows"], region["cols"]
    store = Era5Store(os.path.join(work, "era5.zarr"))
    cohort = pd.read_parquet(os.path.join(work, "cohort.parquet"), columns=["site", "split"])
    external = set(cohort.loc[cohort["split"] == "external", "site"])
    x, y, day = site_days(store, [store.site_position[s] for s in store.sites if s not in external], region, variable)
    held = day % 5 == 0

    model = ppeye.build_model(ppeye.load_config(run_cfg_path))
    load_pretrained(model, args.weights)
    e = embed(model, x, paddle)
    read = ridge(e[~held], y[~held])
    # the ridge as one linear map of the raw embedding: read(q) = q @ w + b
    w = read(np.eye(e.shape[1])) - read(np.zeros((1, e.shape[1])))
    print(f"{args.weights}: ridge read-out of the planted day contrast, held-out days r = {corr(read(e[held]), y[held]):.3f}")

    class ReadOut(paddle.nn.Layer):
        """Encoder + read-out with OnsetNet's call signature: each person's logit (the same for
        the four diseases) is the read-out summed over their window's days."""

        def __init__(self, net, weight):
            super().__init__()
            self.backbone, self.day_proj = net.backbone, net.day_proj
            self.register_buffer("weight", paddle.to_tensor(weight.astype("float32")[:, None]))

        def forward(self, weather_unique, day_index, tab, tab_mask, return_explain=False):
            per_day = paddle.matmul(self.day_proj(self.backbone(weather_unique)), self.weight)[:, 0]
            per_person = paddle.gather(per_day, day_index.reshape([-1])).reshape(day_index.shape).sum(1)
            logits = paddle.tile(per_person[:, None], [1, 4])
            return (logits, {}) if return_explain else logits

    probe = ReadOut(model, w)
    scored = np.nonzero(held)[0]
    scored = scored[np.argsort(-y[scored])[: max(1, int(len(scored) * args.share))]]
    print(f"scored: the {len(scored)} held-out days with the strongest planted contrast; region rows {rows}, cols {cols} "
          f"(area share {gt['event']['region_area_share']:.3f})")
    print(f"{'layer':20s} {'map':9s} " + " ".join(f"{m + ' (day / sum / point)':32s}" for m in METHODS))
    t0 = time.perf_counter()
    vi, event_line = store.variables.index(variable), ""
    for layer in cam_layers(model):
        cells = []
        for method in METHODS:
            cam = GradCAM3D(probe, layer, method=method, day_weighting="gradient")
            maps, event_maps = [], []
            for i in range(0, len(scored), 32):
                b = scored[i : i + 32]
                one_day = np.arange(len(b))[:, None]
                r = cam(paddle.to_tensor(x[b]), paddle.to_tensor(one_day), None, None, diseases=(0,))
                maps.append(person_maps(r["cam"], one_day, r["day_weights"])[0][:, 0])
                if "by_variable" in r:
                    event_maps.append(window_sum(r["by_variable"], one_day, r["day_weights"])[:, 0, vi])
            maps = np.concatenate(maps)
            if event_maps and method == "hirescam":
                ev = np.concatenate(event_maps)
                event_line = (f"input, {method}, the event variable's own signed map ({variable}; positive part): "
                              f"{np.nanmedian(region_energy_ratio(np.clip(ev, 0, None), rows, cols)):.2f} / "
                              f"{region_energy_ratio(np.clip(ev.sum(0), 0, None), rows, cols):.2f} / "
                              f"{pointing_game(ev, rows, cols):.2f}")
            ratio = region_energy_ratio(maps, rows, cols)
            cells.append(f"{np.nanmedian(ratio):5.2f} / {region_energy_ratio(maps.sum(0), rows, cols):5.2f} / "
                         f"{pointing_game(maps, rows, cols):4.2f}{'':12s}")
        shape = "x".join(str(v) for v in cam.map_shape)
        print(f"{layer:20s} {shape:9s} " + " ".join(cells))
    print(event_line)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
