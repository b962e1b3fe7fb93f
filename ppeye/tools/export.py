"""Export trained weights to a Paddle Inference model (model.json + model.pdiparams,
infer_cfg.yml, the fitted feature pipeline and the retrieval index).

    python tools/export.py -c configs/demo.yaml -o weights=output/demo --output_dir inference/demo
"""
import os
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--output_dir", default=None, help="export directory (default: inference/<run>)")
    parser.add_argument("--quantize", action="store_true", help="int8 weights of the Linear layers (post-training)")
    args = parser.parse_args()

    def run():
        from ppeye.core.logger import get_logger
        from ppeye.deploy.export import export_model

        cfg = cli.config_from_args(args)
        export_model(cfg, out_dir=args.output_dir, quantize=args.quantize, log=get_logger("ppeye.export"))

    cli.main(run)


if __name__ == "__main__":
    main()
