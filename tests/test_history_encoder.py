"""The history encoder: shapes, padding, people without history, description-initialised codes."""
import numpy as np
import pytest

import ppeye  # noqa: F401  (Paddle's environment set up once)
from ppeye.core.errors import InputError
from ppeye.core.paddle_env import import_paddle
from ppeye.modeling.layers.history import HistoryEncoder

paddle = import_paddle()


def encoder(**kw):
    paddle.seed(0)
    enc = HistoryEncoder(num_codes=12, num_categories=7, dim=16, heads=4, layers=1, **kw)
    enc.eval()
    return enc


def batch():
    codes = paddle.to_tensor([[3, 5, 2, 0], [4, 0, 0, 0], [0, 0, 0, 0]], dtype="int64")
    categories = paddle.to_tensor([[2, 3, 2, 0], [4, 0, 0, 0], [0, 0, 0, 0]], dtype="int64")
    days = paddle.to_tensor([[12, 300, 2000, 0], [40, 0, 0, 0], [0, 0, 0, 0]], dtype="float32")
    return codes, categories, days


def test_padding_changes_nothing_and_records_are_a_set():
    enc = encoder()
    codes, categories, days = batch()
    summary, tokens, padding, _ = enc(codes, categories, days)
    noisy_days = days + paddle.cast(codes == 0, "float32") * 777.0           # junk where there is no record
    summary2, _, _, _ = enc(codes, categories + paddle.cast(codes == 0, "int64") * 3, noisy_days)
    np.testing.assert_allclose(summary.numpy(), summary2.numpy(), atol=1e-6)
    assert np.abs(tokens.numpy()[padding.numpy()]).max() == 0.0
    order = paddle.to_tensor([2, 0, 1, 3])
    shuffled, _, _, _ = enc(*(paddle.index_select(x, order, axis=1) for x in (codes, categories, days)))
    np.testing.assert_allclose(summary.numpy(), shuffled.numpy(), atol=1e-5)   # no order but the days


def test_people_without_history_get_the_no_history_summary_and_nothing_is_nan():
    enc = encoder()
    summary, _, _, explain = enc(*batch())
    np.testing.assert_allclose(summary.numpy()[2], enc.no_history.numpy()[0], atol=0)
    assert explain["history_present"].numpy().tolist() == [1.0, 1.0, 0.0]
    empty = paddle.zeros([2, 4], dtype="int64")
    s, _, _, _ = enc(empty, empty, paddle.zeros([2, 4]))
    assert np.isfinite(s.numpy()).all()


def test_gradients_reach_codes_categories_time_and_the_pooling():
    enc = encoder()
    enc.train()
    summary, _, _, _ = enc(*batch())
    summary.square().sum().backward()
    for name in ("code_embedding.weight", "category_embedding.weight", "time.proj.weight", "query", "no_history"):
        g = dict(enc.named_parameters())[name].grad
        assert g is not None and float(g.abs().sum()) > 0, name
    assert float(enc.code_embedding.weight.grad[0].abs().sum()) == 0.0        # padding learns nothing


def test_codes_start_from_their_descriptions():
    desc = np.zeros((12, 5), np.float32)
    desc[3] = desc[9] = [1, 0, 2, 0, 1]                     # two codes with one description
    desc[4] = [0, 3, 0, 1, 0]
    enc = encoder(descriptions=desc)
    v = enc.code_vectors(paddle.to_tensor([3, 9, 4], dtype="int64")).numpy()
    np.testing.assert_allclose(v[0], v[1], atol=0)
    assert np.abs(v[0] - v[2]).max() > 1e-3
    assert float(enc.code_embedding.weight.abs().sum()) == 0.0                # the residual starts at zero
    with pytest.raises(InputError, match="num_codes=12"):
        encoder(descriptions=np.zeros((11, 5), np.float32))


def test_ids_outside_the_vocabulary_and_bad_shapes_are_named():
    enc = encoder()
    codes, categories, days = batch()
    with pytest.raises(InputError, match="codes must be ids in 0..11.*vocabulary"):
        enc(codes + 20, categories, days)
    with pytest.raises(InputError, match="days must have the shape"):
        enc(codes, categories, days[:, :2])
    with pytest.raises(InputError, match="int64"):
        enc(paddle.cast(codes, "float32"), categories, days)
