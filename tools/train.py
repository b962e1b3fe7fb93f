#!/usr/bin/env python
"""Train a model described by a config.

    python tools/train.py -c configs/demo.yaml --eval
    fleetrun --nproc_per_node 8 tools/train.py -c configs/full.yaml --fleet --use_vdl

Writes output/<run>/: the merged config.yaml, checkpoints, best_model, VisualDL
logs and metrics.
"""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.core import cli


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--eval", action="store_true", help="evaluate on the validation split every epoch")
    parser.add_argument("-r", "--resume", default=None, help="checkpoint directory to resume from")
    parser.add_argument("--use_vdl", action="store_true", help="log to VisualDL")
    parser.add_argument("--vdl_log_dir", default=None, help="VisualDL log directory (default: <run>/vdl)")
    parser.add_argument("--fleet", action="store_true", help="collective training with paddle.distributed.fleet")
    parser.add_argument("--output_dir", default=None, help="where run directories go (default: output_dir)")
    args = parser.parse_args()

    def run():
        cli.config_from_args(args, flags={
            "train.eval": args.eval or None,
            "use_vdl": args.use_vdl or None,
            "vdl_log_dir": args.vdl_log_dir,
            "fleet": args.fleet or None,
            "output_dir": args.output_dir,
        })
        cli.not_available("training (ppeye.engine)", issue=5)

    cli.main(run)


if __name__ == "__main__":
    main()
