"""The ResNet3D day encoder: its map size and parameter count, the positional pool, coordinate
channels and the coarse summary beside the learned features (OnsetNet's own tests: test_onset_net.py)."""
import numpy as np
import pytest

from ppeye.core.errors import InputError
from ppeye.core.paddle_env import import_paddle
from test_onset_net import SUMMARY, inputs, tiny_model

paddle = import_paddle()
from ppeye.modeling.backbones.resnet3d import ResNet3D  # noqa: E402


def test_resnet3d_keeps_a_6x5x5_map_for_a_24x20x20_day_and_counts_resnet18_parameters():
    net = ResNet3D(3, depth=18, base_width=4)
    pooled, fmap = net(paddle.randn([2, 3, 24, 20, 20]), return_features=True)
    assert pooled.shape == [2, 32] and fmap.shape == [2, 32, 6, 5, 5]
    # 3x3x3 convolutions: 18 layers of weights; the paper-size backbone on 50 variables
    full = ResNet3D(50, depth=18, base_width=64)
    assert sum(int(p.size) for p in full.parameters()) == pytest.approx(33.3e6, rel=0.01)


@pytest.mark.parametrize("size, stem, strides", [((24, 20, 20), 1, (1, 2, 2, 1)), ((8, 16, 16), (1, 2, 2), (1, 2, 2, 1)),
                                                 ((7, 9, 11), (1, 2, 2), (2, 2, 1, 2))])
def test_the_positional_pool_starts_as_the_mean_and_keeps_where(size, stem, strides):
    from ppeye.modeling.backbones.resnet3d import output_size

    paddle.seed(0)
    net = ResNet3D(2, depth=10, base_width=2, stem_stride=stem, strides=strides, pool="positional", pool_heads=3,
                   input_size=size)
    net.eval()
    x = paddle.randn([4, 2, *size])
    pooled, fmap = net(x, return_features=True)
    assert list(fmap.shape[2:]) == output_size(size, stem, strides, 10)
    mean = fmap.mean(axis=[2, 3, 4]).numpy()
    assert pooled.shape == [4, 3 * 16]
    for k in range(3):                              # zero scores: every head is the plain average
        np.testing.assert_allclose(pooled.numpy()[:, 16 * k : 16 * (k + 1)], mean, atol=1e-5)
    # a head whose position score dominates one cell reads that cell: the pool keeps where
    cell = int(np.prod(fmap.shape[2:])) - 1
    score = np.zeros(net.pool.position.shape, "float32")
    score[1, cell] = 50.0
    net.pool.position.set_value(score)
    pooled = net(x).numpy()
    np.testing.assert_allclose(pooled[:, 16:32], fmap.flatten(2).numpy()[:, :, cell], atol=1e-4)
    with pytest.raises(InputError, match="built for a"):
        net(paddle.randn([1, 2, size[0], size[1] * 4, size[2]]))


def test_coordinate_channels_tell_the_stem_where_a_cell_is():
    paddle.seed(0)
    net = ResNet3D(2, depth=10, base_width=2, coords=True)
    assert net.stem[0].weight.shape[1] == 4                    # 2 variables + row + column
    x = paddle.zeros([1, 2, 3, 5, 4])
    with_coords = net._with_coords(x).numpy()
    np.testing.assert_allclose(with_coords[0, 2, 1, :, 0], np.linspace(-1, 1, 5), atol=1e-6)   # rows
    np.testing.assert_allclose(with_coords[0, 3, 2, 4, :], np.linspace(-1, 1, 4), atol=1e-6)   # columns
    np.testing.assert_array_equal(with_coords[0, :2], 0.0)
    # a plain stem is translation-equivariant: a blob reads the same at two interior cells;
    # with the coordinate channels it does not
    blob = np.zeros([2, 2, 3, 8, 8], "float32")
    blob[0, 0, :, 2, 2] = blob[1, 0, :, 5, 5] = 5.0
    blob = paddle.to_tensor(blob)
    plain = ResNet3D(2, depth=10, base_width=2)
    for model, same in ((plain, True), (net, False)):
        model.eval()
        h = model.stem(model._with_coords(blob) if model.coords else blob).numpy()
        assert np.allclose(h[0, :, :, 2, 2], h[1, :, :, 5, 5], atol=1e-6) == same


def test_the_coarse_summary_is_each_variables_cell_means_and_starts_silent():
    paddle.seed(0)
    net = ResNet3D(2, depth=10, base_width=2, input_size=(3, 4, 4), summary={"enabled": True, "grid": [1, 2, 2]})
    assert (net.features, net.summary_width, net.out_channels) == (16, 8, 24)
    x = np.random.default_rng(0).normal(size=(2, 2, 3, 4, 4)).astype("float32")
    net.eval()
    out = net(paddle.to_tensor(x)).numpy()
    means = x.reshape(2, 2, 3, 2, 2, 2, 2).mean(axis=(2, 4, 6)).reshape(2, -1)   # [N, C * 1 * 2 * 2]
    np.testing.assert_allclose(out[:, 16:], means, atol=1e-6)
    plain = ResNet3D(2, depth=10, base_width=2, input_size=(3, 4, 4))
    plain.set_state_dict(net.state_dict())
    plain.eval()
    np.testing.assert_allclose(out[:, :16], plain(paddle.to_tensor(x)).numpy(), atol=1e-6)
    for summary, message in (({"enabled": True, "grid": [1, 5, 4]}, "finer than the input"),
                             ({"enabled": True, "grid": [1, 2]}, "3 integers"),
                             ({"enabled": True, "grid": [0, 2, 2]}, "3 integers"),
                             ({"enabeld": True}, "unknown key")):
        with pytest.raises(InputError, match=message):
            ResNet3D(2, depth=10, base_width=2, input_size=(3, 4, 4), summary=summary)

    # in OnsetNet its projection starts at zero: a model with it computes what the model without it
    # computes from the same weights (a pretrained encoder loads unchanged), until it learns
    without, s = tiny_model()
    with_summary, _ = tiny_model(SUMMARY)
    assert with_summary.backbone.summary_width == s["C"] * 8
    own = with_summary.state_dict()
    assert set(own) - set(without.state_dict()) == {"summary_proj.weight"}
    with_summary.set_state_dict({**own, **without.state_dict()})
    for m in (without, with_summary):
        m.eval()
    x = inputs(s)
    np.testing.assert_allclose(with_summary(*x).numpy(), without(*x).numpy(), atol=1e-6)
    cached = with_summary.backbone(x[0])             # a day-feature cache row holds both parts
    np.testing.assert_allclose(with_summary(cached, *x[1:]).numpy(), without(*x).numpy(), atol=1e-6)
    w = with_summary.summary_proj.weight
    w.set_value(paddle.full(w.shape, 0.1))
    assert not np.allclose(with_summary(*x).numpy(), without(*x).numpy(), atol=1e-4)


@pytest.mark.parametrize("pool", ["avg", "positional"])
def test_channels_last_gives_the_same_numbers_gradients_and_checkpoints(pool):
    """``channels_last`` (NDHWC convolutions, for half precision on GPUs) changes the layout only:
    the same weights give the same pooled features, map, gradients and BatchNorm statistics."""
    kw = dict(depth=10, base_width=4, stem_stride=(1, 2, 2), coords=True, pool=pool, input_size=(6, 8, 8),
              summary={"enabled": True, "grid": [1, 2, 2]})
    paddle.seed(0)
    first = ResNet3D(3, **kw)
    last = ResNet3D(3, channels_last=True, **kw)
    state = first.state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == {k: list(v.shape) for k, v in last.state_dict().items()}
    last.set_state_dict(state)                                   # a checkpoint of one layout loads into the other
    x = np.random.default_rng(0).normal(size=(5, 3, 6, 8, 8)).astype(np.float32)
    outs = []
    for net in (first, last):
        net.train()
        xt = paddle.to_tensor(x, stop_gradient=False)
        pooled, fmap = net(xt, return_features=True)
        (pooled ** 2).sum().backward()
        outs.append((pooled.numpy(), fmap.numpy(), xt.grad.numpy(), net.stem[0].weight.grad.numpy(),
                     net.blocks[-1].bn2._mean.numpy()))
    assert outs[0][1].shape == outs[1][1].shape == (5, 32, 2, 1, 1)   # the map Grad-CAM reads: [N, C, d, h, w] in both
    for a, b, what in zip(outs[0], outs[1], ("pooled", "map", "input grad", "stem grad", "running mean")):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4, err_msg=what)
    first.eval(), last.eval()
    np.testing.assert_allclose(last(paddle.to_tensor(x)).numpy(), first(paddle.to_tensor(x)).numpy(), rtol=1e-4, atol=1e-5)
