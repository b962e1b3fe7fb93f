#!/usr/bin/env python
"""Training throughput (printed, not asserted): samples/s of the training step on the demo
data, for the demo model and a scaled-down full model, under the settings that matter on a
small CPU machine, each measured in a fresh process (or pair of processes) in the same run:

- 1 process, all cores as threads, Adam with multi-tensor update (the default);
- 1 process, all cores, plain Adam (the slowdown the brief warns about);
- 1 process, 1 thread;
- N gloo processes of 1 thread each (``paddle.distributed.launch --nproc_per_node N``),
  which is what ``fleetrun`` does.

Needs the demo data (``make demo``, or the preprocess stages of tools/demo.py).

    python bench/bench_train.py [--steps 8] [--quick]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "configs", "demo.yaml")

MODELS = {
    "demo": [],
    "full-arch, scaled": ["model.width=256", "model.backbone.base_width=32", "model.backbone.stem_stride=[1, 1, 1]",
                          "model.tabular.k=32", "model.tabular.hidden=512", "model.temporal.transformer.heads=8",
                          "model.temporal.transformer.layers=4", "model.temporal.afno.num_blocks=8",
                          "model.fusion.heads=8"],
}


def worker(args):
    sys.path.insert(0, ROOT)
    import ppeye
    from ppeye.core.paddle_env import import_paddle
    from ppeye.engine import Trainer
    from ppeye.engine.predict import to_tensors

    paddle = import_paddle()
    cfg = ppeye.load_config(DEMO, args.opt + ["log_iter=0", f"output_dir={args.out}", "run_name=bench"])
    trainer = Trainer(cfg, callbacks=[])
    trainer.net.train()
    times, samples = [], 0
    for i, batch in enumerate(trainer.loader):
        if i == args.warmup + args.steps:
            break
        t0 = time.perf_counter()
        trainer.train_step(to_tensors(batch))       # forward, loss, backward, optimizer step
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
            samples += int(batch["labels"].shape[0])
    total = paddle.to_tensor([float(samples)])
    slowest = paddle.to_tensor([sum(times)])
    if trainer.world > 1:
        paddle.distributed.all_reduce(total)
        paddle.distributed.all_reduce(slowest, op=paddle.distributed.ReduceOp.MAX)
    if trainer.rank == 0:
        print("RESULT " + json.dumps({"samples_per_s": total.item() / slowest.item(),
                                      "step_s": sum(times) / len(times), "world": trainer.world}), flush=True)


def run(case, overrides, steps, warmup, out):
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if case["threads"]:
        env["OMP_NUM_THREADS"] = str(case["threads"])
    me = [os.path.abspath(__file__), "--worker", "--steps", str(steps), "--warmup", str(warmup), "--out", out,
          "--opt", *overrides, *case["opt"]]
    if case["procs"] > 1:
        cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(case["procs"]),
               "--log_dir", os.path.join(out, "launch"), *me]
    else:
        cmd = [sys.executable, *me]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    text = proc.stdout
    if case["procs"] > 1 and os.path.exists(os.path.join(out, "launch", "workerlog.0")):
        text += open(os.path.join(out, "launch", "workerlog.0")).read()
    for line in text.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"benchmark case failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--opt", nargs="*", default=[], help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=8, help="timed steps per case")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="demo model only, 4 steps")
    args = p.parse_args()
    if args.worker:
        return worker(args)
    if not os.path.isfile(os.path.join(ROOT, "data", "demo", "work", "cohort_imputed.parquet")):
        raise SystemExit("bench_train needs the demo data: run `make demo` first")
    cores = os.cpu_count() or 1
    cases = [
        {"name": f"1 process, {cores} threads, Adam multi-tensor", "procs": 1, "threads": cores, "opt": []},
        {"name": f"1 process, {cores} threads, plain Adam", "procs": 1, "threads": cores,
         "opt": ["optimizer.multi_tensor=false"]},
        {"name": "1 process, 1 thread, Adam multi-tensor", "procs": 1, "threads": 1, "opt": []},
        {"name": f"{cores} gloo processes x 1 thread", "procs": cores, "threads": 1, "opt": []},
    ]
    steps = 4 if args.quick else args.steps
    models = {"demo": MODELS["demo"]} if args.quick else MODELS
    print(f"training step throughput, batch {16}, {steps} timed steps after {args.warmup} warm-up, "
          f"{cores} cores")
    for model, overrides in models.items():
        base = None
        print(f"\n{model} model")
        for case in cases:
            if model != "demo" and "plain Adam" in case["name"]:
                continue
            with tempfile.TemporaryDirectory() as out:
                r = run(case, overrides, steps, args.warmup, out)
            base = base or r["samples_per_s"]
            print(f"  {case['name']:<42} {r['samples_per_s']:7.1f} samples/s  ({r['samples_per_s'] / base:.2f}x)"
                  f"  step {r['step_s']:.2f} s per process")


if __name__ == "__main__":
    main()
