#!/usr/bin/env python
"""Explain a trained model: 3D Grad-CAM, temporal attention, AFNO spectra, MoE routing.

    python tools/visualize.py -c configs/demo.yaml -o weights=output/demo/best_model --what gradcam,attention --output_dir vis
"""
import _common  # noqa: F401  (puts the checkout on sys.path)
from ppeye.core import cli

WHAT = ("gradcam", "attention", "afno", "moe")


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--what", default=",".join(WHAT), help=f"comma-separated subset of {','.join(WHAT)}")
    parser.add_argument("--output_dir", default=None, help="where figures and arrays go")
    parser.add_argument("--use_vdl", action="store_true", help="also log figures to VisualDL")
    args = parser.parse_args()

    def run():
        wanted = [w.strip() for w in args.what.split(",") if w.strip()]
        unknown = [w for w in wanted if w not in WHAT]
        if unknown:
            raise cli.PpeyeError(f"--what: unknown {', '.join(unknown)}; choose from {', '.join(WHAT)}")
        cli.config_from_args(args)
        cli.not_available("visualization (ppeye.explain)", issue=6)

    cli.main(run)


if __name__ == "__main__":
    main()
