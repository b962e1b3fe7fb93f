#!/usr/bin/env python
"""Does a modality-dropout model rank people by the weather alone? Over seeds and thread counts.

This was a test (``test_with_the_patient_dropped_the_weather_alone_predicts_better_than_chance``)
until a fresh machine measured 0.457 against its floor of 0.58: whether a small model learns the
weather on tiny data depends on the seed and the thread count, so it is a benchmark, printed,
not asserted. Data: the tests' tiny data (two centres, six months) with the planted weather made
loud and strong for every age band and season (2,000 people), so the weather carries three of the
four diseases. Model: the tests' small model with ``model.missing`` and modality dropout 0.3 / 0.3,
6 epochs. For each seed and thread count (each run in a fresh process, since Paddle reads
``OMP_NUM_THREADS`` once), the mean ROC-AUC of the three weather-led diseases on val and test,
with both modalities and with the patient features dropped, then the range over all runs.

    python bench/bench_weather_led.py [--seeds 0 1 2 3 4] [--threads 1 2]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

WEATHER_LED_DISEASES = ("glaucoma", "cataract", "amd")


def overrides():
    from conftest import TINY
    from test_missing import DROPOUT_RUN

    loud = [o for o in TINY if not o.startswith(("synthetic.signals", "synthetic.num_participants"))] + [
        "synthetic.num_participants=2000", "synthetic.signals.event.amplitude=20.0",
        "synthetic.signals.periodic.amplitude=4.0",
        "synthetic.signals.event.effects={cataract: {older: 4.0, younger: 4.0}, amd: {older: 4.0, younger: 4.0}}",
        "synthetic.signals.periodic.effects={glaucoma: {winter: 4.0, summer: 4.0}}"]
    return loud, DROPOUT_RUN


def one_run(root, seed):
    """Train and evaluate one seed in this process; prints one JSON line of the scores."""
    import numpy as np

    import ppeye
    from conftest import DEMO, PIPE
    from ppeye.engine import Trainer
    from ppeye.engine.evaluator import Evaluator

    loud, run = overrides()
    paths = json.load(open(os.path.join(root, "paths.json")))
    out = os.path.join(root, f"seed{seed}_threads{os.environ.get('OMP_NUM_THREADS')}")
    ov = loud + PIPE + paths + run + [f"output_dir={out}", f"seed={seed}"]
    Trainer(ppeye.load_config(DEMO, ov), callbacks=[]).train()
    s = Evaluator(ppeye.load_config(DEMO, ov), weights=os.path.join(out, "r")).run(["val", "test"])["splits"]
    scores = {name: float(np.mean([s[name][f"{d}_roc_auc"]["value"] for d in WEATHER_LED_DISEASES]))
              for name in ("val", "val_without_patient", "test", "test_without_patient")}
    print("RESULT " + json.dumps(scores))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--one", nargs=2, metavar=("ROOT", "SEED"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        return one_run(args.one[0], int(args.one[1]))
    import ppeye
    from conftest import DEMO, preprocess
    from ppeye.data.synthetic import make_synthetic

    loud, _ = overrides()
    results = []
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        make_synthetic(ppeye.load_config(DEMO, loud), os.path.join(root, "raw"))
        paths = preprocess(loud, os.path.join(root, "raw"), os.path.join(root, "work"))
        json.dump(paths, open(os.path.join(root, "paths.json"), "w"))
        print(f"weather-led tiny data made in {time.perf_counter() - t0:.0f} s; mean ROC-AUC of "
              f"{', '.join(WEATHER_LED_DISEASES)}")
        for threads in args.threads:
            for seed in args.seeds:
                t0 = time.perf_counter()
                env = dict(os.environ, OMP_NUM_THREADS=str(threads))
                done = subprocess.run([sys.executable, __file__, "--one", root, str(seed)], env=env,
                                      capture_output=True, text=True)
                line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
                if done.returncode or not line:
                    raise SystemExit(f"seed {seed}, {threads} threads failed:\n{done.stderr[-3000:]}")
                r = json.loads(line[0][7:])
                results.append(r)
                print(f"  seed {seed}, {threads} thread(s): " + ", ".join(f"{k} {v:.3f}" for k, v in r.items())
                      + f"  ({time.perf_counter() - t0:.0f} s)")
    for key in results[0]:
        values = [r[key] for r in results]
        print(f"{key:<22} min {min(values):.3f}  max {max(values):.3f}  over {len(values)} runs")


if __name__ == "__main__":
    main()
