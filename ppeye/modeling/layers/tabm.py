"""TabM: a parameter-efficient ensemble of MLPs for tabular data (Gorishniy et al., 2024).

k members share every weight matrix W; member i owns an input scale r_i, an output scale s_i
and a bias b_i (BatchEnsemble, Wen et al., 2020)::

    y_i = ((x_i * r_i) W^T) * s_i + b_i          x_i [in], W [out, in], r_i [in], s_i, b_i [out]

Variants (``variant``):

- ``tabm``: every layer is a BatchEnsemble layer. The first layer's r is initialised with
  random signs (+1/-1), all other r and s with ones, so members start different but stable.
- ``tabm-mini``: one random-sign scale r_i on the input, then a plain shared MLP; members
  differ only through that adapter (and the member-wise projection that follows in OnsetNet).

Training and prediction (done by OnsetNet and its loss): the loss is the **mean of the k
member losses**; the prediction is the **mean of the k member probabilities**.

Numeric features may first go through piecewise-linear embeddings (Gorishniy et al., 2022):
``PiecewiseLinearEmbedding``.
"""
import numpy as np

from ...core.errors import InputError
from ...core.paddle_env import import_paddle

paddle = import_paddle()
nn = paddle.nn
F = paddle.nn.functional


def _random_signs(layer, shape):
    """A parameter of +1/-1 drawn from Paddle's generator (so ``paddle.seed`` fixes it)."""
    p = layer.create_parameter(shape, default_initializer=nn.initializer.Constant(1.0))
    p.set_value(paddle.where(paddle.rand(shape) < 0.5, -paddle.ones(shape), paddle.ones(shape)))
    return p


class BatchEnsembleLinear(nn.Layer):
    """The BatchEnsemble layer. x [B, k, in] -> [B, k, out].

    ``r_init``: "ones", "random-signs" or None (no input scale); ``s_init``: "ones" or None.
    """

    def __init__(self, in_dim, out_dim, k, r_init="ones", s_init="ones"):
        super().__init__()
        self.in_dim, self.out_dim, self.k = in_dim, out_dim, k
        bound = 1.0 / np.sqrt(in_dim)
        self.weight = self.create_parameter([in_dim, out_dim],  # stored transposed: x @ weight
                                            default_initializer=nn.initializer.Uniform(-bound, bound))
        if r_init == "random-signs":
            self.r = _random_signs(self, [k, in_dim])
        else:
            self.r = None if r_init is None else self.create_parameter(
                [k, in_dim], default_initializer=nn.initializer.Constant(1.0))
        self.s = None if s_init is None else self.create_parameter(
            [k, out_dim], default_initializer=nn.initializer.Constant(1.0))
        # Every member's bias starts as the same draw, as a single nn.Linear's would.
        self.bias = self.create_parameter([k, out_dim], default_initializer=nn.initializer.Constant(0.0))
        self.bias.set_value(paddle.uniform([1, out_dim], min=-bound, max=bound).expand([k, out_dim]))

    def forward(self, x):
        if len(x.shape) != 3 or x.shape[1] != self.k or x.shape[2] != self.in_dim:
            raise InputError(f"BatchEnsembleLinear expects [B, {self.k}, {self.in_dim}], got {list(x.shape)}")
        if self.r is not None:
            x = x * self.r
        y = paddle.matmul(x, self.weight)
        if self.s is not None:
            y = y * self.s
        return y + self.bias


class PiecewiseLinearEmbedding(nn.Layer):
    """Piecewise-linear encoding of each numeric feature, then a per-feature linear map.

    x [B, F] -> [B, F, d]. Feature f with bin edges e_0 < ... < e_n has n components; the t-th
    is ``clip((x - e_t) / (e_{t+1} - e_t), 0, 1)``, except that the first is not clipped below
    and the last not above (values beyond the edges keep a slope). The edges are a buffer:
    by default the quantiles of N(0, 1) (ppeye's features are standardised); ``fit(x)`` sets
    them to each feature's quantiles in the training data.
    """

    def __init__(self, num_features, bins=16, d_embedding=8):
        super().__init__()
        from scipy.stats import norm

        self.num_features, self.bins = num_features, bins
        q = norm.ppf(np.linspace(0.0, 1.0, bins + 1)[1:-1])
        q = np.concatenate([[q[0] - (q[1] - q[0])], q, [q[-1] + (q[-1] - q[-2])]]) if bins > 1 else np.array([-1.0, 1.0])
        self.register_buffer("edges", paddle.to_tensor(np.tile(q, (num_features, 1)).astype("float32")))
        bound = 1.0 / np.sqrt(bins)
        self.weight = self.create_parameter([num_features, bins, d_embedding],
                                            default_initializer=nn.initializer.Uniform(-bound, bound))
        self.bias = self.create_parameter([num_features, d_embedding],
                                          default_initializer=nn.initializer.Uniform(-bound, bound))

    def fit(self, x, mask=None):
        """Set the edges to per-feature quantiles of x [N, F] (observed values where mask == 1)."""
        x = np.asarray(x, dtype="float64")
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise InputError(f"PiecewiseLinearEmbedding.fit expects [N, {self.num_features}], got {list(x.shape)}")
        if mask is not None:
            x = np.where(np.asarray(mask) > 0, x, np.nan)
        edges = np.nanquantile(x, np.linspace(0.0, 1.0, self.bins + 1), axis=0).T     # [F, bins+1]
        edges = np.nan_to_num(edges, nan=0.0)
        # Constant or nearly constant features: spread the edges so every width is positive.
        edges = edges + np.arange(self.bins + 1)[None, :] * 1e-6
        edges = np.maximum.accumulate(edges, axis=1)
        self.edges.set_value(paddle.to_tensor(edges.astype("float32")))
        return self

    def encode(self, x):
        """x [B, F] -> piecewise-linear encoding [B, F, bins]."""
        left, right = self.edges[:, :-1], self.edges[:, 1:]
        u = (x.unsqueeze(-1) - left) / paddle.clip(right - left, min=1e-6)
        if self.bins == 1:
            return u
        first = paddle.clip(u[:, :, :1], max=1.0)
        middle = paddle.clip(u[:, :, 1:-1], 0.0, 1.0)
        last = paddle.clip(u[:, :, -1:], min=0.0)
        return paddle.concat([first, middle, last], axis=-1)

    def forward(self, x):
        if len(x.shape) != 2 or x.shape[1] != self.num_features:
            raise InputError(f"PiecewiseLinearEmbedding expects [B, {self.num_features}], got {list(x.shape)}")
        return F.relu(paddle.einsum("bfn,fnd->bfd", self.encode(x), self.weight) + self.bias)


class TabM(nn.Layer):
    """k-member TabM over F features. x [B, F] (mask [B, F], 1 = observed) -> [B, k, hidden].

    With ``use_mask`` the observed-indicator mask is concatenated to the (imputed) values, so
    the model can use missingness itself. ``num_embeddings``: {enabled, bins, d_embedding}.

    >>> tabm = TabM(6, k=3, layers=2, hidden=8)
    >>> list(tabm(paddle.randn([4, 6]), paddle.ones([4, 6])).shape)
    [4, 3, 8]
    """

    def __init__(self, in_features, k=32, layers=3, hidden=512, dropout=0.1, variant="tabm",
                 num_embeddings=None, use_mask=True):
        super().__init__()
        if variant not in ("tabm", "tabm-mini"):
            raise InputError(f"TabM: variant must be 'tabm' or 'tabm-mini', got {variant!r}")
        if k < 1 or layers < 1:
            raise InputError(f"TabM: k and layers must be >= 1, got k={k}, layers={layers}")
        self.in_features, self.k, self.variant, self.use_mask = in_features, k, variant, use_mask
        self.hidden = hidden
        ne = num_embeddings or {}
        self.embedding = (PiecewiseLinearEmbedding(in_features, ne.get("bins", 16), ne.get("d_embedding", 8))
                          if ne.get("enabled") else None)
        d_in = in_features * (ne.get("d_embedding", 8) if self.embedding is not None else 1)
        d_in += in_features if use_mask else 0
        self.layers = nn.LayerList()
        if variant == "tabm":
            for i in range(layers):
                self.layers.append(BatchEnsembleLinear(d_in if i == 0 else hidden, hidden, k,
                                                       r_init="random-signs" if i == 0 else "ones"))
        else:
            self.adapter = _random_signs(self, [k, d_in])
            for i in range(layers):
                self.layers.append(nn.Linear(d_in if i == 0 else hidden, hidden))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask=None):
        if len(x.shape) != 2 or x.shape[1] != self.in_features:
            raise InputError(f"tab must be [B, F={self.in_features}], got {list(x.shape)}")
        if mask is not None and (len(mask.shape) != 2 or mask.shape[1] != self.in_features):
            raise InputError(f"tab_mask must have the shape of tab {list(x.shape)}, got {list(mask.shape)}")
        h = x if self.embedding is None else self.embedding(x).flatten(1)
        if self.use_mask:
            m = paddle.ones_like(x) if mask is None else mask.astype(x.dtype)
            h = paddle.concat([h, m], axis=-1)
        h = h.unsqueeze(1).expand([-1, self.k, h.shape[-1]])                   # [B, k, d]
        if self.variant == "tabm-mini":
            h = h * self.adapter
        for layer in self.layers:
            h = self.drop(F.relu(layer(h)))
        return h
