"""AFNO over the time axis: Adaptive Fourier Neural Operator token mixing (Guibas et al., 2022),
in the one-dimensional form used here for a sequence of T daily embeddings.

``AFNO1D`` (the filter), for x [B, T, E] split into ``num_blocks`` channel blocks of size E/nb:

1. ``X = rfft(x, axis=T, norm="ortho")``: M = T//2 + 1 complex modes, computed in float32
   (Paddle's CPU FFT takes float32/64; under AMP the input is cast and the output cast back).
2. A block-diagonal complex 2-layer MLP shared by all modes, with the complex weights kept as
   real/imaginary pairs of real parameters: ``O1 = ReLU(X W1 + b1)`` (ReLU on the real and
   imaginary parts separately), ``O2 = O1 W2 + b2``.
3. Soft-shrinkage of the real and imaginary parts by ``sparsity_threshold`` (sparsity in
   the frequency domain).
4. Only the lowest ``ceil(M * hard_thresholding_fraction)`` modes are kept; the rest are zero.
5. ``irfft`` back to length T, plus the input (the residual inside the filter).

``AFNOBlock``: ``x + filter(LN(x))`` then ``+ MLP(LN(.))``, the MLP optionally a mixture of
experts, as in FourCastNet's block with its double skip.
"""
import math

from ...core.errors import InputError
from ...core.paddle_env import import_paddle
from .moe import apply_ffn, build_ffn

paddle = import_paddle()
nn = paddle.nn
F = paddle.nn.functional


class AFNO1D(nn.Layer):
    """Fourier token mixing over T. x [B, T, E] -> [B, T, E] (and the spectrum on request).

    The spectrum is a dict of ``in`` and ``out`` [B, M]: the mean magnitude over channels of
    each mode before the filter and after soft-shrinkage and mode truncation.
    """

    def __init__(self, dim, num_blocks=8, sparsity_threshold=0.01, hard_thresholding_fraction=1.0,
                 hidden_factor=1, scale=0.02):
        super().__init__()
        if dim % num_blocks:
            raise InputError(f"AFNO: width {dim} is not divisible by num_blocks {num_blocks}")
        if not 0.0 < hard_thresholding_fraction <= 1.0:
            raise InputError(f"AFNO: hard_thresholding_fraction must be in (0, 1], got {hard_thresholding_fraction}")
        self.dim, self.num_blocks = dim, num_blocks
        self.block_size = dim // num_blocks
        self.sparsity_threshold = sparsity_threshold
        self.hard_thresholding_fraction = hard_thresholding_fraction
        bs, hs = self.block_size, self.block_size * hidden_factor

        def param(shape):  # index 0 = real part, 1 = imaginary part
            return self.create_parameter([2] + shape, default_initializer=nn.initializer.Normal(0.0, scale))

        self.w1, self.b1 = param([num_blocks, bs, hs]), param([num_blocks, hs])
        self.w2, self.b2 = param([num_blocks, hs, bs]), param([num_blocks, bs])

    def kept_modes(self, t):
        return max(1, math.ceil((t // 2 + 1) * self.hard_thresholding_fraction))

    @staticmethod
    def _complex_linear(xr, xi, w, b):
        """(xr + i xi) @ (w0 + i w1) + (b0 + i b1), block-diagonal: [B, M, nb, a] x [nb, a, c]."""
        rr = paddle.einsum("bmna,nac->bmnc", xr, w[0])
        ii = paddle.einsum("bmna,nac->bmnc", xi, w[1])
        ri = paddle.einsum("bmna,nac->bmnc", xr, w[1])
        ir = paddle.einsum("bmna,nac->bmnc", xi, w[0])
        return rr - ii + b[0], ri + ir + b[1]

    def forward(self, x, return_spectrum=False):
        if len(x.shape) != 3 or x.shape[-1] != self.dim:
            raise InputError(f"AFNO expects [B, T, {self.dim}], got {list(x.shape)}")
        dtype = x.dtype
        x = x.astype("float32")
        b, t = x.shape[0], x.shape[1]
        m = t // 2 + 1
        spec = paddle.fft.rfft(x, axis=1, norm="ortho")                     # [B, M, E]
        xr = paddle.real(spec).reshape([b, m, self.num_blocks, self.block_size])
        xi = paddle.imag(spec).reshape([b, m, self.num_blocks, self.block_size])

        o1r, o1i = self._complex_linear(xr, xi, self.w1, self.b1)
        o1r, o1i = F.relu(o1r), F.relu(o1i)
        o2r, o2i = self._complex_linear(o1r, o1i, self.w2, self.b2)
        o2r = F.softshrink(o2r, self.sparsity_threshold)
        o2i = F.softshrink(o2i, self.sparsity_threshold)

        kept = self.kept_modes(t)
        if kept < m:
            keep = paddle.concat([paddle.ones([kept]), paddle.zeros([m - kept])]).reshape([1, m, 1, 1])
            o2r, o2i = o2r * keep, o2i * keep
        out_spec = paddle.complex(o2r.reshape([b, m, self.dim]), o2i.reshape([b, m, self.dim]))
        y = paddle.fft.irfft(out_spec, n=t, axis=1, norm="ortho") + x
        y = y.astype(dtype)
        if not return_spectrum:
            return y
        return y, {"in": paddle.abs(spec).mean(axis=-1), "out": paddle.abs(out_spec).mean(axis=-1)}


class AFNOBlock(nn.Layer):
    """``x + AFNO1D(LN(x))``, then ``x + MLP(LN(x))`` (MLP or MoE). [B, T, E] -> [B, T, E].

    >>> block = AFNOBlock(16, num_blocks=4)
    >>> y, spectrum, routing = block(paddle.randn([2, 10, 16]))
    >>> list(y.shape), list(spectrum["in"].shape), routing is None
    ([2, 10, 16], [2, 6], True)
    """

    def __init__(self, dim, num_blocks=8, sparsity_threshold=0.01, hard_thresholding_fraction=1.0,
                 mlp_ratio=2, dropout=0.0, moe=None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.filter = AFNO1D(dim, num_blocks, sparsity_threshold, hard_thresholding_fraction)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = build_ffn(dim, int(dim * mlp_ratio), dim, dropout, moe)

    def forward(self, x):
        """Returns (y, spectrum dict, routing or None)."""
        y, spectrum = self.filter(self.norm1(x), return_spectrum=True)
        x = x + y
        h, routing = apply_ffn(self.mlp, self.norm2(x))
        return x + h, spectrum, routing
