"""The fingerprint of a run's config: a hash of every setting that changes the computation."""
from .io import digest

# Keys that change how a run is watched or where it writes, not what it computes.
RUNTIME_KEYS = ("output_dir", "run_name", "weights", "log_iter", "use_vdl", "vdl_log_dir", "fleet", "num_threads",
                "device", "train.eval", "loader.num_workers", "train.checkpoint_every", "train.keep_checkpoints",
                "evaluation", "retrieval", "compare", "sweep", "explain", "simulate")
# Settings added after runs existed, at the value that computes what their absence did: left out at
# that value, so a run trained before the key existed still resumes and exports with its config.
ABSENT_MEANS = {("data", "store_packing"): "float32"}


def config_fingerprint(cfg):
    """A hash of everything in ``cfg`` that changes the computation (not paths or logging)."""
    data = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    for (node, key), value in ABSENT_MEANS.items():
        if isinstance(data.get(node), dict) and data[node].get(key, value) == value:
            data[node] = {k: v for k, v in data[node].items() if k != key}
    for key in RUNTIME_KEYS:
        node, *rest = key.split(".")
        if rest and isinstance(data.get(node), dict):
            data[node] = {k: v for k, v in data[node].items() if k != rest[0]}
        elif not rest:
            data.pop(node, None)
    return digest(data)
