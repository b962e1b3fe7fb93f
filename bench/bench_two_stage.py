#!/usr/bin/env python
"""Two-stage training (printed, not asserted), on the demo data, in one process per run:

1. extraction: (site, day) volumes/s of tools/extract.py's day encoder (Paddle Inference with
   oneDNN) for the whole demo store;
2. throughput: samples/s of the training step from the day-feature cache (ResNet frozen, its
   features read from the cache) vs end to end (volumes through the ResNet, with gradients),
   on the same batches, the ratio measured in the same run; for the demo model, a
   scaled-down full architecture (``bench_train.MODELS``) and the demo model with the full
   config's ResNet (base width 64, no stem stride): the ratio is the ResNet's share of the step;
3. accuracy (``--accuracy``): the demo model trained end to end, frozen throughout (from the
   cache of its seeded initialisation) and two-stage (frozen, then fine-tuned end to end):
   wall time, best validation and test macro ROC-AUC.

Needs the demo data (``make demo``, or the preprocess stages of tools/demo.py).

    python bench/bench_two_stage.py [--steps 8] [--accuracy] [--epochs 8 --frozen_epochs 6]
"""
import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

DEMO = os.path.join(ROOT, "configs", "demo.yaml")
QUIET = ["log_iter=0", "retrieval.enabled=false"]


def config(out, *overrides):
    import ppeye

    return ppeye.load_config(DEMO, [*QUIET, f"output_dir={out}", "run_name=bench", *overrides])


def step_rate(trainer, steps, warmup):
    """samples/s of full training steps (collation included) over ``steps`` timed batches."""
    from ppeye.engine.predict import to_tensors

    trainer.train_mode()
    samples, elapsed = 0, 0.0
    t0 = time.perf_counter()
    for i, batch in enumerate(trainer.loader):
        if i == warmup + steps:
            break
        trainer.train_step(to_tensors(batch))       # forward, loss, backward, optimizer step
        if i >= warmup:
            elapsed += time.perf_counter() - t0
            samples += int(batch["labels"].shape[0])
        t0 = time.perf_counter()
    return samples / elapsed


def throughput(model, overrides, steps, warmup):
    from ppeye.engine import Trainer
    from ppeye.engine.features import extract_day_features

    with tempfile.TemporaryDirectory() as out:
        cache = os.path.join(out, "days.zarr")
        extracted = extract_day_features(config(out, *overrides), cache)
        end_to_end = step_rate(Trainer(config(out, *overrides), callbacks=[]), steps, warmup)
        cached = step_rate(Trainer(config(out, *overrides, "train.two_stage.frozen_epochs=1",
                                          f"train.two_stage.cache={cache}"), callbacks=[]), steps, warmup)
    print(f"\n{model} model")
    print(f"  extraction: {extracted['volumes']} volumes in {extracted['seconds']:.1f} s "
          f"({extracted['volumes_per_s']:.0f} volumes/s, {extracted['dim']} features per day)")
    print(f"  training step, end to end      {end_to_end:8.1f} samples/s")
    print(f"  training step, from the cache  {cached:8.1f} samples/s  ({cached / end_to_end:.1f}x)")


def accuracy(epochs, frozen_epochs):
    from ppeye.data.dataset import OnsetDataset
    from ppeye.engine import Trainer, load_weights
    from ppeye.engine.features import extract_day_features

    print(f"\naccuracy on the demo data ({epochs} epochs, 1 process; last column: test macro ROC-AUC of the "
          f"best validation checkpoint)")
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        cache = os.path.join(out, "days.zarr")
        extract_day_features(config(out), cache)
        extract_s = time.perf_counter() - t0
        runs = {"end to end": [],
                "frozen throughout (cache)": [f"train.two_stage.frozen_epochs={epochs}",
                                              f"train.two_stage.cache={cache}"],
                f"two-stage ({frozen_epochs} frozen + {epochs - frozen_epochs} end to end)": [
                    f"train.two_stage.frozen_epochs={frozen_epochs}", f"train.two_stage.cache={cache}"]}
        for name, extra in runs.items():
            cfg = config(os.path.join(out, str(len(name))), f"train.epochs={epochs}", "train.eval=true",
                         "train.early_stop.enabled=false", *extra)
            t0 = time.perf_counter()
            trainer = Trainer(cfg, callbacks=[])
            history = trainer.train()
            seconds = time.perf_counter() - t0 + (extract_s if extra else 0.0)
            load_weights(trainer.model, trainer.run_dir)
            trainer.frozen = False          # evaluate on the volumes, as tools/eval.py does
            m, _, _ = trainer.evaluate(OnsetDataset(cfg, "test"))
            best = max(r["val_macro_roc_auc"] for r in history)
            print(f"  {name:<40} {seconds:7.0f} s  val {best:.4f}  test {m['macro_roc_auc']:.4f}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=8, help="timed steps per case")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--accuracy", action="store_true", help="also train the three schedules (about 20 minutes)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--frozen_epochs", type=int, default=6)
    args = p.parse_args()
    if not os.path.isfile(os.path.join(ROOT, "data", "demo", "work", "cohort_imputed.parquet")):
        raise SystemExit("bench_two_stage needs the demo data: run `make demo` first")
    from bench_train import MODELS

    models = dict(MODELS)
    models["demo head, full ResNet"] = ["model.backbone.base_width=64", "model.backbone.stem_stride=[1, 1, 1]"]
    print(f"two-stage training, batch 16, {args.steps} timed steps after {args.warmup} warm-up, "
          f"1 process, {os.cpu_count()} threads")
    for model, overrides in models.items():
        slow = "full ResNet" in model      # about 20 s per end-to-end step: fewer steps
        throughput(model, overrides, 2 if slow else args.steps, 1 if slow else args.warmup)
    if args.accuracy:
        accuracy(args.epochs, args.frozen_epochs)


if __name__ == "__main__":
    main()
