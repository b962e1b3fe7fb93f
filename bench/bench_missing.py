#!/usr/bin/env python
"""Missing modalities on the demo data (printed, not asserted), in one process: the demo
model trained with ``model.missing`` (modality dropout 0.3 / 0.3), evaluated on the test split
with everything, without the weather and without the patient features (``evaluation.
drop_modality``), and per missingness pattern of the patient features; beside the demo model
trained without ``model.missing``.

Needs the demo data (``make demo``, or the preprocess stages of tools/demo.py).

    python bench/bench_missing.py [--epochs 8]
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
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--missing_only", action="store_true", help="only the model.missing run")
    args = p.parse_args()
    if not os.path.isfile(os.path.join(ROOT, "data", "demo", "work", "cohort_imputed.parquet")):
        raise SystemExit("bench_missing needs the demo data: run `make demo` first")
    import ppeye
    from ppeye.engine import Trainer
    from ppeye.engine.evaluator import Evaluator

    runs = {"without model.missing": [],
            "model.missing, dropout 0.3 / 0.3": ["model.missing.enabled=true",
                                                  "model.missing.modality_dropout={weather: 0.3, patient: 0.3}"]}
    if args.missing_only:
        runs.pop("without model.missing")
    print(f"demo model, {args.epochs} epochs, 1 process; test macro ROC-AUC")
    with tempfile.TemporaryDirectory() as out:
        for name, extra in runs.items():
            t0 = time.perf_counter()
            cfg = ppeye.load_config(os.path.join(ROOT, "configs", "demo.yaml"), [
                "log_iter=0", "train.eval=true", "retrieval.enabled=false", "evaluation.bootstrap=200",
                f"output_dir={out}", f"run_name={len(name)}", f"train.epochs={args.epochs}", *extra])
            Trainer(cfg, callbacks=[]).train()
            s = Evaluator(cfg, weights=os.path.join(out, str(len(name)))).run(["test"])["splits"]
            cells = [f"all {s['test']['macro_roc_auc']['value']:.3f}"]
            for m in ("weather", "patient"):
                if f"test_without_{m}" in s:
                    r = s[f"test_without_{m}"]["macro_roc_auc"]
                    cells.append(f"without {m} {r['value']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
            print(f"  {name:<34} {', '.join(cells)}  ({time.perf_counter() - t0:.0f} s)")
            for row in s["test"]["missingness"]:
                print(f"      {row['pattern']:<40} n={row['n']:<4} macro ROC-AUC {row['macro_roc_auc']:.3f}")


if __name__ == "__main__":
    main()
