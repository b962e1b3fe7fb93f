"""Reading an export bundle and running it with Paddle Inference: what the inference side needs,
with nothing from training (``ppeye.deploy.export`` writes bundles; ``ppeye.deploy.infer`` runs them)."""
import os

import numpy as np
import yaml

from ..core.errors import InputError
from ..core.io import sha256
from ..core.paddle_env import native_stdout_filtered

FORMAT_VERSION = 2        # 2: every file of the bundle checksummed; participant-level content listed
CFG_FILE = "infer_cfg.yml"
MODEL_FILES = ("model.json", "model.pdiparams")


def create_predictor(model_dir, device="cpu", onednn=True, threads=None):
    """A Paddle Inference predictor for ``model_dir`` (GPU when asked, oneDNN on CPU)."""
    from paddle import inference

    config = inference.Config(os.path.join(model_dir, MODEL_FILES[0]), os.path.join(model_dir, MODEL_FILES[1]))
    if device.startswith("gpu"):
        gpu_id = int(device.split(":")[1]) if ":" in device else 0
        config.enable_use_gpu(256, gpu_id)
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(int(threads or os.environ.get("OMP_NUM_THREADS") or os.cpu_count()))
        config.enable_mkldnn() if onednn else config.disable_mkldnn()
    config.disable_glog_info()
    return inference.create_predictor(config)


def run_predictor(predictor, arrays):
    for name, value in zip(predictor.get_input_names(), arrays):
        predictor.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(value))
    with native_stdout_filtered():
        predictor.run()
    return [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]


def bundle_files(directory):
    """Every file of an export directory but ``infer_cfg.yml``, as sorted relative paths."""
    out = []
    for root, _, files in os.walk(directory):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), directory)
            if rel != CFG_FILE:
                out.append(rel.replace(os.sep, "/"))
    return sorted(out)


def load_infer_cfg(model_dir):
    """Read and check ``infer_cfg.yml``: format version and the model files' hashes."""
    path = os.path.join(model_dir, CFG_FILE)
    if not os.path.isfile(path):
        raise InputError(f"{model_dir} is not an export directory: {CFG_FILE} is missing (run tools/export.py)")
    with open(path) as f:
        info = yaml.safe_load(f)
    if not isinstance(info, dict) or info.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path}: export format {info.get('format_version') if isinstance(info, dict) else None} "
                         f"but this ppeye reads format {FORMAT_VERSION}: re-export with tools/export.py")
    # every file is verified before any is read (joblib and numpy files can run code when loaded)
    unlisted = sorted(set(bundle_files(model_dir)) - set(info["files"]))
    if unlisted:
        raise InputError(f"{model_dir}: {', '.join(unlisted[:5])} not written by this export (not in {CFG_FILE}): "
                         f"remove them or re-export")
    for name, digest in info["files"].items():
        p = os.path.join(model_dir, name)
        if not os.path.isfile(p):
            raise InputError(f"{model_dir}: {name} is missing")
        if sha256(p) != digest:
            raise InputError(f"{p} is not the file this export wrote (hash differs from {CFG_FILE}): "
                             f"the directory mixes files of different exports, or the file was altered")
    return info
