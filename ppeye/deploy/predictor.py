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


PRECISIONS = ("fp32", "fp16", "bf16")
# kept in float32 under half precision (Paddle Inference's mixed precision would cast them otherwise)
FLOAT32_OPS = {"fft_r2c", "fft_c2r", "fft_c2c"}


def create_predictor(model_dir, device="cpu", onednn=True, threads=None, precision="fp32", tensorrt=None):
    """A Paddle Inference predictor for ``model_dir`` (GPU when asked, oneDNN on CPU).

    On a GPU, ``precision`` fp16 or bf16 runs the program in half precision (the FFT ops stay in
    float32), and ``tensorrt`` (``{input name: (min, opt, max) shape}``, see :func:`trt_shapes`)
    hands the subgraphs TensorRT supports to TensorRT (fp32 or fp16) with those dynamic shapes.
    Both need a GPU build of Paddle with CUDA (and TensorRT); on the CPU they are refused."""
    from paddle import inference

    if precision not in PRECISIONS:
        raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    gpu = device.startswith("gpu")
    if not gpu and (precision != "fp32" or tensorrt):
        asked = " and ".join(filter(None, [f"--precision {precision}" if precision != "fp32" else "",
                                           "--tensorrt" if tensorrt else ""]))
        raise InputError(f"{asked} need a GPU (Paddle Inference's half precision and TensorRT run on CUDA); this "
                         f"run is on {device}: drop them or run on --device gpu")
    if tensorrt and precision == "bf16":
        raise InputError("--tensorrt runs in fp32 or fp16, not bf16: use --precision fp16, or bf16 without --tensorrt")
    config = inference.Config(os.path.join(model_dir, MODEL_FILES[0]), os.path.join(model_dir, MODEL_FILES[1]))
    if gpu:
        gpu_id = int(device.split(":")[1]) if ":" in device else 0
        mode = {"fp32": inference.PrecisionType.Float32, "fp16": inference.PrecisionType.Half,
                "bf16": inference.PrecisionType.Bfloat16}[precision]
        if tensorrt:
            config.enable_use_gpu(256, gpu_id)
            batch = max(shape[2][0] for name, shape in tensorrt.items() if name != "weather_unique")
            config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=int(batch), min_subgraph_size=3,
                                          precision_mode=mode, use_static=False, use_calib_mode=False)
            config.set_trt_dynamic_shape_info({k: v[0] for k, v in tensorrt.items()},
                                              {k: v[2] for k, v in tensorrt.items()},
                                              {k: v[1] for k, v in tensorrt.items()})
        else:
            config.enable_use_gpu(256, gpu_id, mode)
            if precision != "fp32":
                config.exp_disable_mixed_precision_ops(FLOAT32_OPS)
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(int(threads or os.environ.get("OMP_NUM_THREADS") or os.cpu_count()))
        config.enable_mkldnn() if onednn else config.disable_mkldnn()
    config.disable_glog_info()
    return inference.create_predictor(config)


def trt_shapes(inputs, batch_size, window_days):
    """TensorRT's dynamic shape ranges ``{name: (min, opt, max)}`` for an export's ``inputs``
    (infer_cfg.yml): 1 to ``batch_size`` people; the distinct day volumes ``weather_unique`` from 1
    to every person's own window (``batch_size x window_days``), optimised for one shared window."""
    out = {}
    for spec in inputs:
        if spec["name"] == "weather_unique":
            lo, opt, hi = 1, window_days, batch_size * window_days
        else:
            lo, opt, hi = 1, batch_size, batch_size
        out[spec["name"]] = tuple([n if d == -1 else int(d) for d in spec["shape"]] for n in (lo, opt, hi))
    return out


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
