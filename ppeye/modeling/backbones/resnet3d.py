"""ResNet3D (He et al., 2016; Hara et al., 2018): 3-D residual network for one day's weather.

Input [N, C, D, H, W]: C variables, D hours, H x W cells (24 x 20 x 20 in the full study).
Output [N, 8 * base_width] after global average pooling (``pool: avg``), or
[N, heads * 8 * base_width] with ``pool: positional`` (see :class:`PositionalPool`), followed by
the coarse summary when it is on (below);
``return_features=True`` also gives the last stage's feature map [N, 8 * base_width, d, h, w],
the layer Grad-CAM explains.

Why a positional pool. Global average pooling makes the day embedding blind to *where* in
the box something happens (up to padding effects), yet around a home position matters (a
coast, a city upwind). The positional pool keeps it: each of its heads is a softmax weighting
of the map's positions from a learned per-position score plus a content score; it starts as
the plain average (zero-initialised scores) and its position scores are themselves a map of
where the model looks.

The resolution choice. The ImageNet stem (7x7x7 stride 2 convolution, then a stride-2 max
pool) shrinks 24 x 20 x 20 to 6 x 5 x 5 before the first block and to 1 x 1 x 1 at the end,
leaving no map to explain. Here the stem is one 3x3x3 convolution (``stem_stride``, default 1)
with no pooling, and the stage strides default to (1, 2, 2, 1): 24 x 20 x 20 stays full size
through stage 1, halves twice, and stage 4 keeps stage 3's grid, so the last map is 6 x 5 x 5
(4-hour x ~45 km cells on the 0.1 degree ERA5-Land grid) rather than 1 x 1 x 1. Strides may
be ints or [d, h, w] triples, e.g. ``stem_stride: [1, 2, 2]`` to quarter the cost.

Coordinate channels (``coords: true``). Convolutions are translation-equivariant: a blob of
rain reads the same wherever it falls in the box, and only the zero padding tells a filter
where it is. With ``coords`` the stem also sees two fixed channels, the cell's row and column
scaled to [-1, 1] (as in CoordConv, Liu et al., 2018), so any layer can respond to "this, but
only north-east of the home". It costs 2 input channels of the stem convolution.

The coarse summary (``summary: {enabled: true, grid: [d, h, w]}``). Beside the learned features
the output carries each variable of the (normalised) input average-pooled to a d x h x w grid,
flattened: ``C * d * h * w`` fixed numbers per day with no parameters. They are what the day
reconstruction asks the embedding to recover (``layers/day_decoder.py``) but exact, and a
learned encoder trained on a few centres only approximates them (the demo's pretrained encoder
recovers 41% of the planted variable's 4 x 4 pattern). Transfer is where that shows: a linear
read-out of the lag-window mean of these numbers (with the patient features) scores 0.71-0.73
macro ROC-AUC on the demo's unseen centre, of the 64 pretrained day features 0.68 (non-neural,
one run; bench/bench_generalisation.py measures the model with it). Output width with it:
``out_channels = features + summary_width``; the map for Grad-CAM is unchanged.

Channels-last (``channels_last: true``). The convolutions and BatchNorms then run on
[N, D, H, W, C] (``NDHWC``), the layout GPU tensor cores are fastest in with half precision
(measured for this network with PyTorch on an H200: bf16 4,903 volumes/s channels-last against
2,917 channels-first). Inputs and outputs are as with channels-first: the input is transposed
once after the coordinate channels are added and the last map once before pooling (so Grad-CAM
reads [N, C, d, h, w] as always). Parameters have the same shapes in both layouts, so a
checkpoint loads into either; outputs agree to float rounding (tested).

Normalisation (``norm``). ``batch`` (default): BatchNorm, whose statistics come from each
process's batch; the grouped sampler makes a batch the people of one site, so on several GPUs
each normalises with one site's days and the running statistics are averaged over ranks at each
epoch's end. ``sync_batch``: the trainer turns every BatchNorm into a SyncBatchNorm on multi-GPU
runs (statistics over all ranks' batches in each step; same parameters, so checkpoints load
either way; Paddle has no CPU kernel for it). ``group``: GroupNorm (groups of about 8 channels),
no batch statistics at all, so training and inference normalise alike whatever the batch; its
checkpoints hold no running statistics and do not load into the other two.
"""
from math import prod

from ...core.errors import InputError
from ...core.paddle_env import import_paddle

paddle = import_paddle()
nn = paddle.nn
F = paddle.nn.functional

STAGE_BLOCKS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def _triple(s):
    return [int(v) for v in s] if isinstance(s, (list, tuple)) else [int(s)] * 3


def _conv(cin, cout, kernel, stride, layout="NCDHW"):
    return nn.Conv3D(cin, cout, kernel, stride=stride, padding=kernel // 2, bias_attr=False,
                     weight_attr=nn.initializer.KaimingNormal(nonlinearity="relu"), data_format=layout)


def _bn(channels, layout="NCDHW", norm="batch"):
    if norm == "group":      # groups of about 8 channels (at most 32 groups), dividing the channels
        groups = max(g for g in range(1, min(32, channels) + 1) if channels % g == 0 and channels // g >= min(8, channels))
        return nn.GroupNorm(groups, channels, data_format=layout)
    return nn.BatchNorm3D(channels, data_format=layout)    # batch, and sync_batch (converted by the trainer)


class BasicBlock3D(nn.Layer):
    """Two 3x3x3 convolutions with BatchNorm; a 1x1x1 projection shortcut when the shape changes."""

    def __init__(self, cin, cout, stride=1, layout="NCDHW", norm="batch"):
        super().__init__()
        stride = _triple(stride)
        self.conv1, self.bn1 = _conv(cin, cout, 3, stride, layout), _bn(cout, layout, norm)
        self.conv2, self.bn2 = _conv(cout, cout, 3, 1, layout), _bn(cout, layout, norm)
        self.shortcut = None
        if cin != cout or stride != [1, 1, 1]:
            self.shortcut = nn.Sequential(_conv(cin, cout, 1, stride, layout), _bn(cout, layout, norm))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (x if self.shortcut is None else self.shortcut(x)))


class PositionalPool(nn.Layer):
    """``heads`` weighted means of a feature map [N, C, d, h, w] -> [N, heads * C].

    Weights = softmax over positions of (per-position score + 1x1x1 convolution of the
    content); both start at zero, so at initialisation every head is the plain mean.
    """

    def __init__(self, channels, size, heads=4):
        super().__init__()
        self.heads, self.size = int(heads), [int(v) for v in size]
        positions = self.size[0] * self.size[1] * self.size[2]
        self.position = self.create_parameter([self.heads, positions], default_initializer=nn.initializer.Constant(0.0))
        self.content = nn.Conv3D(channels, self.heads, 1, weight_attr=nn.initializer.Constant(0.0),
                                 bias_attr=False)

    def weights(self, h):
        """[N, heads, d * h * w] pooling weights."""
        return F.softmax(self.content(h).flatten(2) + self.position, axis=-1)

    def forward(self, h):
        if [int(v) for v in h.shape[2:]] != self.size:
            raise InputError(f"the positional pool was built for a {self.size} map, got {list(h.shape[2:])}: "
                             f"the input's (D, H, W) differ from the config's")
        pooled = paddle.matmul(self.weights(h), h.flatten(2).transpose([0, 2, 1]))    # [N, heads, C]
        return pooled.flatten(1)


def output_size(size, stem_stride, strides, depth):
    """The last map's (d, h, w) for an input (D, H, W): each stride-s 3x3x3 convolution gives ceil(n / s)."""
    out = [int(v) for v in size]
    for stride in [stem_stride] + [s for s, n in zip(strides, STAGE_BLOCKS[depth]) if n]:
        out = [-(-n // s) for n, s in zip(out, _triple(stride))]
    return out


class ResNet3D(nn.Layer):
    """ResNet3D-{10, 18, 34} with stages of base_width x (1, 2, 4, 8) channels."""

    def __init__(self, in_channels, depth=18, base_width=64, stem_stride=(1, 1, 1), strides=(1, 2, 2, 1), recompute=False,
                 pool="avg", pool_heads=4, coords=False, input_size=None, summary=None, channels_last=False,
                 norm="batch"):
        super().__init__()
        if depth not in STAGE_BLOCKS:
            raise InputError(f"model.backbone.depth must be one of {sorted(STAGE_BLOCKS)}, got {depth}")
        if len(strides) != 4:
            raise InputError(f"model.backbone.strides needs one stride per stage (4), got {strides}")
        if norm not in ("batch", "sync_batch", "group"):
            raise InputError(f"model.backbone.norm must be batch, sync_batch or group, got {norm!r}")
        if pool not in ("avg", "positional"):
            raise InputError(f"model.backbone.pool must be avg or positional, got {pool!r}")
        if pool == "positional" and input_size is None:
            raise InputError("model.backbone.pool: positional needs the input's (D, H, W)")
        self.in_channels = in_channels
        self.features = 8 * base_width * (int(pool_heads) if pool == "positional" else 1)
        self.summary_grid = self._summary_grid(summary, input_size)
        self.summary_width = in_channels * prod(self.summary_grid) if self.summary_grid else 0
        self.out_channels = self.features + self.summary_width
        self.pool = (PositionalPool(8 * base_width, output_size(input_size, stem_stride, strides, depth), pool_heads)
                     if pool == "positional" else None)
        self.coords = bool(coords)
        self.channels_last = bool(channels_last)
        layout = "NDHWC" if self.channels_last else "NCDHW"
        self.stem = nn.Sequential(_conv(in_channels + 2 * self.coords, base_width, 3, _triple(stem_stride), layout),
                                  _bn(base_width, layout, norm), nn.ReLU())
        blocks, cin = [], base_width
        for i, (n, stride) in enumerate(zip(STAGE_BLOCKS[depth], strides)):
            cout = base_width * 2 ** i
            for j in range(n):
                blocks.append(BasicBlock3D(cin, cout, stride if j == 0 else 1, layout, norm))
                cin = cout
        self.blocks = nn.LayerList(blocks)
        self.recompute = recompute

    @staticmethod
    def _summary_grid(summary, input_size):
        """``model.backbone.summary`` -> the (d, h, w) grid, or None when it is off."""
        summary = dict(summary or {})
        unknown = set(summary) - {"enabled", "grid"}
        if unknown:
            raise InputError(f"model.backbone.summary: unknown key(s) {sorted(unknown)} (known: enabled, grid)")
        if not summary.get("enabled", False):
            return None
        grid = summary.get("grid", [1, 4, 4])
        if (not isinstance(grid, (list, tuple)) or len(grid) != 3
                or not all(isinstance(g, int) and not isinstance(g, bool) and g >= 1 for g in grid)):
            raise InputError(f"model.backbone.summary.grid must be 3 integers >= 1 (hours, rows, cols), got {grid!r}")
        if input_size is not None and any(g > int(n) for g, n in zip(grid, input_size)):
            raise InputError(f"model.backbone.summary.grid {list(grid)} is finer than the input (D, H, W) "
                             f"{list(input_size)}")
        return tuple(int(g) for g in grid)

    def summary(self, x):
        """[N, C, D, H, W] -> [N, C * d * h * w]: each variable average-pooled to the summary grid."""
        return F.adaptive_avg_pool3d(x, self.summary_grid).reshape([-1, self.summary_width])

    @staticmethod
    def _with_coords(x):
        """x [N, C, D, H, W] with the row and column coordinates (in [-1, 1]) appended as 2 channels."""
        n, d, h, w = x.shape[0], x.shape[2], x.shape[3], x.shape[4]
        rows = paddle.linspace(-1.0, 1.0, h, dtype=x.dtype).reshape([1, 1, 1, -1, 1]).expand([n, 1, d, h, w])
        cols = paddle.linspace(-1.0, 1.0, w, dtype=x.dtype).reshape([1, 1, 1, 1, -1]).expand([n, 1, d, h, w])
        return paddle.concat([x, rows, cols], axis=1)

    def forward(self, x, return_features=False):
        if len(x.shape) != 5 or x.shape[1] != self.in_channels:
            raise InputError(f"ResNet3D expects [N, C={self.in_channels}, D, H, W], got {list(x.shape)}")
        h = self._with_coords(x) if self.coords else x
        if self.channels_last:
            h = h.transpose([0, 2, 3, 4, 1])                        # [N, D, H, W, C]
        h = self.stem(h)
        for block in self.blocks:
            if self.recompute and self.training:
                from paddle.distributed.fleet.utils import recompute

                h = recompute(block, h, use_reentrant=False)
            else:
                h = block(h)
        if self.channels_last:
            h = h.transpose([0, 4, 1, 2, 3])                        # the last map as [N, C, d, h, w]
        pooled = h.mean(axis=[2, 3, 4]) if self.pool is None else self.pool(h)
        if self.summary_grid:
            pooled = paddle.concat([pooled, self.summary(x)], axis=1)
        return (pooled, h) if return_features else pooled
