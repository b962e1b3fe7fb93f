"""Hyper-parameter search: a grid or random search from the config's sweep section.

    python tools/sweep.py -c configs/demo_sweep.yaml
    python tools/sweep.py -c configs/demo.yaml -o sweep.params="{optimizer.learning_rate: [0.001, 0.0003]}"

Each trial is a run directory <output_dir>/<run_name>_sweep/trial_NNN (output/demo_sweep/ for
configs/demo_sweep.yaml; or under --output_dir),
trained with validation every epoch and scored by the validation metric at its best
checkpoint. Writes trials.csv (rewritten after every trial; a rerun keeps the finished
trials) and best_hparams.yaml (the best trial's settings, score and run directory).
"""
import os
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402
from ppeye.core.launch import add_processes_arg  # noqa: E402


def main():
    parser = cli.make_parser(__doc__)
    add_processes_arg(parser, "trial")
    parser.add_argument("--output_dir", default=None, help="where the trials go")
    args = parser.parse_args()

    def run():
        cfg = cli.config_from_args(args)
        from ppeye.engine.sweep import Sweep

        run_name = cfg.get("run_name") or os.path.splitext(os.path.basename(args.config))[0]
        default = run_name if run_name.endswith("sweep") else f"{run_name}_sweep"
        out = args.output_dir or os.path.join(cfg["output_dir"], default)
        Sweep(cfg, out, args.processes).run()

    cli.main(run)


if __name__ == "__main__":
    main()
