"""Post-training int8 weight quantization with Paddle's quantization API, for ``--quantize``.

What Paddle 3.3.1 allows, measured here (bench/bench_export.py prints the effect):

* ``paddle.quantization.PTQ`` wraps ``nn.Linear`` and ``nn.Conv2D`` only; Conv3D layers
  (the ResNet3D) get no quantized counterpart, so they stay float32.
* Activation observers cannot be traced with a dynamic batch (the quantize op creates a
  persistable value of the activation's shape: "shape[0] = -1").
* A converted weight-only program (``PTQ.convert``) exports, but Paddle Inference on the
  CPU cannot create a predictor from it ("Tensor holds no memory"); with
  ``remain_weight=True`` it runs and the quantization ops are dropped (outputs equal the
  float model's).

So ``--quantize`` uses PTQ with per-tensor absmax weight observers on every Linear layer
that the calibration batches reach (experts no token reached keep float weights), takes
each layer's int8 grid from its observer, and writes the rounded weights back into a
copy of the model: the export holds int8-valued weights stored as float32. It shows the
accuracy cost of int8 weights and runs wherever the float export runs; it is not smaller
or faster (``infer_cfg.yml`` says so under ``quantization``).
"""
import copy

import numpy as np

from ..core.paddle_env import import_paddle
from ..data.dataset import WeatherCollator

paddle = import_paddle()

SCHEME = ("int8 weights of Linear layers (Paddle PTQ, per-tensor absmax observers), stored "
          "dequantized as float32; Conv3D and activations stay float32 (not supported by "
          "Paddle 3.3.1's PTQ / Paddle Inference on CPU)")


def _reached_linears(layer, batches):
    called = {}

    def seen(mod, inputs, output):      # a post hook that returns something replaces the output
        called[id(mod)] = mod

    hooks = [m.register_forward_post_hook(seen) for m in layer.sublayers() if isinstance(m, paddle.nn.Linear)]
    with paddle.no_grad():
        for arrays in batches:
            layer(*[paddle.to_tensor(a) for a in arrays])
    for h in hooks:
        h.remove()
    total = sum(isinstance(m, paddle.nn.Linear) for m in layer.sublayers())
    return list(called.values()), total


def quantize_weights(layer, dataset, names, cfg, log, calibration_batches=4, bits=8):
    """A copy of the export ``layer`` with int8-rounded Linear weights, and a report dict."""
    from paddle.quantization import PTQ, QuantConfig
    from paddle.quantization.observers import AbsmaxObserver


    collate = WeatherCollator(dataset.store)
    size = int(cfg["loader"]["batch_size"])
    batches = []
    for b in range(min(calibration_batches, max(1, len(dataset) // size))):
        batch = collate([dataset[i] for i in range(b * size, min(len(dataset), (b + 1) * size))])
        batches.append([batch[n] for n in names])
    work = copy.deepcopy(layer)
    work.eval()
    reached, total = _reached_linears(work, batches)
    qc = QuantConfig(activation=None, weight=None)
    qc.add_layer_config(reached, weight=AbsmaxObserver(quant_bits=bits))
    ptq = PTQ(qc)
    observed = ptq.quantize(work, inplace=True)
    with paddle.no_grad():
        for arrays in batches:
            observed(*[paddle.to_tensor(a) for a in arrays])
    levels = 2 ** (bits - 1) - 1
    quantized, errors = 0, []
    for sub in observed.sublayers():
        quanter = getattr(sub, "weight_quanter", None)
        if quanter is None:
            continue
        w = sub.weight.numpy()
        scale = float(quanter.scales().item())
        q = np.clip(np.round(w / scale * levels), -levels, levels) * (scale / levels)
        errors.append(float(np.abs(q - w).max() / max(scale, 1e-12)))
        sub.weight.set_value(q.astype(w.dtype))
        quantized += 1
    baked = _unwrap(observed, layer)
    info = {"scheme": SCHEME, "bits": bits, "calibration_batches": len(batches),
            "linear_layers_quantized": quantized, "linear_layers_total": total,
            "max_relative_rounding_error": max(errors) if errors else 0.0}
    log.info(f"quantized the weights of {quantized} of {total} Linear layers to int{bits} "
             f"({len(batches)} calibration batches); Conv3D layers stay float32")
    return baked, info


def _unwrap(observed, original):
    """A copy of ``original`` carrying the (rounded) weights of the PTQ-wrapped ``observed``."""
    out = copy.deepcopy(original)
    state = {}
    for name, value in observed.state_dict().items():
        key = name.replace("._layer.", ".")          # ObserveWrapper keeps the wrapped layer as _layer
        state[key] = value
    own = out.state_dict()
    out.set_state_dict({k: state[k] for k in own if k in state})
    missing = [k for k in own if k not in state]
    if missing:
        raise RuntimeError(f"quantization lost parameters {missing[:3]} (Paddle PTQ naming changed?)")
    return out
