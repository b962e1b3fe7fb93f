"""The retrieval index: exact neighbours, no self-neighbours, the blend, selection, files."""
import numpy as np
import pytest

from ppeye.core.errors import ConfigError, InputError
from ppeye.retrieval import RetrievalIndex


def points(n=300, d=16, seed=0):
    centres = np.random.default_rng(123).normal(size=(4, d)) * 3     # the same clusters for every draw
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 4, n)
    x = (centres[group] + rng.normal(size=(n, d))).astype(np.float32)
    labels = np.stack([group == g for g in range(4)], 1).astype(np.float32)   # label = the cluster
    return x, labels


def brute(x, q, metric, k):
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        return np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :k]
    d = ((q[:, None, :] - x[None]) ** 2).sum(-1)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_exact_search_equals_brute_force(metric):
    x, y = points()
    q, _ = points(40, seed=1)
    index = RetrievalIndex(metric).build(x, y)
    _, idx = index.search(q, 7)
    np.testing.assert_array_equal(idx, brute(x, q, metric, 7))
    np.testing.assert_allclose(index.p_knn(q, 7), y[idx].mean(1))


def test_training_queries_never_find_themselves():
    x, y = points(100)
    x[1] = x[0]                                    # a duplicate must still be allowed as a neighbour
    index = RetrievalIndex("l2").build(x, y)
    _, idx = index.search(x, 5, exclude=np.arange(100))
    assert idx.shape == (100, 5) and (idx >= 0).all()
    assert not (idx == np.arange(100)[:, None]).any()
    assert idx[0, 0] == 1 and idx[1, 0] == 0
    # without exclusion the nearest neighbour of a training point is itself
    _, own = index.search(x[2:3], 1)
    assert own[0, 0] == 2


def test_blend_formula_and_alpha_zero_is_the_model():
    x, y = points()
    index = RetrievalIndex().build(x, y)
    p = np.full((len(x), 4), 0.25)
    np.testing.assert_array_equal(index.blend(p, x, alpha=0.0), p)
    knn = index.p_knn(x, 10, exclude=np.arange(len(x)))
    np.testing.assert_allclose(index.blend(p, x, exclude=np.arange(len(x)), k=10, alpha=0.3), 0.7 * p + 0.3 * knn)


def test_selection_uses_retrieval_only_when_it_helps_on_validation():
    x, y = points(400)
    vx, vy = points(200, seed=2)
    index = RetrievalIndex().build(x, y)
    rng = np.random.default_rng(0)
    useless_model = rng.random(vy.shape)
    grid = index.choose(useless_model, vx, vy, [5, 20], [0.2, 0.5, 1.0])
    assert index.alpha > 0 and len(grid) == 1 + 2 * 3
    perfect_model = vy * 0.9 + 0.05
    index.choose(perfect_model, vx, vy, [5, 20], [0.2, 0.5])
    assert index.alpha == 0.0                        # nothing beats a perfect ranking: the model alone
    with pytest.raises(ConfigError, match="alpha_grid values in"):
        index.choose(perfect_model, vx, vy, [5], [1.5])


def test_save_load_round_trip(tmp_path):
    x, y = points()
    index = RetrievalIndex("cosine").build(x, y)
    index.choose(np.random.default_rng(0).random((50, 4)), x[:50], y[:50], [3, 9], [0.5])
    index.save(str(tmp_path / "r"), {"checkpoint": "/x/epoch_0001"})
    again = RetrievalIndex.load(str(tmp_path / "r"))
    assert again.params == index.params and again.extra["checkpoint"] == "/x/epoch_0001"
    np.testing.assert_array_equal(again.search(x[:5], 4)[1], index.search(x[:5], 4)[1])
    with pytest.raises(InputError, match="not a retrieval index: missing index.faiss"):
        RetrievalIndex.load(str(tmp_path))


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_find_most_true_neighbours(kind):
    x, y = points(2000, 32)
    q, _ = points(100, 32, seed=5)
    index = RetrievalIndex("cosine", kind, nlist=16, nprobe=4).build(x, y)
    _, idx = index.search(q, 10)
    truth = brute(x, q, "cosine", 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, truth)])
    assert recall > 0.8


def test_bad_inputs_say_what_is_wrong():
    x, y = points(50)
    with pytest.raises(ConfigError, match="retrieval.metric must be cosine or l2"):
        RetrievalIndex("manhattan")
    with pytest.raises(InputError, match="50 embeddings but 49 label rows"):
        RetrievalIndex().build(x, y[:49])
    index = RetrievalIndex().build(x, y)
    with pytest.raises(InputError, match="embeddings have 8 dimensions, the index 16"):
        index.search(x[:, :8], 3)
    with pytest.raises(InputError, match="NaN or inf"):
        index.search(np.full((1, 16), np.nan), 3)
