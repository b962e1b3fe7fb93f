"""Multi-label losses over the 4 diseases, on logits [B, 4] or TabM member logits [B, k, 4].

With member logits, the loss is the mean of the k member losses (TabM's training rule).
Every loss takes ``prevalence`` (the training share of positives per disease) so that
``class_weights: auto`` can weigh positives by ``(1 - p) / p``: a rare disease's few cases
count as much, in total, as its many non-cases.

``total_loss`` adds the MoE load-balancing losses that OnsetNet returns (already multiplied
by ``model.moe.aux_loss_weight``).
"""
import numpy as np

from ..core.errors import ConfigError, InputError
from ..core.paddle_env import import_paddle
from ..core.registry import LOSSES

paddle = import_paddle()
nn = paddle.nn
F = paddle.nn.functional


def positive_weights(class_weights, prevalence, num_classes=4):
    """Positive-class weights [num_classes]: from a list, or ``auto`` = (1 - p) / p, or None."""
    if class_weights is None:
        return None
    if class_weights == "auto":
        if prevalence is None:
            raise ConfigError("loss.class_weights: auto needs the training prevalence of each disease "
                              "(the trainer passes it); give a list of 4 weights to set them by hand")
        p = np.asarray(prevalence, dtype="float64")
        if p.shape != (num_classes,) or np.any(p <= 0) or np.any(p >= 1):
            raise ConfigError(f"loss: prevalence must be {num_classes} values in (0, 1) for class_weights: auto, "
                              f"got {prevalence!r} (a disease with no case or no non-case in the training split?)")
        return ((1 - p) / p).astype("float32")
    w = np.asarray(class_weights, dtype="float32")
    if w.shape != (num_classes,) or np.any(w <= 0):
        raise ConfigError(f"loss.class_weights must be 'auto', null or {num_classes} positive numbers, "
                          f"got {class_weights!r}")
    return w


def _check(logits, labels):
    if len(logits.shape) not in (2, 3) or len(labels.shape) != 2 or logits.shape[-1] != labels.shape[-1] \
            or logits.shape[0] != labels.shape[0]:
        raise InputError(f"loss expects logits [B, L] or [B, k, L] and labels [B, L], "
                         f"got {list(logits.shape)} and {list(labels.shape)}")
    labels = labels.astype(logits.dtype)
    return labels.unsqueeze(1).expand_as(logits) if len(logits.shape) == 3 else labels


class _MultiLabelLoss(nn.Layer):
    def __init__(self, class_weights="auto", prevalence=None, num_classes=4):
        super().__init__()
        w = positive_weights(class_weights, prevalence, num_classes)
        if w is not None:
            self.register_buffer("pos_weight", paddle.to_tensor(w), persistable=False)
        else:
            self.pos_weight = None

    def elementwise(self, logits, labels):
        """Per-element loss [B, (k,) L]; each registered loss (WeightedBCE, AsymmetricLoss) defines it."""
        raise TypeError(f"{type(self).__name__} must define elementwise(logits, labels)")

    def forward(self, logits, labels):
        labels = _check(logits, labels)
        loss = self.elementwise(logits.astype("float32"), labels.astype("float32"))
        if self.pos_weight is not None:
            loss = loss * (labels * self.pos_weight + (1 - labels))
        return loss.mean()


@LOSSES.register
class WeightedBCE(_MultiLabelLoss):
    """Binary cross-entropy with logits, positives weighted per class; ``focal_gamma > 0``
    multiplies each term by ``(1 - p_t) ** gamma`` (focal loss, Lin et al., 2017)."""

    def __init__(self, class_weights="auto", focal_gamma=0.0, prevalence=None, num_classes=4):
        super().__init__(class_weights, prevalence, num_classes)
        self.focal_gamma = float(focal_gamma)

    def elementwise(self, logits, labels):
        loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        if self.focal_gamma > 0:
            p = F.sigmoid(logits)
            p_t = labels * p + (1 - labels) * (1 - p)
            loss = loss * (1 - p_t) ** self.focal_gamma
        return loss


@LOSSES.register
class FocalLoss(WeightedBCE):
    """``WeightedBCE`` with ``focal_gamma`` = 2 by default."""

    def __init__(self, class_weights=None, focal_gamma=2.0, prevalence=None, num_classes=4):
        super().__init__(class_weights, focal_gamma, prevalence, num_classes)


@LOSSES.register
class AsymmetricLoss(_MultiLabelLoss):
    """Asymmetric loss (Ridnik et al., 2021): ``-(1-p)^gamma_pos log p`` for positives,
    ``-p_m^gamma_neg log(1-p_m)`` for negatives with ``p_m = max(p - clip, 0)``, which
    down-weights (and, below ``clip``, ignores) easy negatives."""

    def __init__(self, gamma_pos=0.0, gamma_neg=4.0, clip=0.05, class_weights=None, prevalence=None, num_classes=4):
        super().__init__(class_weights, prevalence, num_classes)
        self.gamma_pos, self.gamma_neg, self.clip = float(gamma_pos), float(gamma_neg), float(clip)

    def elementwise(self, logits, labels):
        p = F.sigmoid(logits)
        p_m = paddle.clip(p - self.clip, min=0.0) if self.clip > 0 else p
        log_p = F.log_sigmoid(logits)
        log_not_p_m = paddle.log(paddle.clip(1 - p_m, min=1e-8))
        pos = (1 - p) ** self.gamma_pos * log_p
        neg = p_m ** self.gamma_neg * log_not_p_m
        return -(labels * pos + (1 - labels) * neg)


def build_loss(cfg, prevalence=None):
    """The loss named by ``cfg.loss`` (``type`` + arguments), with the training prevalence."""
    return LOSSES.build(cfg["loss"], prevalence=prevalence)


def total_loss(criterion, explain, labels):
    """Training loss: the mean member loss plus the (weighted) auxiliary losses; a criterion
    with ``uses_explain`` (the contrastive InfoNCE) takes the whole explain dict."""
    if getattr(criterion, "uses_explain", False):
        return criterion(explain, labels) + explain["aux_loss"]
    return criterion(explain["member_logits"], labels) + explain["aux_loss"]
