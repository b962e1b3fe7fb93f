#!/usr/bin/env python
"""The full model's training step on a GPU (printed, not asserted): fp32, bf16 and bf16 with the
ResNet3D channels-last, each with and without recompute, at a grouped batch of 16 people.

Run on a machine with paddlepaddle-gpu (Paddle's own package index; README "Training on GPUs")::

    python bench/bench_gpu.py                    # configs/full.yaml shapes, batch 16, 476 distinct days
    python bench/bench_gpu.py --steps 20 --variants bf16_ndhwc bf16_ndhwc_recompute

Each variant runs in a fresh process (a clean peak-memory count) as the trainer runs a step:
``autocast`` with ppeye's AMP lists (Conv3D in half precision, the FFT in float32), the model's
loss and auxiliary losses, backward, AdamW step. Prints distinct day volumes per second and peak
device memory beside the anchor measured for this network with PyTorch on one H200 (bf16
channels-last 4,903 volumes/s, bf16 2,917, fp32/TF32 1,801). Without a GPU it runs the same
code at a tiny size on the CPU (AMP does nothing there: every variant is float32), which checks
the script, not the speed.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

VARIANTS = {
    "fp32": {"amp": False, "channels_last": False, "recompute": False},
    "fp32_recompute": {"amp": False, "channels_last": False, "recompute": True},
    "bf16": {"amp": True, "channels_last": False, "recompute": False},
    "bf16_recompute": {"amp": True, "channels_last": False, "recompute": True},
    "bf16_ndhwc": {"amp": True, "channels_last": True, "recompute": False},
    "bf16_ndhwc_recompute": {"amp": True, "channels_last": True, "recompute": True},
}
ANCHOR = {"fp32": 1801, "bf16": 2917, "bf16_ndhwc": 4903}     # PyTorch, one H200, volumes/s
TINY = ["data.window_days=8", "data.hours=4", "data.box=[8, 8]", "data.variables=[t2m, tp, ssrd, d2m]",
        "data.num_features=12", "model.width=32", "model.backbone.base_width=4", "model.temporal.transformer.heads=2",
        "model.temporal.transformer.layers=1", "model.fusion.heads=2", "model.tabular.hidden=16"]


def child(name, steps, batch, distinct, size):
    import numpy as np

    import ppeye
    from ppeye.core.device import resolve_device, select_device
    from ppeye.core.paddle_env import import_paddle
    from ppeye.engine.amp import amp_settings, autocast

    paddle = import_paddle()
    v = VARIANTS[name]
    device = select_device("auto")
    overrides = [f"model.backbone.channels_last={str(v['channels_last']).lower()}",
                 f"model.backbone.recompute={str(v['recompute']).lower()}",
                 f"model.temporal.transformer.recompute={str(v['recompute']).lower()}"]
    cfg = ppeye.load_config(os.path.join(ROOT, "configs", "full.yaml"), (TINY if size == "tiny" else []) + overrides)
    s = ppeye.input_shapes(cfg)
    paddle.seed(0)
    model = ppeye.build_model(cfg)
    model.train()
    amp = amp_settings({"enabled": v["amp"], "dtype": "bfloat16", "level": "O1"}, device)
    optimizer = paddle.optimizer.AdamW(learning_rate=1e-4, parameters=model.parameters())
    rng = np.random.default_rng(0)
    u = min(distinct, batch * s["T"])
    weather = paddle.to_tensor(rng.normal(size=(u, s["C"], s["D"], s["H"], s["W"])).astype("float32"))
    # a grouped batch: each person's window runs over consecutive distinct days
    starts = np.sort(rng.integers(0, max(u - s["T"], 0) + 1, batch))
    day_index = paddle.to_tensor((starts[:, None] + np.arange(s["T"])) % u)
    tab = paddle.to_tensor(rng.normal(size=(batch, s["F"])).astype("float32"))
    labels = paddle.to_tensor((rng.random((batch, 4)) < 0.2).astype("float32"))

    def step():
        with autocast(paddle, amp):
            logits, ex = model(weather, day_index, tab, paddle.ones_like(tab), return_explain=True)
        loss = paddle.nn.functional.binary_cross_entropy_with_logits(logits.astype("float32"), labels) + ex["aux_loss"]
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        return float(loss)                       # one read: waits for the step to finish

    step()                                       # warm-up (kernel choice, allocator)
    gpu = device.startswith("gpu")
    if gpu:
        paddle.device.cuda.reset_max_memory_allocated()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - t0) / steps
    if gpu:
        peak = paddle.device.cuda.max_memory_allocated() / 2 ** 30
    else:
        with open("/proc/self/status") as f:
            peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 2 ** 20
    return {"variant": name, "device": device, "amp": amp["dtype"] if amp else "float32", "distinct_days": u,
            "seconds_per_step": seconds, "volumes_per_s": u / seconds, "peak_gib": peak,
            "peak_of": "device (max allocated)" if gpu else "process (resident)",
            "gpu_name": paddle.device.cuda.get_device_name() if gpu else None, "resolved": resolve_device("auto")}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--distinct_days", type=int, default=476, help="distinct day volumes per step (476: a grouped "
                   "batch of 16 at T = 365, bench/bench_model.py)")
    p.add_argument("--size", choices=["auto", "full", "tiny"], default="auto",
                   help="auto: full on a GPU, tiny on the CPU")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.batch, args.distinct_days, args.size)))
        return
    size = args.size
    if size == "auto":
        from ppeye.core.device import resolve_device
        size = "full" if resolve_device("auto").startswith("gpu") else "tiny"
    print(f"training step of configs/full.yaml ({size} size), batch {args.batch}, up to {args.distinct_days} distinct "
          f"day volumes, {args.steps} timed steps after one warm-up; each variant in a fresh process")
    for name in args.variants:
        out = subprocess.run([sys.executable, __file__, "--child", name, "--steps", str(args.steps), "--batch",
                              str(args.batch), "--distinct_days", str(args.distinct_days), "--size", size],
                             capture_output=True, text=True)
        if out.returncode:
            tail = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
            print(f"{name:<22} failed: {tail}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        anchor = ANCHOR.get(name.replace("_recompute", ""))
        print(f"{name:<22} {r['device']} {r['amp']:<9} {r['distinct_days']} volumes, {r['seconds_per_step']:.3f} s/step, "
              f"{r['volumes_per_s']:,.0f} volumes/s, peak {r['peak_gib']:.2f} GiB ({r['peak_of']})"
              + (f"; PyTorch H200 anchor {anchor:,} volumes/s" if anchor and size == "full" else ""))


if __name__ == "__main__":
    main()
