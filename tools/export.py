#!/usr/bin/env python
"""Export trained weights to a Paddle Inference model (model.json + model.pdiparams,
infer_cfg.yml and the fitted feature pipeline).

    python tools/export.py -c configs/demo.yaml -o weights=output/demo/best_model --output_dir inference/demo
"""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.core import cli


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--output_dir", default=None, help="export directory (default: inference/<run>)")
    parser.add_argument("--quantize", action="store_true", help="post-training int8 quantization")
    args = parser.parse_args()

    def run():
        cli.config_from_args(args)
        cli.not_available("export (ppeye.engine.export)", issue=7)

    cli.main(run)


if __name__ == "__main__":
    main()
