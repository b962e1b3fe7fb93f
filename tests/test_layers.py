"""The layers of ppeye/modeling/layers against plain numpy computations of their formulas."""
import numpy as np
import pytest

from ppeye.core.errors import InputError
from ppeye.core.paddle_env import import_paddle

paddle = import_paddle()
from ppeye.modeling.layers import (AFNO1D, AFNOBlock, BatchEnsembleLinear, CrossAttentionFusion,  # noqa: E402
                                   HistoryEncoder, MoE, MultiHeadAttention, PiecewiseLinearEmbedding,
                                   SinusoidalPositions, TabM, TemporalTransformer)


def t(a):
    return paddle.to_tensor(np.asarray(a, dtype="float32"))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ---------------------------------------------------------------- attention
def numpy_attention(attn, q, k, v, blocked=None):
    def lin(layer, x):
        return x @ layer.weight.numpy() + layer.bias.numpy()

    h, hd = attn.num_heads, attn.head_dim

    def heads(x):
        return x.reshape(x.shape[0], x.shape[1], h, hd).transpose(0, 2, 1, 3)

    qh, kh, vh = heads(lin(attn.q_proj, q)), heads(lin(attn.k_proj, k)), heads(lin(attn.v_proj, v))
    scores = qh @ kh.transpose(0, 1, 3, 2) / np.sqrt(hd)
    if blocked is not None:
        scores = np.where(blocked, -np.inf, scores)
    w = softmax(scores)
    out = (w @ vh).transpose(0, 2, 1, 3).reshape(q.shape[0], q.shape[1], -1)
    return lin(attn.out_proj, out), w


def test_attention_matches_numpy_for_self_and_cross_attention_with_masks():
    paddle.seed(0)
    rng = np.random.default_rng(0)
    attn = MultiHeadAttention(8, 2)
    attn.eval()
    q, kv = rng.normal(size=(2, 3, 8)), rng.normal(size=(2, 5, 8))
    out, w = attn(t(q))
    ref_out, ref_w = numpy_attention(attn, q, q, q)
    np.testing.assert_allclose(out.numpy(), ref_out, atol=1e-5)
    np.testing.assert_allclose(w.numpy(), ref_w, atol=1e-6)

    pad = np.array([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]], dtype=bool)         # True = may not attend
    causal = np.triu(np.ones((3, 5), dtype=bool), k=3)
    out, w = attn(t(q), t(kv), key_padding_mask=paddle.to_tensor(pad), attn_mask=paddle.to_tensor(causal))
    blocked = pad[:, None, None, :] | causal[None, None]
    ref_out, ref_w = numpy_attention(attn, q, kv, kv, blocked)
    np.testing.assert_allclose(out.numpy(), ref_out, atol=1e-5)
    np.testing.assert_allclose(w.numpy(), ref_w, atol=1e-6)
    assert w.shape == [2, 2, 3, 5] and np.all(w.numpy()[0, :, :, 3:] == 0)


def test_attention_weights_are_the_softmax_before_dropout_so_rows_sum_to_one_in_training():
    paddle.seed(1)
    attn = MultiHeadAttention(8, 2, dropout=0.5)
    attn.train()
    x = paddle.randn([2, 6, 8])
    out, w = attn(x)
    np.testing.assert_allclose(w.sum(-1).numpy(), 1.0, atol=1e-5)
    attn.eval()
    out_eval, w_eval = attn(x)
    np.testing.assert_allclose(w.numpy(), w_eval.numpy(), atol=1e-6)   # weights: no dropout
    assert not np.allclose(out.numpy(), out_eval.numpy())              # output: dropout applied


def test_attention_fully_blocked_query_gets_zero_weights_and_a_finite_output():
    attn = MultiHeadAttention(4, 1)
    attn.eval()
    mask = paddle.to_tensor(np.array([[True, True, True]]))
    out, w = attn(paddle.randn([1, 2, 4]), paddle.randn([1, 3, 4]), key_padding_mask=mask)
    assert np.all(w.numpy() == 0) and np.isfinite(out.numpy()).all()
    np.testing.assert_allclose(out.numpy()[0, 0], attn.out_proj.bias.numpy(), atol=1e-6)


def test_attention_need_weights_false_gives_the_same_output_and_no_weights():
    paddle.seed(2)
    attn = MultiHeadAttention(8, 4)
    attn.eval()
    x, kv = paddle.randn([3, 4, 8]), paddle.randn([3, 7, 8])
    fast, none = attn(x, kv, need_weights=False)
    slow, _ = attn(x, kv)
    assert none is None
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), atol=1e-5)


def test_attention_rejects_bad_sizes_by_name():
    with pytest.raises(InputError, match="not divisible by num_heads 3"):
        MultiHeadAttention(8, 3)
    with pytest.raises(InputError, match=r"query and key \[B, L, 8\]"):
        MultiHeadAttention(8, 2)(paddle.randn([2, 3, 6]))
    with pytest.raises(InputError, match=r"key_padding_mask must be \[B, Lk\]"):
        MultiHeadAttention(8, 2)(paddle.randn([2, 3, 8]), key_padding_mask=paddle.zeros([2, 1, 3], "bool"))


# ---------------------------------------------------------------- MoE
def test_moe_output_is_the_gate_weighted_sum_of_the_chosen_experts():
    paddle.seed(3)
    moe = MoE(6, 12, num_experts=4, top_k=2)
    moe.eval()
    x = paddle.randn([2, 10, 6])
    y, r = moe(x)
    assert y.shape == [2, 10, 6] and r["indices"].shape == [20, 2] and r["probs"].shape == [20, 4]
    np.testing.assert_allclose(r["gates"].sum(-1).numpy(), 1.0, atol=1e-6)
    tokens = x.reshape([-1, 6])
    dense = np.stack([e(tokens).numpy() for e in moe.experts], 1)             # [N, E, out]
    ref = np.zeros((20, 6))
    for n in range(20):
        for j in range(2):
            ref[n] += r["gates"].numpy()[n, j] * dense[n, r["indices"].numpy()[n, j]]
    np.testing.assert_allclose(y.numpy().reshape(20, 6), ref, atol=1e-5)
    # the chosen experts are the two most probable
    np.testing.assert_array_equal(np.sort(r["indices"].numpy(), 1),
                                  np.sort(np.argsort(-r["probs"].numpy(), 1)[:, :2], 1))


def test_moe_top1_gate_is_the_router_probability():
    paddle.seed(4)
    moe = MoE(4, 8, num_experts=3, top_k=1)
    moe.eval()
    _, r = moe(paddle.randn([9, 4]))
    np.testing.assert_allclose(r["gates"].numpy()[:, 0], r["probs"].numpy().max(1), atol=1e-6)


def test_moe_load_balancing_loss_is_one_for_uniform_routing_and_num_experts_when_collapsed():
    moe = MoE(4, 8, num_experts=4, top_k=1, gate_noise=False)
    moe.eval()
    x = paddle.to_tensor(np.tile(np.eye(4, dtype="float32"), (5, 1)))          # token type i -> expert i
    with paddle.no_grad():
        moe.gate.weight.set_value(paddle.to_tensor(np.eye(4, dtype="float32") * 20))
    _, r = moe(x)
    np.testing.assert_allclose(r["load"].numpy(), 0.25, atol=1e-6)
    balanced = r["aux_loss"].item()
    with paddle.no_grad():
        moe.gate.weight.set_value(paddle.to_tensor(np.tile([[20.0, 0, 0, 0]], (4, 1)).astype("float32")))
    _, r = moe(x)
    collapsed = r["aux_loss"].item()
    assert balanced == pytest.approx(1.0, abs=1e-3) and collapsed == pytest.approx(4.0, abs=1e-3)
    # with the router uniform the loss is exactly 1 whatever the assignment
    with paddle.no_grad():
        moe.gate.weight.set_value(paddle.zeros([4, 4]))
    assert moe(x)[1]["aux_loss"].item() == pytest.approx(1.0, abs=1e-6)


def test_moe_capacity_drops_assignments_beyond_each_experts_capacity_in_token_order():
    paddle.seed(5)
    moe = MoE(4, 8, num_experts=2, top_k=1, gate_noise=False, capacity_factor=0.5)
    moe.eval()
    with paddle.no_grad():
        moe.gate.weight.set_value(paddle.to_tensor(np.tile([[5.0, 0.0]], (4, 1)).astype("float32")))
    x = paddle.abs(paddle.randn([8, 4])) + 0.1                                  # all choose expert 0
    y, r = moe(x)
    capacity = 2                                                                 # ceil(0.5 * 8 * 1 / 2)
    kept = (np.abs(y.numpy()).sum(1) > 0)
    np.testing.assert_array_equal(kept, [True] * capacity + [False] * (8 - capacity))
    assert r["dropped"].item() == pytest.approx(0.75)
    assert (r["gates"].numpy()[capacity:] == 0).all()


def test_moe_backward_reaches_gate_and_experts_even_when_one_expert_gets_no_token():
    paddle.seed(6)
    moe = MoE(4, 8, num_experts=3, top_k=1, gate_noise=False)
    with paddle.no_grad():
        moe.gate.weight.set_value(paddle.to_tensor(np.tile([[3.0, 0.0, -3.0]], (4, 1)).astype("float32")))
    x = paddle.abs(paddle.randn([6, 4]))
    y, r = moe(x)
    assert 2 not in r["indices"].numpy()
    (y.sum() + r["aux_loss"]).backward()
    assert moe.gate.weight.grad is not None and np.abs(moe.gate.weight.grad.numpy()).sum() > 0
    assert np.abs(moe.experts[0].fc1.weight.grad.numpy()).sum() > 0
    assert np.isfinite(moe.experts[2].fc1.weight.grad.numpy()).all()


def test_moe_gate_noise_only_in_training():
    paddle.seed(7)
    moe = MoE(4, 8, num_experts=4, top_k=2, gate_noise=True)
    x = paddle.randn([16, 4])
    moe.eval()
    np.testing.assert_array_equal(moe(x)[1]["probs"].numpy(), moe(x)[1]["probs"].numpy())
    moe.train()
    assert not np.allclose(moe(x)[1]["probs"].numpy(), moe(x)[1]["probs"].numpy())


# ---------------------------------------------------------------- AFNO
def numpy_afno(layer, x):
    w1, b1, w2, b2 = (p.numpy() for p in (layer.w1, layer.b1, layer.w2, layer.b2))
    b, t, d = x.shape
    spec = np.fft.rfft(x, axis=1, norm="ortho")
    m = spec.shape[1]
    xb = spec.reshape(b, m, layer.num_blocks, layer.block_size)
    W1, W2 = w1[0] + 1j * w1[1], w2[0] + 1j * w2[1]
    o1 = np.einsum("bmna,nac->bmnc", xb, W1) + (b1[0] + 1j * b1[1])
    o1 = np.maximum(o1.real, 0) + 1j * np.maximum(o1.imag, 0)
    o2 = np.einsum("bmna,nac->bmnc", o1, W2) + (b2[0] + 1j * b2[1])
    lam = layer.sparsity_threshold

    def shrink(v):
        return np.sign(v) * np.maximum(np.abs(v) - lam, 0)

    o2 = shrink(o2.real) + 1j * shrink(o2.imag)
    o2[:, layer.kept_modes(t):] = 0
    return np.fft.irfft(o2.reshape(b, m, d), n=t, axis=1, norm="ortho") + x


@pytest.mark.parametrize("t_len,fraction", [(12, 1.0), (11, 0.5)])
def test_afno_matches_a_numpy_fft_implementation(t_len, fraction):
    paddle.seed(8)
    layer = AFNO1D(8, num_blocks=2, sparsity_threshold=0.05, hard_thresholding_fraction=fraction, scale=0.5)
    x = np.random.default_rng(1).normal(size=(2, t_len, 8)).astype("float32")
    y, spectrum = layer(t(x), return_spectrum=True)
    np.testing.assert_allclose(y.numpy(), numpy_afno(layer, x), atol=1e-4)
    m = t_len // 2 + 1
    assert spectrum["in"].shape == [2, m] and spectrum["out"].shape == [2, m]
    np.testing.assert_allclose(spectrum["in"].numpy(), np.abs(np.fft.rfft(x, axis=1, norm="ortho")).mean(-1), atol=1e-5)
    if fraction < 1:
        assert np.all(spectrum["out"].numpy()[:, layer.kept_modes(t_len):] == 0)
        residual = np.fft.rfft(y.numpy() - x, axis=1)
        assert np.abs(residual[:, layer.kept_modes(t_len):]).max() < 1e-4


def test_afno_with_zero_weights_is_the_identity_and_gradients_reach_every_parameter():
    layer = AFNO1D(4, num_blocks=2, scale=0.0)
    x = paddle.randn([2, 9, 4])
    np.testing.assert_allclose(layer(x).numpy(), x.numpy(), atol=1e-5)
    block = AFNOBlock(8, num_blocks=2, sparsity_threshold=0.0, moe={"enabled": True, "num_experts": 2, "top_k": 1})
    y, spectrum, routing = block(paddle.randn([3, 10, 8]))
    (y.sum() + routing["aux_loss"]).backward()
    for name, p in block.named_parameters():
        if "noise" not in name:
            assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), name


# ---------------------------------------------------------------- TabM
def test_batch_ensemble_linear_matches_the_formula():
    paddle.seed(9)
    layer = BatchEnsembleLinear(5, 3, k=4, r_init="random-signs")
    with paddle.no_grad():
        layer.s.set_value(paddle.rand([4, 3]) + 0.5)
        layer.bias.set_value(paddle.randn([4, 3]))
    x = np.random.default_rng(2).normal(size=(2, 4, 5)).astype("float32")
    r, s, b, w = (p.numpy() for p in (layer.r, layer.s, layer.bias, layer.weight))
    ref = ((x * r) @ w) * s + b                       # weight stored as W^T: [in, out]
    np.testing.assert_allclose(layer(t(x)).numpy(), ref, atol=1e-5)


def test_tabm_initialisation_random_signs_first_ones_after_and_a_shared_bias_draw():
    paddle.seed(10)
    model = TabM(6, k=5, layers=2, hidden=8, use_mask=False)
    first, second = model.layers
    assert set(np.unique(first.r.numpy())) == {-1.0, 1.0}
    assert np.all(second.r.numpy() == 1) and np.all(first.s.numpy() == 1)
    np.testing.assert_array_equal(first.bias.numpy(), np.repeat(first.bias.numpy()[:1], 5, 0))
    mini = TabM(6, k=5, layers=2, hidden=8, variant="tabm-mini", use_mask=False)
    assert set(np.unique(mini.adapter.numpy())) == {-1.0, 1.0}
    assert all(isinstance(layer, paddle.nn.Linear) for layer in mini.layers)


@pytest.mark.parametrize("variant", ["tabm", "tabm-mini"])
def test_tabm_members_differ_and_the_mask_is_an_input(variant):
    paddle.seed(11)
    model = TabM(6, k=4, layers=2, hidden=8, dropout=0.0, variant=variant)
    x = paddle.randn([3, 6])
    out = model(x, paddle.ones([3, 6]))
    assert out.shape == [3, 4, 8]
    assert not np.allclose(out.numpy()[:, 0], out.numpy()[:, 1])
    assert not np.allclose(model(x, paddle.zeros([3, 6])).numpy(), out.numpy())
    with pytest.raises(InputError, match=r"tab must be \[B, F=6\], got \[3, 5\]"):
        model(paddle.randn([3, 5]))


def test_piecewise_linear_encoding_matches_its_definition_and_fits_quantiles():
    ple = PiecewiseLinearEmbedding(2, bins=3, d_embedding=4)
    ple.fit(np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0], [3.0, 40.0]]))
    edges = ple.edges.numpy()
    np.testing.assert_allclose(edges[0], [0, 1, 2, 3], atol=1e-4)
    np.testing.assert_allclose(edges[1], [10, 20, 30, 40], atol=1e-4)
    enc = ple.encode(t([[1.5, 5.0], [4.0, 35.0]])).numpy()
    np.testing.assert_allclose(enc[0, 0], [1.0, 0.5, 0.0], atol=1e-4)
    np.testing.assert_allclose(enc[0, 1], [-0.5, 0.0, 0.0], atol=1e-4)     # below the first edge: slope kept
    np.testing.assert_allclose(enc[1, 0], [1.0, 1.0, 2.0], atol=1e-4)      # above the last edge: slope kept
    np.testing.assert_allclose(enc[1, 1], [1.0, 1.0, 0.5], atol=1e-4)
    assert ple(t([[1.5, 5.0]])).shape == [1, 2, 4]


# ---------------------------------------------------------------- transformer, fusion
def test_temporal_transformer_returns_per_layer_attention_and_routing():
    paddle.seed(12)
    tr = TemporalTransformer(8, layers=3, heads=2, moe={"enabled": True, "num_experts": 2, "top_k": 1})
    y, attentions, routings = tr(paddle.randn([2, 7, 8]))
    assert y.shape == [2, 7, 8] and len(attentions) == 3 and len(routings) == 3
    assert all(a.shape == [2, 2, 7, 7] for a in attentions)
    np.testing.assert_allclose(attentions[-1].sum(-1).numpy(), 1.0, atol=1e-5)


def test_temporal_transformer_recompute_gives_the_same_gradients():
    paddle.seed(13)
    tr = TemporalTransformer(8, layers=2, heads=2, dropout=0.0)
    x = paddle.randn([2, 5, 8])
    grads = []
    for flag in (False, True):
        tr.recompute = flag
        tr.clear_gradients()
        tr(x)[0].pow(2).sum().backward()
        grads.append({n: p.grad.numpy().copy() for n, p in tr.named_parameters()})
    for name, a in grads[0].items():
        if name.endswith("k_proj.bias"):  # its true gradient is 0 (softmax ignores it): rounding noise only
            continue
        np.testing.assert_allclose(a, grads[1][name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_sinusoidal_positions_follow_the_formula():
    pos = SinusoidalPositions(10, 6)
    x = pos(paddle.zeros([1, 4, 6])).numpy()[0]
    np.testing.assert_allclose(x[3, 0], np.sin(3.0), atol=1e-6)
    np.testing.assert_allclose(x[3, 1], np.cos(3.0), atol=1e-6)
    np.testing.assert_allclose(x[2, 2], np.sin(2 / 10000 ** (2 / 6)), atol=1e-6)


def test_cross_attention_fusion_returns_both_maps():
    paddle.seed(14)
    fusion = CrossAttentionFusion(8, heads=2, moe={"enabled": True, "num_experts": 2, "top_k": 2})
    fused, maps, routing = fusion(paddle.randn([3, 4, 8]), paddle.randn([3, 9, 8]))
    assert fused.shape == [3, 4, 8]
    assert maps["patient_to_weather"].shape == [3, 2, 4, 9]
    assert maps["weather_to_patient"].shape == [3, 2, 1, 4]
    assert routing["indices"].shape == [12, 2]


# ---------------------------------------------------------------- every layer, one uniform check (timm style)
MOE2 = {"enabled": True, "num_experts": 2, "top_k": 1}
LAYERS = {
    "attention": (lambda: MultiHeadAttention(8, 2, dropout=0.2), lambda: [paddle.randn([2, 5, 8])]),
    "moe": (lambda: MoE(8, 16, num_experts=3, top_k=2, dropout=0.2), lambda: [paddle.randn([2, 5, 8])]),
    "afno": (lambda: AFNOBlock(8, num_blocks=2, sparsity_threshold=0.0, dropout=0.2, moe=MOE2),
             lambda: [paddle.randn([2, 9, 8])]),
    "tabm": (lambda: TabM(6, k=3, layers=2, hidden=8, dropout=0.2, num_embeddings={"enabled": True, "bins": 4}),
             lambda: [paddle.randn([4, 6]), paddle.ones([4, 6])]),
    "tabm-mini": (lambda: TabM(6, k=3, layers=2, hidden=8, dropout=0.2, variant="tabm-mini"),
                  lambda: [paddle.randn([4, 6])]),
    "transformer": (lambda: TemporalTransformer(8, layers=2, heads=2, dropout=0.2, moe=MOE2),
                    lambda: [paddle.randn([2, 7, 8])]),
    "fusion": (lambda: CrossAttentionFusion(8, heads=2, dropout=0.2, moe=MOE2),
               lambda: [paddle.randn([2, 3, 8]), paddle.randn([2, 7, 8])]),
    "history": (lambda: HistoryEncoder(num_codes=9, num_categories=5, dim=8, heads=2, layers=1, dropout=0.2),
                lambda: [paddle.to_tensor([[3, 8, 1], [2, 0, 0], [0, 0, 0]], dtype="int64"),
                         paddle.to_tensor([[2, 4, 1], [2, 0, 0], [0, 0, 0]], dtype="int64"),
                         paddle.to_tensor([[5.0, 90.0, 700.0], [30.0, 0.0, 0.0], [0.0, 0.0, 0.0]])]),
}


def _first(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_is_finite_deterministic_trainable_and_dropout_free_in_eval(name):
    make, make_inputs = LAYERS[name]
    paddle.seed(0)
    layer = make()
    paddle.seed(0)
    twin = make()
    x = make_inputs()
    layer.eval(), twin.eval()
    y = _first(layer(*x))
    assert np.isfinite(y.numpy()).all()
    np.testing.assert_array_equal(y.numpy(), _first(twin(*x)).numpy())        # same seed, same layer
    np.testing.assert_array_equal(y.numpy(), _first(layer(*x)).numpy())       # eval is deterministic
    layer.train()
    train_out = layer(*x)
    assert not np.allclose(_first(train_out).numpy(), y.numpy())              # dropout acts in training
    loss = _first(train_out).pow(2).mean()
    for item in (train_out if isinstance(train_out, tuple) else ()):
        if isinstance(item, dict) and "aux_loss" in item:
            loss = loss + item["aux_loss"]
    loss.backward()
    for pname, p in layer.named_parameters():
        if pname.endswith("noise.weight") or pname.endswith("k_proj.bias"):
            continue   # noise: gradient only through the random draw; key bias: softmax-invariant
        assert p.grad is not None and np.isfinite(p.grad.numpy()).all() and np.abs(p.grad.numpy()).sum() > 0, pname


def test_afno_runs_its_fft_in_float32_and_returns_the_input_dtype():
    paddle.seed(15)
    layer = AFNO1D(8, num_blocks=2, scale=0.3)
    x = paddle.randn([2, 10, 8])
    y16 = layer(x.astype("float16"))                  # as under AMP: half precision in, half out
    assert y16.dtype == paddle.float16
    np.testing.assert_allclose(y16.astype("float32").numpy(), layer(x).numpy(), atol=1e-2)
