"""The model's lag-response (``tools/visualize.py --what lag_response``): exact on a model whose
answer is known, and end to end on a tiny trained run beside the distributed-lag baseline."""
import json

import numpy as np
import pandas as pd
import pytest

import ppeye
from conftest import DEMO
from ppeye.core.errors import InputError
from ppeye.core.paddle_env import import_paddle
from ppeye.explain import lag_response as lr

paddle = import_paddle()


class LinearInLags(paddle.nn.Layer):
    """logit_j = c_j * sum_t w_t * (region mean of channel ``ch`` summed over hours, on day t) + tab sum:
    raising that channel by delta over the region on the day at lag l moves logit_j by
    c_j * w_(T-l) * delta * hours, whatever the other people's days."""

    def __init__(self, shape, ch, rows, cols, w, c):
        super().__init__()
        mask = np.zeros(shape, np.float32)
        mask[ch, :, rows, cols] = 1.0
        self.mask = paddle.to_tensor(mask / mask[ch, 0].sum())
        self.w, self.c = paddle.to_tensor(w), paddle.to_tensor(c)
        self.backbone = lambda x: (x * self.mask).sum(axis=[1, 2, 3, 4]).unsqueeze(1)      # [U, 1]

    def embed_pooled(self, pooled):
        return pooled

    def forward_days(self, days, day_index, tab, tab_mask=None, weather_present=None, pooled=None):
        seq = paddle.gather(days[:, 0], day_index.reshape([-1])).reshape(day_index.shape)   # [B, T]
        return (seq * self.w).sum(1, keepdim=True) * self.c + tab.sum(1, keepdim=True)


def test_logit_changes_are_exact_per_person_even_where_people_share_days():
    rng = np.random.default_rng(0)
    shape, T, B = (3, 4, 6, 6), 5, 4
    rows, cols = slice(1, 3), slice(2, 5)
    w = rng.normal(size=T).astype("float32")
    c = np.array([1.0, -2.0, 0.5, 0.0], np.float32)
    model = LinearInLags(shape, 1, rows, cols, w, c)
    U = 7
    weather = rng.normal(size=(U, *shape)).astype("float32")
    index = np.array([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5], [2, 3, 4, 5, 6], [0, 1, 2, 3, 4]], np.int64)  # shared days
    batch = {"weather_unique": weather, "day_index": index, "tab": rng.normal(size=(B, 3)).astype("float32"),
             "tab_mask": np.ones((B, 3), np.float32), "weather_present": np.ones(B, np.float32)}
    delta, lags = 0.7, np.arange(1, T + 1)
    lr.PEOPLE_PER_PASS = 8                   # several passes of 2 lags: the chunking is exercised too
    try:
        got = lr.logit_changes(model, batch, 1, rows, cols, delta, lags)
    finally:
        lr.PEOPLE_PER_PASS = 256
    want = np.stack([w[T - lags] * delta * shape[1] * cj for cj in c], axis=-1)                  # [L, 4]
    assert got.shape == (B, T, 4)
    np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), rtol=1e-5, atol=1e-5)
    afternoon = lr.logit_changes(model, batch, 1, rows, cols, delta, lags, steps=slice(1, 3))    # 2 of 4 steps
    np.testing.assert_allclose(afternoon, got / 2, rtol=1e-5, atol=1e-5)


def test_summaries_pool_runs_and_resample_people():
    rng = np.random.default_rng(1)
    changes = rng.normal(0.3, 1.0, size=(2, 400, 6, 4))
    s = lr.summarise(changes, n_boot=300, seed=0)
    np.testing.assert_allclose(s["mean"], changes.mean(axis=(0, 1)))
    assert (s["low"] < s["mean"]).all() and (s["mean"] < s["high"]).all()
    assert s["runs"] == 2 and s["people"] == 400
    np.testing.assert_allclose(s["runs_sd"], changes.mean(axis=1).std(axis=0, ddof=1))
    # a run repeated changes nothing but the runs' spread (0)
    one = lr.summarise(changes[:1], 300, 0)
    two = lr.summarise(np.concatenate([changes[:1]] * 2), 300, 0)
    np.testing.assert_allclose(one["mean"], two["mean"])
    np.testing.assert_allclose(one["low"], two["low"])
    assert one["runs_sd"] is None and np.allclose(two["runs_sd"], 0)
    # the interval narrows with people: ~1/sqrt(N)
    wide = lr.summarise(changes[:, :100], 300, 0)
    assert np.median(wide["high"] - wide["low"]) > 1.6 * np.median(s["high"] - s["low"])


class Fitted:
    """A stand-in for a fitted DistributedLag: its lag-response is given."""

    def __init__(self, log_or, low, high):
        self.r = {"lag": np.arange(1, log_or.shape[0] + 1), "log_or": log_or, "low": low, "high": high}

    def lag_response(self, j):
        return {k: (v if k == "lag" else v[:, j]) for k, v in self.r.items()}


def test_agreement_scores_the_overlap_and_the_planted_window():
    L = 10
    lags = np.arange(1, L + 1)
    mean = np.zeros((L, 4))
    mean[2:6, 1] = 1.0                    # the model: cataract above 0 at lags 3-6
    curve = {"mean": mean, "low": mean - 0.5, "high": mean + 0.5}
    base = np.zeros((L, 4))
    base[3:8, 1] = 1.0                    # the baseline: lags 4-8
    base[0, 0] = -1.0                     # and glaucoma below 0 at lag 1
    a = lr.agreement(lags, curve, Fitted(base, base - 0.5, base + 0.5), planted={"cataract": (4, 7)})
    c = a["cataract"]
    assert (c["model_above_0"], c["dlnm_above_0"]) == ("3-6", "4-8")
    assert c["overlap_above"] == pytest.approx(3 / 6)                       # {4,5,6} of {3..8}
    assert c["model_finds_planted"] == pytest.approx(3 / 4) and c["dlnm_finds_planted"] == 1.0
    assert c["model_inside_planted"] == pytest.approx(3 / 4) and c["dlnm_inside_planted"] == pytest.approx(4 / 5)
    assert a["glaucoma"]["dlnm_below_0"] == "1" and a["glaucoma"]["overlap_below"] == 0.0
    assert a["amd"]["overlap_above"] is None and "planted" not in a["amd"]


def test_lag_response_of_a_trained_run_beside_the_baseline(trained, tmp_path):
    from ppeye.explain import Explainer
    from ppeye.explain.entry import pooled_lag_response

    root, overrides = trained
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r", "explain.lag_response.max_lag=6"])
    s = Explainer(cfg).run(what="lag_response", out_dir=str(tmp_path / "one"), split="test")["lag_response"]
    table = pd.read_csv(tmp_path / "one" / "lag_response.csv")
    assert len(table) == 4 * 6 and sorted(table["lag"].unique()) == list(range(1, 7))
    assert (table["model_ci_low"] <= table["model_log_odds"]).all() and (table["model_log_odds"] <= table["model_ci_high"]).all()
    assert table["dlnm_log_or"].notna().all() and table["model_runs_sd"].isna().all()
    assert s["variable"] == cfg["compare"]["dlnm"]["variable"] and s["delta_sd"] > 0 and s["runs"] == 1
    assert set(s["agreement"]) == {"glaucoma", "cataract", "amd", "dr"}
    assert (tmp_path / "one" / "lag_response.png").stat().st_size > 0
    people = np.load(tmp_path / "one" / "lag_response_people.npz")
    assert people["changes"].shape == (1, s["people"], 6, 4) and set(people.files) == {"changes", "lags", "delta"}
    # the same run twice, pooled: the same curve, no spread between runs
    two = pooled_lag_response(cfg, [f"{root}/r", f"{root}/r"], str(tmp_path / "two"), split="test")
    pooled = pd.read_csv(tmp_path / "two" / "lag_response.csv")
    np.testing.assert_allclose(pooled["model_log_odds"], table["model_log_odds"], rtol=1e-6, atol=1e-7)
    assert two["runs"] == 2 and np.allclose(pooled["model_runs_sd"], 0, atol=1e-7)
    assert json.load(open(tmp_path / "two" / "lag_response.json"))["agreement"] == two["agreement"]


def test_lag_response_settings_are_checked(trained, tmp_path):
    root, overrides = trained
    from ppeye.explain import Explainer

    for bad, words in ((["explain.lag_response.variable=snow_depth"], "explain.lag_response.variable"),
                       (["explain.lag_response.delta=0"], "explain.lag_response.delta"),
                       (["explain.lag_response.max_lag=0"], "explain.lag_response.max_lag"),
                       (["explain.lag_response.hours=[3, 99]"], "explain.lag_response.hours"),
                       (["explain.lag_response.region=[0.5, 0.2, 0, 1]"], "region")):
        cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r"] + bad)
        with pytest.raises(InputError) as e:
            Explainer(cfg).run(what="lag_response", out_dir=str(tmp_path / "never"), split="test")
        assert words in str(e.value)
        assert not (tmp_path / "never").exists()              # refused before anything was written
