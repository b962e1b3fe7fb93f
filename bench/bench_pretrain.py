#!/usr/bin/env python
"""Contrastive pretraining on the demo data (printed, not asserted), in one process:

1. pretrain ``configs/demo_pretrain.yaml`` (every training participant, InfoNCE) and report
   patient <-> weather retrieval top-1 / top-5 on the validation and test people, with the
   chance level (people sharing a window count as right answers);
2. train the demo onset model on a share of the labelled training people (``--fraction``,
   default 10%), from scratch and from the pretrained encoders, and report the test macro
   ROC-AUC of each (best validation checkpoint).

Needs the demo data (``make demo``, or the preprocess stages of tools/demo.py).

    python bench/bench_pretrain.py [--pretrain_epochs 4] [--epochs 8] [--fraction 0.1]
"""
import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrain_epochs", type=int, default=4)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--fraction", type=float, default=0.1)
    args = p.parse_args()
    if not os.path.isfile(os.path.join(ROOT, "data", "demo", "work", "cohort_imputed.parquet")):
        raise SystemExit("bench_pretrain needs the demo data: run `make demo` first")
    import ppeye
    from ppeye.data.dataset import OnsetDataset
    from ppeye.engine import Trainer, load_weights
    from ppeye.engine.pretrain import retrieval_metrics

    quiet = ["log_iter=0", "train.eval=true", "retrieval.enabled=false"]
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        cfg = ppeye.load_config(os.path.join(ROOT, "configs", "demo_pretrain.yaml"), quiet + [
            f"output_dir={out}", "run_name=pre", f"train.epochs={args.pretrain_epochs}"])
        pre = Trainer(cfg, callbacks=[])
        pre.train()
        load_weights(pre.model, pre.run_dir)
        print(f"contrastive pretraining: {len(pre.train_set)} people, {args.pretrain_epochs} epochs, "
              f"{time.perf_counter() - t0:.0f} s")
        for split in ("val", "test"):
            m = retrieval_metrics(pre.model, OnsetDataset(cfg, split), cfg)
            print(f"  {split:<5} n={m['n']}: patient->weather top-1 {m['p2w_top1']:.3f}, top-5 {m['p2w_top5']:.3f}; "
                  f"weather->patient top-1 {m['w2p_top1']:.3f}, top-5 {m['w2p_top5']:.3f} (chance top-1 "
                  f"{m['chance_top1']:.3f})")
        print(f"\nonset model on {args.fraction:.0%} of the labelled training people, {args.epochs} epochs "
              f"(test macro ROC-AUC of the best validation checkpoint)")
        for name, extra in {"from scratch": [], "from the pretrained encoders": [f"pretrained={pre.run_dir}"]}.items():
            t0 = time.perf_counter()
            cfg = ppeye.load_config(os.path.join(ROOT, "configs", "demo.yaml"), quiet + [
                f"output_dir={out}", f"run_name={len(name)}", f"train.epochs={args.epochs}",
                f"data.label_fraction={args.fraction}", "train.early_stop.enabled=false", *extra])
            trainer = Trainer(cfg, callbacks=[])
            history = trainer.train()
            load_weights(trainer.model, trainer.run_dir)
            m, _, _ = trainer.evaluate(OnsetDataset(cfg, "test"))
            best = max(r["val_macro_roc_auc"] for r in history)
            print(f"  {name:<30} {len(trainer.train_set)} people  val {best:.4f}  test {m['macro_roc_auc']:.4f}  "
                  f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
