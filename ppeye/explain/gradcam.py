"""3D Grad-CAM on the ResNet3D of OnsetNet, with shared-day batches.

For a chosen layer (default: the last residual block, ``backbone.blocks.<last>``) with output
A [U, K, d, h, w] for the U distinct day volumes of a batch, and a disease j:

    G = d(sum_b logit_bj) / dA          (one backward pass per disease)
    alpha_uk = mean_{d,h,w} G_uk        (channel weights, per volume)
    cam_u = ReLU(sum_k alpha_uk A_uk)   -> trilinear upsampling to (hours, H, W)

``method="hirescam"`` (HiResCAM, Draelos and Carin 2020) keeps the gradient per cell instead
of averaging it over the map: ``cam_u = ReLU(sum_k G_uk * A_uk)``. For a model whose score is
a spatial *contrast* (more of a variable inside a region than outside it, the synthetic
event), the gradient is positive inside and negative outside; Grad-CAM's average over the map
cancels that sign pattern and the map points at whatever the channels light up, while
HiResCAM's sum is, cell by cell, the first-order contribution of the cell to the logit
(docs/explanations.md: measured on an ideal read-out of the planted event).

The layer may also be ``input``: A is then the weather volume itself (channels = variables),
and each variable's own signed term, summed over the hours, is returned too (``by_variable``):
where each variable raises or lowers the risk.

A person's windows point at volumes through ``day_index``; their spatial map (lat x lon) and
hour-of-day profile are the sums over the days of the window of the day's CAM, each day
weighted (``day_weighting``) by

- ``attention``: the person's **patient-to-weather cross-attention** on it (heads and ensemble
  members averaged; the weights sum to 1 over the window): the attention says which days the
  prediction read, Grad-CAM where and when within a day;
- ``gradient``: nothing (1 / T each): a day's CAM is already as large as the gradient that
  reaches it, so days the logit does not depend on add nothing.

The gradient of the *sum* of the batch's logits reaches a shared volume from every person of the
batch who uses it (people of one centre share days): a person's map is the batch's map on that
person's days, and the maps are meant to be read as group means (a disease's cases).
"""
import numpy as np

from ..core.errors import InputError
from ..core.paddle_env import import_paddle

paddle = import_paddle()
F = paddle.nn.functional


INPUT = "input"


def cam_layers(model):
    """Names of the maps Grad-CAM can use: the backbone's residual blocks and stem (5-D outputs)
    and ``input``, the weather volumes themselves (channels = the variables)."""
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        return []
    names = [f"backbone.{n}" for n, _ in backbone.named_sublayers() if n.startswith("blocks.") and n.count(".") == 1]
    return names + ["backbone.stem", INPUT]


def default_layer(model):
    names = cam_layers(model)
    if not names:
        raise InputError("Grad-CAM needs the weather branch (model.weather_branch: true): this model has no ResNet")
    return [n for n in names if n.startswith("backbone.blocks.")][-1]


METHODS = ("gradcam", "hirescam")
DAY_WEIGHTINGS = ("attention", "gradient")


class GradCAM3D:
    def __init__(self, model, layer=None, method="gradcam", day_weighting="attention"):
        if method not in METHODS:
            raise InputError(f"Grad-CAM method {method!r} is unknown; choose from {', '.join(METHODS)}")
        if day_weighting not in DAY_WEIGHTINGS:
            raise InputError(f"Grad-CAM day weighting {day_weighting!r} is unknown; choose from {', '.join(DAY_WEIGHTINGS)}")
        self.model, self.method, self.day_weighting = model, method, day_weighting
        valid = cam_layers(model)
        if not valid:
            raise InputError("Grad-CAM needs the weather branch (model.weather_branch: true): this model has no ResNet")
        self.layer_name = layer or default_layer(model)
        layers = dict(model.named_sublayers())
        if self.layer_name not in valid:
            raise InputError(f"Grad-CAM layer {self.layer_name!r} does not exist or gives no 3-D feature map; "
                             f"valid layers: {', '.join(valid)}")
        self.layer = layers.get(self.layer_name)            # None for the input
        self.map_shape = None

    def __call__(self, weather_unique, day_index, tab, tab_mask, diseases=(0, 1, 2, 3), weather_present=None):
        """{"cam": [J, U, D, H, W] (upsampled, >= 0), "logits": [B, 4], "day_weights": [B, T],
        "explain": the forward's explain dict}; at the ``input`` also "by_variable":
        [J, U, C, H, W], each variable's own signed term (weight x input, hours summed, no ReLU:
        with ``hirescam`` the first-order contribution of each variable at each cell)."""
        captured = {}

        def hook(layer, inputs, output):
            captured["A"] = output

        handle = self.layer.register_forward_post_hook(hook) if self.layer is not None else None
        self.model.eval()
        weather_unique = weather_unique.detach()
        weather_unique.stop_gradient = False       # a gradient path even if the layer had no parameters
        try:
            presence = {} if weather_present is None else {"weather_present": weather_present}
            logits, ex = self.model(weather_unique, day_index, tab, tab_mask, return_explain=True, **presence)
        finally:
            if handle is not None:
                handle.remove()
        A = captured["A"] if self.layer is not None else weather_unique
        self.map_shape = tuple(int(v) for v in A.shape[2:])                     # (d, h, w) of the layer's map
        size = [int(v) for v in weather_unique.shape[2:]]
        cams, by_variable = [], []
        for j in diseases:
            (g,) = paddle.grad(logits[:, j].sum(), A, retain_graph=True)
            weight = g.mean(axis=[2, 3, 4], keepdim=True) if self.method == "gradcam" else g
            terms = weight * A                                                    # [U, K, d, h, w]
            if self.layer is None:
                by_variable.append(terms.sum(axis=2).numpy())                     # [U, C, H, W], signed
            cam = F.relu(terms.sum(axis=1, keepdim=True))                         # [U, 1, d, h, w]
            cam = F.interpolate(cam, size=size, mode="trilinear", align_corners=False)
            cams.append(cam[:, 0].numpy())
        att = ex.get("patient_to_weather") if self.day_weighting == "attention" else None
        if att is not None:
            w = att.mean(axis=[1, 2]).numpy()                                    # [B, T]
            w = w / np.maximum(w.sum(1, keepdims=True), 1e-12)
        else:
            t = int(day_index.shape[1])
            w = np.full((int(day_index.shape[0]), t), 1.0 / t)
        out = {"cam": np.stack(cams), "logits": logits.numpy(), "day_weights": w, "explain": ex}
        if by_variable:
            out["by_variable"] = np.stack(by_variable)
        return out


def window_sum(per_volume, day_index, day_weights):
    """Per person: the weighted sum over their window's days of per-volume maps [J, U, ...]
    (volume indices ``day_index`` [B, T], weights [B, T]) -> [B, J, ...]."""
    per_day = per_volume[:, np.asarray(day_index)]                            # [J, B, T, ...]
    w = day_weights.reshape(day_weights.shape + (1,) * (per_day.ndim - 3))
    return np.moveaxis((per_day * w[None]).sum(2), 0, 1)


def person_maps(cam, day_index, day_weights):
    """Per person and disease: spatial map [B, J, H, W] and hour profile [B, J, D] from the
    volume CAMs [J, U, D, H, W], the windows' volume indices [B, T] and day weights [B, T]."""
    weighted = window_sum(cam, day_index, day_weights)                         # [B, J, D, H, W]
    return weighted.sum(2), weighted.sum((3, 4))


def region_energy_ratio(spatial, rows, cols):
    """(mass inside the region / total mass) / (region area / total area): 1 = chance.

    ``spatial`` [..., H, W] >= 0; ``rows``/``cols`` inclusive cell ranges."""
    spatial = np.asarray(spatial, dtype=np.float64)
    h, w = spatial.shape[-2:]
    inside = spatial[..., rows[0] : rows[1] + 1, cols[0] : cols[1] + 1].sum((-1, -2))
    total = spatial.sum((-1, -2))
    area = (rows[1] - rows[0] + 1) * (cols[1] - cols[0] + 1) / (h * w)
    return np.where(total > 0, inside / np.maximum(total, 1e-300), np.nan) / area


def pointing_game(spatial, rows, cols):
    """Share of maps whose maximum lies inside the region (chance: the region's area share)."""
    spatial = np.asarray(spatial)
    flat = spatial.reshape(-1, spatial.shape[-2] * spatial.shape[-1]).argmax(1)
    r, c = np.unravel_index(flat, spatial.shape[-2:])
    return float(np.mean((r >= rows[0]) & (r <= rows[1]) & (c >= cols[0]) & (c <= cols[1])))
