"""Pretrain the day encoder on the weather alone (ppeye/engine/day_pretrain.py).

    python tools/pretrain_days.py -c configs/demo.yaml                 # -> output/demo_days
    fleetrun --nproc_per_node 2 tools/pretrain_days.py -c configs/demo.yaml  # 2 processes
    python tools/train.py -c configs/demo.yaml --eval                  # starts from it (pretrained:)

The ResNet and its projection learn to decode each valid day of the training people's centres
to its coarse pattern across the box (model.day_reconstruction); every 5th day is held out to
measure it. One process (a few minutes on 2 CPU cores for the demo), or N under
paddle.distributed.launch / fleetrun, each step's days split among them (docs/training.md).
Writes output/<run>_days/: config.yaml, checkpoints/, metrics.csv, log.txt.
"""
import os
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--output_dir", default=None, help="where run directories go (default: output_dir)")
    args = parser.parse_args()

    def run():
        cfg = cli.config_from_args(args, flags={"output_dir": args.output_dir})
        if not cfg.get("run_name"):
            cfg["run_name"] = os.path.splitext(os.path.basename(args.config))[0]
        from ppeye.engine.day_pretrain import pretrain_days

        pretrain_days(cfg)

    cli.main(run)


if __name__ == "__main__":
    main()
