"""Train a model described by a config (``tools/train.py``, ``python -m ppeye.tools.train``).

    python tools/train.py -c configs/demo.yaml --eval
    python tools/train.py -c configs/demo.yaml --eval -r output/demo        # resume the latest checkpoint
    fleetrun --nproc_per_node 8 tools/train.py -c configs/full.yaml --eval --use_vdl

Writes output/<run>/: the merged config.yaml, checkpoints/ (epoch_NNNN, latest.json,
best.json), metrics.json/.csv, split.csv, meta.csv, log.txt and VisualDL logs (--use_vdl).
"""
import os
import sys

if __package__ in (None, ""):          # run as a file (paddle.distributed.launch runs a script path)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402


def main():
    parser = cli.make_parser(__doc__)
    cli.add_switch(parser, "--eval", help="evaluate on the validation split every epoch")
    parser.add_argument("-r", "--resume", default=None,
                        help="run directory or checkpoint to resume from (restores model, optimizer, "
                             "schedule, epoch, RNG and early-stopping state)")
    cli.add_switch(parser, "--use_vdl", help="log to VisualDL")
    parser.add_argument("--vdl_log_dir", default=None, help="VisualDL log directory (default: <run>/vdl)")
    cli.add_switch(parser, "--fleet", help="collective training with paddle.distributed.fleet (implied under fleetrun)")
    cli.add_switch(parser, "--amp", help="mixed precision on GPUs (train.amp.enabled: bfloat16 by default, Conv3D "
                                         "included; nothing on a CPU)")
    parser.add_argument("--output_dir", default=None, help="where run directories go (default: output_dir)")
    args = parser.parse_args()

    def run():
        cfg = cli.config_from_args(args, flags={
            "train.eval": args.eval,
            "use_vdl": args.use_vdl,
            "vdl_log_dir": args.vdl_log_dir,
            "fleet": args.fleet,
            "train.amp.enabled": args.amp,
            "output_dir": args.output_dir,
        })
        if not cfg.get("run_name"):
            cfg["run_name"] = os.path.splitext(os.path.basename(args.config))[0]
        from ppeye.engine import Trainer

        Trainer(cfg).train(resume=args.resume)

    cli.main(run)


if __name__ == "__main__":
    main()
