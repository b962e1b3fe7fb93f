"""Explain a trained model: where (3D Grad-CAM), when (temporal attention), at which period
(AFNO spectra) and for whom (MoE routing clusters) weather drives risk, and how its risk follows one
variable's exposure lag by lag beside a distributed-lag baseline (lag_response, asked for by name).

    python tools/visualize.py -c configs/demo.yaml -o weights=output/demo --output_dir output/demo/vis
    python tools/visualize.py -c configs/demo.yaml -o weights=output/demo --what gradcam --layer backbone.blocks.5
    python tools/visualize.py -c configs/demo.yaml --what lag_response -o weights=output/demo
    python tools/visualize.py -c configs/demo.yaml --what lag_response --runs output/demo_results/seed_*/model --output_dir output/lag

--runs pools several runs of the config (seeds; a shell pattern works) on the same people.

Writes PNG figures, the raw arrays (npz / CSV) and summary.json / summary.txt to
--output_dir (default <run>/vis). On the synthetic data (ground_truth.json beside the raw
files) the summary also scores each explanation against the planted signals.
"""
import os
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402

WHAT = ("gradcam", "attention", "afno", "moe")
EXTRA = ("lag_response",)            # not in the default: a pass per lag of every window


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--what", default=",".join(WHAT),
                        help=f"comma-separated subset of {','.join(WHAT + EXTRA)} (default: {','.join(WHAT)})")
    parser.add_argument("--runs", nargs="+", default=None,
                        help="with --what lag_response: several runs of the config (seeds), pooled (instead of -o weights)")
    parser.add_argument("--output_dir", default=None, help="where figures and arrays go (default: <run>/vis)")
    parser.add_argument("--split", default="test", choices=["train", "val", "test", "external", "period", "period_2"],
                        help="whose explanations (default: test)")
    parser.add_argument("--layer", default=None, help="Grad-CAM layer, or 'input' (the weather itself: maps per variable too) "
                             "(default: explain.cam_layer, else the last residual block)")
    parser.add_argument("--cam_method", default=None, choices=["gradcam", "hirescam"],
                        help="gradcam: channel weights = mean gradient; hirescam: gradient x activation per cell "
                             "(default: explain.cam_method)")
    parser.add_argument("--day_weighting", default=None, choices=["attention", "gradient"],
                        help="how a window's days add up into a person's map (default: explain.day_weighting)")
    parser.add_argument("--max_people", type=int, default=None, help="stop after this many people")
    parser.add_argument("--clusters", type=int, default=4, help="k-means clusters of MoE routing vectors")
    cli.add_switch(parser, "--use_vdl", help="also log the figures to VisualDL")
    args = parser.parse_args()

    def run():
        wanted = [w.strip() for w in args.what.split(",") if w.strip()]
        unknown = [w for w in wanted if w not in WHAT + EXTRA]
        if unknown:
            raise cli.PpeyeError(f"--what: unknown {', '.join(unknown)}; choose from {', '.join(WHAT + EXTRA)}")
        cfg = cli.config_from_args(args, flags={"use_vdl": args.use_vdl})
        if args.runs:
            if wanted != ["lag_response"]:
                raise cli.PpeyeError("--runs pools the lag-response of several runs: use it with --what lag_response")
            if not args.output_dir:
                raise cli.PpeyeError("--runs: say where the pooled lag-response goes with --output_dir")
            from ppeye.explain.entry import pooled_lag_response

            pooled_lag_response(cfg, args.runs, args.output_dir, split=args.split, max_people=args.max_people)
            return
        if not cfg.get("weights"):
            raise cli.PpeyeError("no weights to explain: add -o weights=<run directory or checkpoint>")
        from ppeye.engine.checkpoint import resolve, run_dir_of
        from ppeye.explain import Explainer

        run_dir = run_dir_of(resolve(cfg["weights"]))
        out = args.output_dir or os.path.join(run_dir, "vis")
        from ppeye.engine.callbacks import visualdl_for

        with visualdl_for(cfg, run_dir) as vdl:
            Explainer(cfg).run(wanted, out, split=args.split, layer=args.layer, max_people=args.max_people,
                               clusters=args.clusters, vdl=vdl, method=args.cam_method, day_weighting=args.day_weighting)

    cli.main(run)


if __name__ == "__main__":
    main()
