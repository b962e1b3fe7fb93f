#!/usr/bin/env python
"""Model benchmarks (printed, not asserted):

1. parameter counts per branch of ``configs/full.yaml``;
2. shared-day encoding: distinct (site, day) volumes per batch of 16 from the site/date
   grouping sampler on a study-like cohort, vs the B x T volumes of the expanded batch
   (full T = 365 and demo T = 56), and the measured forward+backward time of both forms
   of a real grouped batch at demo size, in the same run;
3. full-size model: forward+backward time and peak memory per volume of the ResNet3D-18
   (50 x 24 x 20 x 20) and per sample for everything after it (T = 365, width 512), each in a
   fresh process, combined into a per-training-sample figure (with and without recompute);
4. MoE (4 experts, top-2) tokens per second vs a dense FFN of the same active size;
5. demo model, eval forward of a batch of 16: dygraph vs Paddle Inference without and with
   oneDNN (exported with ``paddle.jit.save``), and the largest output difference.

    python bench/bench_model.py [--quick]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import ppeye  # noqa: E402
from ppeye.core.paddle_env import import_paddle  # noqa: E402
from ppeye.data.dataset import SiteDateBatchSampler  # noqa: E402

paddle = import_paddle()
FULL = os.path.join(ROOT, "configs", "full.yaml")
DEMO = os.path.join(ROOT, "configs", "demo.yaml")


def _status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak():
    """Current resident MB, after resetting the peak (Linux: /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _status_mb("VmRSS")


def rss_peak_mb():
    return _status_mb("VmHWM") if os.path.exists("/proc/self/status") else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, reps):
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def grouped_batches(window, batch=16, people=20000, sites=22, years=10, seed=0):
    """Distinct volumes per grouped batch: people spread over sites and index dates like UKB."""
    rng = np.random.default_rng(seed)
    ds = SimpleNamespace(site=rng.integers(0, sites, people), start=rng.integers(0, 365 * years, people), T=window)
    sampler = SiteDateBatchSampler(ds, batch, shuffle=True, drop_last=True, seed=seed)
    unique = [len({(ds.site[i], ds.start[i] + d) for i in b for d in range(window)}) for b in sampler]
    return ds, list(sampler), float(np.mean(unique))


def part_counts():
    model = ppeye.build_model(ppeye.load_config(FULL))
    print("1. parameters of configs/full.yaml (trainable)")
    for name, n in model.parameter_counts().items():
        print(f"   {name:<12} {n / 1e6:8.2f} M")


def part_shared(reps):
    print("2. shared-day encoding at batch 16 (site/date grouping sampler, 20,000 people, 22 sites, 10 years)")
    for window in (365, 56):
        _, _, u = grouped_batches(window)
        print(f"   T={window:<4} distinct volumes per batch {u:7.1f} vs expanded {16 * window:5d}: "
              f"{16 * window / u:5.1f}x less ResNet work")
    cfg = ppeye.load_config(DEMO)
    s = ppeye.input_shapes(cfg)
    ds, batches, _ = grouped_batches(s["T"])
    b = batches[0]
    keys = sorted({(ds.site[i], ds.start[i] + d) for i in b for d in range(s["T"])})
    row = {k: j for j, k in enumerate(keys)}
    day_index = np.array([[row[(ds.site[i], ds.start[i] + d)] for d in range(s["T"])] for i in b], dtype="int64")
    rng = np.random.default_rng(0)
    weather = paddle.to_tensor(rng.normal(size=(len(keys), s["C"], s["D"], s["H"], s["W"])).astype("float32"))
    tab = paddle.to_tensor(rng.normal(size=(16, s["F"])).astype("float32"))
    di = paddle.to_tensor(day_index)
    paddle.seed(0)
    model = ppeye.build_model(cfg)
    model.train()
    expanded = paddle.gather(weather, di.reshape([-1])).reshape([16, s["T"], s["C"], s["D"], s["H"], s["W"]])

    def step(w, d):
        model.clear_gradients()
        model(w, d, tab).sum().backward()

    t_shared = timed(lambda: step(weather, di), reps)
    t_expanded = timed(lambda: step(expanded, None), max(1, reps // 2))
    print(f"   demo model, one grouped batch ({len(keys)} distinct vs {16 * s['T']} volumes), forward+backward: "
          f"shared {t_shared:.2f} s, expanded {t_expanded:.2f} s: {t_expanded / t_shared:.1f}x faster")


def child_resnet(recompute, reps):
    cfg = ppeye.load_config(FULL, [f"model.backbone.recompute={str(recompute).lower()}"])
    s = ppeye.input_shapes(cfg)
    from ppeye.modeling.backbones.resnet3d import ResNet3D

    bb = {k: v for k, v in cfg.model.backbone.items() if k != "type"}
    net = ResNet3D(s["C"], **bb)
    net.train()
    n = 4
    x = paddle.randn([n, s["C"], s["D"], s["H"], s["W"]])
    x.stop_gradient = False          # as inside OnsetNet, where the stem's output needs grad
    base = reset_peak()

    def step():
        net.clear_gradients()
        net(x).sum().backward()

    t = timed(step, reps)
    return {"seconds": t / n, "mb": (rss_peak_mb() - base) / n}


def child_head(recompute, reps):
    cfg = ppeye.load_config(FULL, [f"model.temporal.transformer.recompute={str(recompute).lower()}"])
    s = ppeye.input_shapes(cfg)
    model = ppeye.build_model(cfg)
    model.train()
    b, u = 2, 400
    days = paddle.randn([u, model.width])
    days.stop_gradient = False
    di = paddle.randint(0, u, [b, s["T"]])
    tab = paddle.randn([b, s["F"]])
    base = reset_peak()

    def step():
        model.clear_gradients()
        logits, ex = model.forward_days(days, di, tab, return_explain=True)
        (logits.sum() + ex["aux_loss"]).backward()

    t = timed(step, reps)
    return {"seconds": t / b, "mb": (rss_peak_mb() - base) / b}


def run_child(name, recompute, reps):
    out = subprocess.run([sys.executable, __file__, "--child", name, "--reps", str(reps)]
                         + (["--recompute"] if recompute else []), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def part_full(reps):
    print("3. full-size model (configs/full.yaml), forward+backward, 2 CPU threads, fresh process each")
    _, _, u365 = grouped_batches(365)
    per_sample_volumes = u365 / 16
    for recompute in (False, True):
        r = run_child("resnet", recompute, reps)
        h = run_child("head", recompute, reps)
        label = "recompute on " if recompute else "recompute off"
        print(f"   [{label}] ResNet3D-18 per volume: {r['seconds']:.2f} s, peak +{r['mb']:.0f} MB; "
              f"after the ResNet per sample: {h['seconds']:.2f} s, peak +{h['mb']:.0f} MB")
        total_t = per_sample_volumes * r["seconds"] + h["seconds"]
        total_mb = per_sample_volumes * r["mb"] + h["mb"]
        print(f"   [{label}] per training sample at batch 16 ({per_sample_volumes:.1f} volumes): "
              f"{total_t:.1f} s, ~{total_mb / 1024:.2f} GB of activations")


def part_moe(reps):
    from ppeye.modeling.layers.moe import FeedForward, MoE

    d, hidden, n = 512, 2048, 4096
    paddle.seed(0)
    moe = MoE(d, hidden, num_experts=4, top_k=2)
    dense = FeedForward(d, 2 * hidden)            # same active size: top-2 experts of `hidden`
    x = paddle.randn([n, d])
    print(f"4. MoE (4 experts x {hidden}, top-2) vs dense FFN ({2 * hidden}), {n} tokens of width {d}")
    for mode in ("forward", "forward+backward"):
        def run(layer):
            layer.clear_gradients()
            y = layer(x)
            y = y[0] if isinstance(y, tuple) else y
            if mode != "forward":
                y.sum().backward()

        t_moe, t_dense = timed(lambda: run(moe), reps), timed(lambda: run(dense), reps)
        print(f"   {mode:<17} MoE {n / t_moe:9.0f} tokens/s, dense {n / t_dense:9.0f} tokens/s: "
              f"MoE takes {t_moe / t_dense:.2f}x the dense time")


def part_inference(reps, tmp):
    from paddle import inference

    cfg = ppeye.load_config(DEMO)
    s = ppeye.input_shapes(cfg)
    paddle.seed(0)
    model = ppeye.build_model(cfg)
    model.eval()
    rng = np.random.default_rng(0)
    u, b = 77, 16
    x = [rng.normal(size=(u, s["C"], s["D"], s["H"], s["W"])).astype("float32"),
         rng.integers(0, u, (b, s["T"])).astype("int64"), rng.normal(size=(b, s["F"])).astype("float32"),
         np.ones((b, s["F"]), "float32")]
    with paddle.no_grad():
        ref = model(*[paddle.to_tensor(a) for a in x]).numpy()
        t_dy = timed(lambda: model(*[paddle.to_tensor(a) for a in x]), reps)
    spec = [paddle.static.InputSpec([None, s["C"], s["D"], s["H"], s["W"]], "float32", "weather_unique"),
            paddle.static.InputSpec([None, s["T"]], "int64", "day_index"),
            paddle.static.InputSpec([None, s["F"]], "float32", "tab"),
            paddle.static.InputSpec([None, s["F"]], "float32", "tab_mask")]
    path = os.path.join(tmp, "model")
    paddle.jit.save(paddle.jit.to_static(model, input_spec=spec, full_graph=True), path)
    print(f"5. demo model, eval forward, batch 16 ({u} volumes): dygraph {t_dy:.2f} s")
    for onednn in (False, True):
        config = inference.Config(path + ".json", path + ".pdiparams")
        config.disable_gpu()
        config.disable_glog_info()
        config.set_cpu_math_library_num_threads(int(os.environ.get("OMP_NUM_THREADS", 2)))
        config.enable_mkldnn() if onednn else config.disable_mkldnn()
        predictor = inference.create_predictor(config)

        def run():
            for name, a in zip(predictor.get_input_names(), x):
                predictor.get_input_handle(name).copy_from_cpu(a)
            predictor.run()
            return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()

        diff = np.abs(run() - ref).max()
        t = timed(run, reps)
        print(f"   Paddle Inference{' + oneDNN' if onednn else '         '}: {t:.2f} s ({t_dy / t:.1f}x), "
              f"max |diff| {diff:.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--child", choices=["resnet", "head"], help=argparse.SUPPRESS)
    parser.add_argument("--recompute", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reps", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        fn = child_resnet if args.child == "resnet" else child_head
        print(json.dumps(fn(args.recompute, args.reps)))
        return
    reps = 1 if args.quick else 3
    part_counts()
    part_shared(reps)
    part_full(reps)
    part_moe(reps)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        part_inference(reps, tmp)


if __name__ == "__main__":
    main()
