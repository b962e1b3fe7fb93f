"""Figures over seeds (tools/compare.py --seeds), cross-validation by centre (--cv centres) and
the pooling they use."""
import json
import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import ppeye
from conftest import DEMO
from ppeye.core.errors import InputError
from ppeye.metrics.pooling import over_seeds, random_effects, se_from_interval

FAST = ["train.epochs=1", "retrieval.enabled=false", "evaluation.bootstrap=50", "compare.logistic_c=[0.1]"]
BASELINES = ["patient_only", "logistic"]


def test_rubins_rules_add_the_spread_between_seeds_to_the_runs_own_uncertainty():
    r = over_seeds([0.70, 0.74, 0.72], [0.02, 0.02, 0.02])
    within, between = 0.02**2, 0.02**2                # var([0.70, 0.74, 0.72], ddof=1) = 0.0004
    total = within + (1 + 1 / 3) * between
    df = 2 / ((1 + 1 / 3) * between / total) ** 2
    half = stats.t.ppf(0.975, df) * np.sqrt(total)
    assert r["mean"] == pytest.approx(0.72) and r["sd"] == pytest.approx(0.02)
    assert (r["min"], r["max"], r["seeds"]) == (0.70, 0.74, 3)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((0.72 - half, 0.72 + half))
    assert r["ci_high"] - r["ci_low"] > 2 * 1.96 * 0.02           # wider than one run's interval
    one = over_seeds([0.7], [0.02])                                # one seed: its own interval, no sd
    assert np.isnan(one["sd"]) and (one["ci_low"], one["ci_high"]) == pytest.approx((0.7 - 0.0392, 0.7 + 0.0392), abs=1e-4)
    assert over_seeds([np.nan, 0.6], [0.1, 0.1])["seeds"] == 1
    assert se_from_interval(0.6, 0.8) == pytest.approx(0.1 / 1.959964)


def test_random_effects_pooling_matches_a_hand_computation():
    # two centres 0.1 and 0.3, each with se 0.1: fixed mean 0.2, Q = 2, C = 100, tau^2 = 0.01,
    # random-effects weights 50 each: pooled 0.2, se 0.1; I^2 = 0.5
    r = random_effects([0.1, 0.3], [0.1, 0.1])
    assert (r["pooled"], r["se"], r["tau2"], r["q"], r["i2"], r["k"]) == pytest.approx((0.2, 0.1, 0.01, 2.0, 0.5, 2))
    assert r["q_p"] == pytest.approx(stats.chi2.sf(2.0, 1))
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((0.2 - 1.959964 * 0.1, 0.2 + 1.959964 * 0.1))
    same = random_effects([0.05, 0.05, 0.05], [0.02, 0.04, 0.04])  # no heterogeneity: the fixed-effect answer
    assert same["tau2"] == 0 and same["i2"] == 0 and same["pooled"] == pytest.approx(0.05)
    assert same["se"] == pytest.approx(np.sqrt(1 / (1 / 0.02**2 + 2 / 0.04**2)))
    assert random_effects([0.1, np.nan], [0.1, 0.1])["k"] == 1


@pytest.fixture(scope="module")
def seeded(trained, tmp_path_factory):
    from ppeye.engine.results import SeedRuns

    root, overrides = trained
    out = tmp_path_factory.mktemp("seeds")
    cfg = ppeye.load_config(DEMO, overrides + FAST)
    rows = SeedRuns(cfg, str(out), [3, 4], BASELINES, processes="inline").run()
    return out, overrides, rows


@pytest.mark.slow
def test_seeds_are_summarised_by_mean_spread_and_pooled_interval(seeded):
    out, _, rows = seeded
    per_seed = pd.read_csv(out / "seeds.csv")
    table = pd.read_csv(out / "results.csv")
    assert sorted(per_seed.seed.unique()) == [3, 4]
    assert set(table.split) == {"test", "external"} and set(table.contender) == {"model", *BASELINES}
    for (split, contender, disease), runs in per_seed.groupby(["split", "contender", "disease"]):
        row = table[(table.split == split) & (table.contender == contender) & (table.disease == disease)].iloc[0]
        six = dict(abs=2e-6)                             # the CSVs hold 6 significant digits (core/io.csv_value)
        assert row.roc_auc_mean == pytest.approx(runs.roc_auc.mean(), **six)
        assert row.roc_auc_sd == pytest.approx(runs.roc_auc.std(ddof=1), **six)
        assert (row.roc_auc_min, row.roc_auc_max) == pytest.approx((runs.roc_auc.min(), runs.roc_auc.max()), **six)
        assert row.roc_auc_ci_low <= row.roc_auc_mean <= row.roc_auc_ci_high
        if contender != "model":
            assert row.seeds_model_ahead == (runs.model_minus_contender > 0).sum()
    # each seed's figures are its own comparison's
    for seed in (3, 4):
        saved = json.load(open(out / f"seed_{seed}" / "compare.json"))
        macro = [r for r in saved["rows"] if r["split"] == "test" and r["contender"] == "model" and r["disease"] == "macro"]
        got = per_seed[(per_seed.seed == seed) & (per_seed.split == "test") & (per_seed.contender == "model")
                       & (per_seed.disease == "macro")].roc_auc.item()
        assert got == pytest.approx(macro[0]["roc_auc"], abs=1e-6)
        assert ppeye.load_config(str(out / f"seed_{seed}" / "model" / "config.yaml"))["seed"] == seed
    info = json.load(open(out / "results.json"))
    assert info["machine"]["cpu_count"] == os.cpu_count() and set(info["seconds"]) == {"3", "4"}
    assert info["machine"]["training_processes"] == 1                      # processes="inline"
    text = (out / "results.md").read_text()
    assert "## test" in text and "## external" in text and "Rubin's rules" in text
    assert "patient-only baseline" in text


@pytest.mark.slow
def test_a_rerun_reads_finished_seeds_and_another_config_is_refused(seeded):
    from ppeye.engine.results import SeedRuns

    out, overrides, rows = seeded
    before = {p: os.path.getmtime(p) for p in (out / "seed_3" / "compare.json", out / "seed_4" / "compare.json")}
    again = SeedRuns(ppeye.load_config(DEMO, overrides + FAST), str(out), [3, 4], BASELINES, processes="inline").run()
    assert {p: os.path.getmtime(p) for p in before} == before           # nothing retrained
    assert [r["roc_auc_mean"] for r in again] == [r["roc_auc_mean"] for r in rows]
    # a seeds.json of an earlier ppeye (another fingerprint rule; download settings and whole-number
    # floats written then as now differ) is judged by today's rules on the config it saved: read
    old = json.loads((out / "seeds.json").read_text())
    old["fingerprint"] = "an-earlier-rule"
    old["config"]["data"]["download"] = {"retries": 5, "backoff_seconds": 30}
    old["config"]["evaluation"].pop("decision_curve_risks", None)
    old["config"]["optimizer"]["learning_rate"] = float(old["config"]["optimizer"]["learning_rate"])
    (out / "seeds.json").write_text(json.dumps(old))
    SeedRuns(ppeye.load_config(DEMO, overrides + FAST), str(out), [3, 4], BASELINES, processes="inline").run()
    assert {p: os.path.getmtime(p) for p in before} == before
    lr = ppeye.load_config(DEMO, overrides + FAST)["optimizer"]["learning_rate"]
    with pytest.raises(InputError, match="holds seeds of another config") as refused:
        SeedRuns(ppeye.load_config(DEMO, overrides + FAST + ["optimizer.learning_rate=0.01"]), str(out), [3],
                 BASELINES, processes="inline").run()
    assert f"optimizer.learning_rate: {lr} -> 0.01" in str(refused.value)       # names what differs
    assert str(refused.value).split("(theirs -> this config): ")[1].count(" -> ") == 1   # nothing else differs
    with pytest.raises(InputError, match="drop -o weights"):
        SeedRuns(ppeye.load_config(DEMO, overrides + FAST + [f"weights={out}"]), str(out), [3])


def test_the_fingerprint_ignores_settings_that_change_nothing():
    from ppeye.core.fingerprint import config_fingerprint
    from ppeye.engine.results import fingerprint, legacy_fingerprint

    cfg = ppeye.load_config(DEMO)
    same = [["model.fusion.lag_head=false"], ["seed=7", "output_dir=elsewhere"],
            ["model.missing.reconstruct_weight=0.5"],                 # a key of a switched-off section
            ["model.patient_offset.weather.lag_edges=[3]"],          # (the demo's offset is on, its weather off)
            ["export.participant_level=refuse", "ukb.warn_unreadable_share=0.5"],   # what is exported or said
            ["evaluation.decision_curve_risks=isotonic"]]             # what a decision curve draws
    assert fingerprint(ppeye.load_config(DEMO, ["data.download.retries=9"])) == fingerprint(cfg)   # how files are fetched
    before_decision_risks = ppeye.load_config(DEMO)                   # the key came later: earlier runs still count
    del before_decision_risks["evaluation"]["decision_curve_risks"]
    assert fingerprint(before_decision_risks) == fingerprint(cfg)
    for legacy in (fingerprint, config_fingerprint):               # and data.store_packing (float32 = as before)
        before_packing = ppeye.load_config(DEMO)
        del before_packing["data"]["store_packing"]
        assert legacy(before_packing) == legacy(cfg)
        assert legacy(ppeye.load_config(DEMO, ["data.store_packing=int16"])) != legacy(cfg)
    before_norm = ppeye.load_config(DEMO)                            # so did model.backbone.norm (batch = as before)
    del before_norm["model"]["backbone"]["norm"]
    assert fingerprint(before_norm) == fingerprint(cfg)
    assert fingerprint(ppeye.load_config(DEMO, ["model.backbone.norm=group"])) != fingerprint(cfg)
    for overrides in same:
        assert fingerprint(ppeye.load_config(DEMO, overrides)) == fingerprint(cfg), overrides
    new_option = ppeye.load_config(DEMO)
    new_option["model"]["fusion"]["an_option_added_later"] = False    # a key earlier runs did not have
    new_section = ppeye.load_config(DEMO)
    new_section["model"]["a_section_added_later"] = {"enabled": False, "size": 3}
    assert fingerprint(new_option) == fingerprint(new_section) == fingerprint(cfg)
    assert legacy_fingerprint(new_option) != legacy_fingerprint(cfg)  # what the old rule got wrong
    before_validation = ppeye.load_config(DEMO)                       # ukb.validation came later, as random
    del before_validation["ukb"]["validation"]
    assert fingerprint(before_validation) == fingerprint(cfg)
    assert legacy_fingerprint(before_validation) == legacy_fingerprint(cfg)
    differ = [["model.fusion.lag_head=true"], ["model.weather_branch=false"], ["model.missing.enabled=true"],
              ["optimizer.learning_rate=0.002"], ["ukb.validation=later"]]
    prints = {fingerprint(ppeye.load_config(DEMO, o)) for o in differ}
    assert len(prints) == len(differ) and fingerprint(cfg) not in prints


def test_config_differences_name_every_leaf_that_differs():
    from ppeye.core.config import config_differences

    a = {"model": {"width": 64, "fusion": {"heads": 4}}, "train": {"epochs": 8}}
    b = {"model": {"width": 64, "fusion": {"heads": 4, "branch_heads": True}}, "train": {"epochs": 9}}
    assert config_differences(a, b) == ["model.fusion.branch_heads: \"absent\" -> true", "train.epochs: 8 -> 9"]
    assert config_differences(a, a) == []


@pytest.mark.slow
def test_the_same_seed_on_the_same_machine_and_threads_gives_identical_predictions(seeded, tmp_path):
    from ppeye.engine.results import SeedRuns

    out, overrides, _ = seeded
    SeedRuns(ppeye.load_config(DEMO, overrides + FAST), str(tmp_path), [3], [], processes="inline").run()
    a = np.load(out / "seed_3" / "model" / "eval" / "test_predictions.npz")
    b = np.load(tmp_path / "seed_3" / "model" / "eval" / "test_predictions.npz")
    np.testing.assert_array_equal(a["probs"], b["probs"])
    assert set(pd.read_csv(tmp_path / "results.csv").contender) == {"model"}     # --baselines none
    other = np.load(out / "seed_4" / "model" / "eval" / "test_predictions.npz")
    assert not np.array_equal(a["probs"], other["probs"])               # another seed, another model


def test_parse_seeds():
    from ppeye.engine.results import parse_seeds

    assert parse_seeds("3", 42) == [42, 43, 44] and parse_seeds("0,5,2", 42) == [0, 5, 2]
    for bad in ("0", "x", "1,1", "-2"):
        with pytest.raises(InputError, match="--seeds takes"):
            parse_seeds(bad, 42)


@pytest.mark.slow
def test_every_centre_is_held_out_in_turn_and_the_differences_are_pooled(trained, tmp_path):
    from ppeye.data.ukb.centres import resolve_sites
    from ppeye.engine.crossval import CentreFolds

    root, overrides = trained
    cfg = ppeye.load_config(DEMO, overrides + FAST)
    folds, pooled = CentreFolds(cfg, str(tmp_path), [3], ["patient_only"], processes="inline").run()
    centres = [c.name for c in resolve_sites(cfg["data"]["sites"])]
    table = pd.read_csv(tmp_path / "cv_folds.csv")
    assert list(dict.fromkeys(table.centre)) == centres
    for centre in centres:
        work = tmp_path / f"fold_{centre}" / "work"
        assert (work / "era5.zarr").is_symlink()
        cohort = pd.read_parquet(work / "cohort.parquet")
        code = resolve_sites([centre])[0].code
        assert (cohort.split == "external").equals(cohort.site == code)     # exactly that centre is held out
        for name in ("model", "patient_only"):                 # a fold scores val (thresholds) and its centre only
            evaluated = sorted(f[:-len("_predictions.npz")] for f in
                               os.listdir(tmp_path / f"fold_{centre}" / "seed_3" / name / "eval")
                               if f.endswith("_predictions.npz"))
            assert {s.split("_")[0] for s in evaluated} == {"val", "external"}, evaluated
        row = table[(table.centre == centre) & (table.contender == "model") & (table.disease == "macro")].iloc[0]
        seeds = pd.read_csv(tmp_path / f"fold_{centre}" / "seeds.csv")
        assert row.roc_auc == pytest.approx(seeds[(seeds.split == "external") & (seeds.contender == "model")
                                                  & (seeds.disease == "macro")].roc_auc.item(), abs=1e-6)
    got = pd.read_csv(tmp_path / "cv_pooled.csv")
    po = got[(got.contender == "patient_only") & (got.disease == "macro")].iloc[0]
    at = table[(table.contender == "patient_only") & (table.disease == "macro")]
    expected = random_effects(at["diff"], se_from_interval(at.diff_ci_low, at.diff_ci_high))
    assert (po["diff"], po.diff_ci_low, po.diff_i2) == pytest.approx((expected["pooled"], expected["ci_low"],
                                                                       expected["i2"]), abs=1e-5)  # from 6-digit CSVs
    text = (tmp_path / "cv.md").read_text()
    assert all(f"| {c} |" in text for c in centres) and "DerSimonian-Laird" in text
