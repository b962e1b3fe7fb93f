"""The day decoder: a linear map from a day embedding back to a coarse copy of its volume.

It serves the day reconstruction (``model.day_reconstruction``): as an auxiliary loss beside the
onset labels, and as the whole objective of the day-encoder pretraining
(``ppeye.engine.day_pretrain``). The target is the day's volume average-pooled to ``grid`` =
(hours, rows, cols) per variable, and with ``target: deviation`` each variable's pooled cells
minus their mean over the box (where the weather differs inside the box, not how warm or wet
the whole box is: the large-scale part dominates the plain volume's error and the decoder
learns little else). ``deviation_and_mean`` adds, per variable and pooled hour, the box mean
itself as one more element beside the deviations: a day encoder pretrained on deviations alone
has no reason to keep how warm, wet or windy the whole box was, which is the exposure most
studies measure (measured: ``bench/bench_independent.py``). With ``standardise`` each target element is scaled to zero mean and unit
variance by statistics fitted on training days (``fit``), so a variable whose spatial
differences are small counts as much as one whose are large. The statistics are buffers: saved
with the weights, so a pretrained decoder keeps the scale it was trained on.
"""
import numpy as np

from ...core.errors import InputError
from ...core.paddle_env import import_paddle

paddle = import_paddle()
nn = paddle.nn
F = paddle.nn.functional

TARGETS = ("volume", "deviation", "deviation_and_mean")
CONSTANT_TOLERANCE = 1e-4   # an element varying less than this share of its variable's spread is constant


def _varies(std, scale):
    return std > CONSTANT_TOLERANCE * np.maximum(scale, 1e-12)


class DayDecoder(nn.Linear):
    """``DayDecoder(width, channels, grid, target, standardise)``: ``forward(days [U, E])`` gives the
    decoded targets [U, channels * per_variable] (per_variable: prod(grid), plus grid[0] box means
    with ``deviation_and_mean``); ``target(volumes [U, C, D, H, W])`` the targets."""

    def __init__(self, width, channels, grid, target="volume", standardise=False):
        if target not in TARGETS:
            raise InputError(f"model.day_reconstruction.target must be one of {list(TARGETS)}, got {target!r}")
        # per variable: the pooled cells, then (deviation_and_mean) the box mean of each pooled hour
        per_variable = int(np.prod(grid)) + (int(grid[0]) if target == "deviation_and_mean" else 0)
        size = channels * per_variable
        super().__init__(width, size)
        self.grid, self.kind, self.standardise = [int(g) for g in grid], target, bool(standardise)
        self._channels = int(channels)
        self.per_variable = per_variable
        # without standardisation the buffers stay out of the state dict (checkpoints of plain
        # volume decoders hold the linear map only)
        self.register_buffer("target_mean", paddle.zeros([size]), persistable=self.standardise)
        self.register_buffer("target_std", paddle.ones([size]), persistable=self.standardise)

    @property
    def pooled_size(self):
        """Values per day of :meth:`pool`'s output, flattened: channels * prod(grid)."""
        return self._channels * int(np.prod(self.grid))

    def pool(self, volumes):
        """Volumes [U, C, D, H, W] average-pooled to ``grid``: [U, C * prod(grid)] (what a day-feature
        cache stores beside the ResNet's features, so the targets need no volume)."""
        return F.adaptive_avg_pool3d(volumes, self.grid).flatten(1)

    def coarse(self, volumes):
        """Unstandardised targets [U, C * per_variable] of volumes [U, C, D, H, W]."""
        return self.coarse_from_pooled(F.adaptive_avg_pool3d(volumes, self.grid))

    def coarse_from_pooled(self, t):
        """Unstandardised targets of pooled volumes [U, C, *grid] (or :meth:`pool`'s flat rows)."""
        if len(t.shape) == 2:
            t = t.reshape([-1, self._channels, *self.grid])
        if self.kind == "volume":
            return t.flatten(1)
        mean = t.mean(axis=[3, 4], keepdim=True)
        t = t - mean
        if self.kind == "deviation_and_mean":              # [U, C, D * H * W + D]: variable blocks stay whole
            return paddle.concat([t.flatten(2), mean.flatten(2)], axis=2).flatten(1)
        return t.flatten(1)

    def target(self, volumes):
        """The reconstruction targets of volumes [U, C, D, H, W] (no gradient)."""
        return self.target_from_pooled(F.adaptive_avg_pool3d(volumes, self.grid))

    def target_from_pooled(self, pooled):
        """The reconstruction targets of pooled volumes (:meth:`pool`'s rows, or [U, C, *grid])."""
        t = self.coarse_from_pooled(pooled)
        if self.standardise:
            t = (t - self.target_mean) / self.target_std
        return t.detach()

    @property
    def fitted(self):
        """Whether the standardisation statistics were fitted (or loaded); True without standardisation."""
        if not self.standardise:
            return True
        return not (bool((self.target_mean == 0).all().item()) and bool((self.target_std == 1).all().item()))

    def _targets_and_scale(self, volumes, chunk=256):
        """Unstandardised targets [N, size] of volumes [N, C, D, H, W] (numpy) and, per element, the
        spread of its variable in the pooled volume (std over days and cells) [size]."""
        if len(volumes) < 2:
            raise InputError(f"the day decoder's targets need at least 2 days to be fitted, got {len(volumes)}")
        t, pooled = [], []
        with paddle.no_grad():
            for i in range(0, len(volumes), chunk):
                x = paddle.to_tensor(volumes[i : i + chunk])
                t.append(self.coarse(x).numpy())
                pooled.append(F.adaptive_avg_pool3d(x, self.grid).flatten(2).numpy())
        t, pooled = np.concatenate(t).astype(np.float64), np.concatenate(pooled).astype(np.float64)
        return t, np.repeat(pooled.std(axis=(0, 2)), self.per_variable)

    def varying(self, volumes, chunk=256):
        """Which target elements vary over volumes [N, C, D, H, W] (numpy, N >= 2): bool [size]. An
        element is constant when its standard deviation over the days is at most
        ``CONSTANT_TOLERANCE`` times its variable's spread in the pooled volume (or the variable
        never varies): the deviations from the box mean of a variable whose pattern is the same in
        every cell are float rounding, and scaling them to unit variance, or scoring an R^2 against
        them, would blow that rounding up."""
        t, scale = self._targets_and_scale(volumes, chunk)
        return _varies(t.std(0), scale)

    def fit(self, volumes, chunk=256):
        """Fit the standardisation statistics on volumes [N, C, D, H, W] (numpy, normalised days):
        per target element the mean and standard deviation. A constant element (see
        :meth:`varying`) gets an infinite standard deviation, so its standardised target is 0."""
        if not self.standardise:
            return
        t, scale = self._targets_and_scale(volumes, chunk)
        mean, std = t.mean(0), t.std(0)
        std[~_varies(std, scale)] = np.inf
        self.target_mean.set_value(mean.astype(np.float32))
        self.target_std.set_value(std.astype(np.float32))

    @property
    def constant(self):
        """Bool [C * per_variable]: the elements the fitted standardisation found constant (none
        without standardisation)."""
        return np.isinf(self.target_std.numpy())

    def loss(self, days, volumes):
        """Mean squared error of the decoded days [U, E] against their volumes' targets."""
        return F.mse_loss(self(days), self.target(volumes))

    def loss_from_pooled(self, days, pooled):
        """:meth:`loss` with the volumes given pooled (:meth:`pool`'s rows, e.g. from a day-feature cache)."""
        return F.mse_loss(self(days), self.target_from_pooled(pooled))
