#!/usr/bin/env python
"""Export trained weights to a Paddle Inference model (model.json + model.pdiparams,
infer_cfg.yml, the fitted feature pipeline and the retrieval index).

    python tools/export.py -c configs/demo.yaml -o weights=output/demo --output_dir inference/demo
"""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.core import cli


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
