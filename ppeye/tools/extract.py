"""Extract features with a model: the frozen ResNet3D's day features (the cache two-stage
training reads) and/or per-person embeddings of a trained model.

    python tools/extract.py -c configs/demo.yaml -o weights=output/demo            # day features
    python tools/extract.py -c configs/demo.yaml --output output/demo/day_features.zarr
    python tools/extract.py -c configs/demo.yaml -o weights=output/demo --people   # per-person .npz

Day features: every valid (site, day) volume of <work_dir>/era5.zarr encoded once by the
ResNet3D through Paddle Inference (oneDNN on CPU, the GPU when there is one), written
atomically to a zarr store [site, day, P] with the encoder's identity (backbone config and
weights hashes, store identity and normalisation), so a stale cache is refused. Without
weights the ResNet is the config's seeded initialisation, the one a run of the config starts
from; -o pretrained=<pretraining run> takes that run's ResNet. Train from the cache with
-o train.two_stage.frozen_epochs=N train.two_stage.cache=PATH (and the same pretrained=).

Per person (--people, needs trained weights): <output_dir>/<run>/people/<split>.npz with the
export row, labels, probabilities and the fused, weather and patient embeddings.
"""
import os
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402


def main():
    parser = cli.make_parser(__doc__)
    parser.add_argument("--days", action="store_true", help="extract the day-feature cache (the default without --people)")
    parser.add_argument("--people", action="store_true", help="extract per-person embeddings (needs weights)")
    parser.add_argument("--output", default=None,
                        help="day-feature cache path (default: <output_dir>/<run>/day_features.zarr)")
    parser.add_argument("--people_dir", default=None, help="per-person output (default: <output_dir>/<run>/people)")
    parser.add_argument("--splits", default=None, help="comma-separated splits for --people (default: all)")
    parser.add_argument("--batch_size", type=int, default=64, help="volumes per Paddle Inference call")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing cache")
    args = parser.parse_args()

    def run():
        from ppeye.core.logger import get_logger
        from ppeye.engine.features import extract_day_features, extract_people

        cfg = cli.config_from_args(args)
        run_name = str(cfg.get("run_name") or os.path.splitext(os.path.basename(args.config))[0])
        run_dir = os.path.join(cfg["output_dir"], run_name)
        log = get_logger("ppeye.extract")
        if args.days or not args.people:
            extract_day_features(cfg, args.output or os.path.join(run_dir, "day_features.zarr"),
                                 batch_size=args.batch_size, overwrite=args.overwrite, log=log)
        if args.people:
            splits = [s.strip() for s in args.splits.split(",")] if args.splits else None
            extract_people(cfg, args.people_dir or os.path.join(run_dir, "people"), splits=splits, log=log)

    cli.main(run)


if __name__ == "__main__":
    main()
