"""Climate scenarios (``tools/simulate.py``): exact on a model whose answer is known, their
settings refused with the scenario and key named, and end to end on a tiny trained run."""
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import ppeye
from conftest import DEMO
from test_lag_response import LinearInLags
from ppeye.core.errors import InputError
from ppeye.explain import scenario as sim

STORE = SimpleNamespace(variables=["2m_temperature", "total_precipitation", "surface_pressure"],
                        std=np.array([4.0, 0.002, 900.0], np.float32).reshape(-1, 1, 1, 1), shape=(3, 4, 6, 6))


def batch_and_model(seed=0):
    rng = np.random.default_rng(seed)
    shape, T, B, U = STORE.shape, 5, 4, 7
    w = rng.normal(size=T).astype("float32")
    c = np.array([1.0, -2.0, 0.5, 0.0], np.float32)
    index = np.array([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5], [2, 3, 4, 5, 6], [0, 1, 2, 3, 4]], np.int64)
    batch = {"weather_unique": rng.normal(size=(U, *shape)).astype("float32"), "day_index": index,
             "tab": rng.normal(size=(B, 3)).astype("float32"), "tab_mask": np.ones((B, 3), np.float32),
             "weather_present": np.ones(B, np.float32)}
    start = np.datetime64("2020-01-29")                         # days 0..6: Jan 29-31, Feb 1-4
    dates = start + index                                       # [B, T] the calendar day of each window day
    return LinearInLags(shape, 0, slice(1, 3), slice(2, 5), w, c), batch, dates, w, c


@pytest.mark.parametrize("kind", ["warming", "monthly", "heatwave"])
def test_each_kind_of_scenario_moves_the_logits_exactly(kind):
    model, batch, dates, w, c = batch_and_model()
    spec = {"name": "s", "kind": kind, "variable": "t2m", "change": 2.0, "region": [0.2, 0.5, 0.4, 0.8]}
    if kind == "monthly":
        spec["change"] = [2.0, -1.0] + [0.0] * 10
    if kind == "heatwave":
        spec["lags"] = [2, 3]
    sc = sim.parse([spec], STORE, 5)[0]
    _, got = sim.scenario_changes(model, batch, dates, sc)
    T, hours = 5, STORE.shape[1]
    per_day = np.full(dates.shape, 2.0 / 4.0)                   # change / std, in the store's sd
    if kind == "monthly":
        per_day = np.where(dates.astype("datetime64[M]") == np.datetime64("2020-01"), 2.0, -1.0) / 4.0
    if kind == "heatwave":
        per_day = np.zeros(dates.shape)
        per_day[:, [T - 3, T - 2]] = 2.0 / 4.0                   # lags 3 and 2
    want = (per_day * hours * w).sum(1, keepdims=True) * c      # LinearInLags: hours x the region mean
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    sc = sim.parse([{**spec, "hours": [1, 2]}], STORE, 5)[0]     # 2 of the 4 steps
    np.testing.assert_allclose(sim.scenario_changes(model, batch, dates, sc)[1], want / 2, rtol=1e-5, atol=1e-5)


def test_scenario_settings_are_refused_naming_the_scenario_and_key():
    ok = {"name": "a", "kind": "warming", "variable": "2m_temperature", "change": 1.0}
    bad = [([{**ok, "kind": "drought"}], "simulate.scenarios[0].kind"),
           ([{**ok, "lags": [1, 2]}], "unknown key(s) ['lags']"),
           ([{"name": "a", "kind": "heatwave", "variable": "t2m", "change": 1.0}], "missing ['lags']"),
           ([ok, {**ok}], "'a' is used twice"),
           ([{**ok, "variable": "snow_depth"}], "is not in the store's variables"),
           ([{**ok, "change": [1.0, 2.0]}], "must be a number"),
           ([{**ok, "kind": "monthly"}], "12 numbers"),
           ([{**ok, "kind": "heatwave", "lags": [3, 9]}], "within 1..5"),
           ([{**ok, "change": True}], "change"),
           ([{**ok, "region": [0.5, 0.1, 0, 1]}], "region"),
           ([{**ok, "hours": [2, 4]}], "simulate.scenarios[0].hours"),
           ([], "a list of scenarios")]
    for scenarios, words in bad:
        with pytest.raises(InputError) as e:
            sim.parse(scenarios, STORE, 5)
        assert words in str(e.value), (scenarios, str(e.value))


def test_summary_rows_give_every_group_and_an_interval_around_the_mean():
    rng = np.random.default_rng(0)
    base, change = rng.normal(-1, 1, (300, 4)), rng.normal(0.2, 0.1, (300, 4))
    groups = {"all": np.ones(300, bool), "sex=female": np.arange(300) < 120, "sex=male": np.arange(300) >= 120}
    rows = pd.DataFrame(sim.summary_rows("s", base, change, groups, 200, 0))
    assert len(rows) == 3 * 2 * 4 and set(rows["change"]) == {"log_odds", "risk_points"}
    assert ((rows["ci_low"] < rows["mean"]) & (rows["mean"] < rows["ci_high"])).all()
    odds = rows[(rows["change"] == "log_odds") & (rows["subgroup"] == "sex=female")]
    np.testing.assert_allclose(odds["mean"], change[:120].mean(0))
    assert (rows.loc[rows["change"] == "risk_points", "mean"] > 0).all()


def test_simulate_on_a_trained_run(trained, tmp_path):
    from ppeye.explain.entry import simulate_scenarios

    root, overrides = trained
    scenarios = ("[{name: none, kind: warming, variable: t2m, change: 0.0}, "
                 "{name: warm, kind: warming, variable: t2m, change: 3.0}, "
                 "{name: wave, kind: heatwave, variable: t2m, change: 6.0, lags: [1, 5]}]")
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r", f"simulate.scenarios={scenarios}"])
    simulate_scenarios(cfg, str(tmp_path / "sim"), split="test")
    rows = pd.read_csv(tmp_path / "sim" / "scenarios.csv")
    assert set(rows["scenario"]) == {"none", "warm", "wave"} and "all" in set(rows["subgroup"])
    assert any(s.startswith("age_band=") for s in rows["subgroup"]) and any(s.startswith("centre=") for s in rows["subgroup"])
    none = rows[rows["scenario"] == "none"]
    assert (none[["mean", "ci_low", "ci_high"]].abs() < 1e-6).all().all()    # nothing changed, nothing moves
    assert rows.loc[rows["scenario"] == "warm", "mean"].abs().max() > 1e-6
    summary = json.load(open(tmp_path / "sim" / "scenarios.json"))
    assert summary["people"] > 0 and [s["name"] for s in summary["scenarios"]] == ["none", "warm", "wave"]
    assert (tmp_path / "sim" / "scenarios.png").stat().st_size > 0
    bad = ppeye.load_config(DEMO, overrides + [f"weights={root}/r", "simulate.subgroups=[shoe_size]"])
    with pytest.raises(InputError, match="simulate.subgroups"):
        simulate_scenarios(bad, str(tmp_path / "never"), split="test")
    assert not (tmp_path / "never").exists()
