"""Samples, shared-day batches and the grouping sampler over a real converted store."""
import json
import os

import numpy as np
import pandas as pd
import pytest

import ppeye
from conftest import DEMO, PIPE, TINY
from ppeye.core.errors import ConfigError, DataError
from ppeye.data.dataset import OnsetDataset, SiteDateBatchSampler, WeatherCollator, load_tab_stats, window_shift
from ppeye.data.store import Era5Store


@pytest.fixture(scope="module")
def work(tiny_work):
    return ppeye.load_config(DEMO, TINY + PIPE + tiny_work)


@pytest.fixture(scope="module")
def train(work):
    return OnsetDataset(work, "train")


def test_a_sample_is_the_window_before_the_index_date(work, train):
    cohort = pd.read_parquet(f"{work.data.work_dir}/cohort.parquet")
    cohort = cohort[cohort.split == "train"].reset_index(drop=True)
    s = train[5]
    assert s["days"].shape == (28,) and np.all(np.diff(s["days"]) == 1)
    last_day = train.store.dates[s["days"][-1]]
    assert last_day == np.datetime64(cohort.index_date[5], "D") - 1
    assert s["tab"].shape == s["tab_mask"].shape == (20,) and s["labels"].shape == (4,)
    np.testing.assert_array_equal(s["tab_mask"], cohort.loc[5, [c for c in cohort if c.startswith("f")]].notna())


def test_a_negative_control_moves_every_window_and_counts_those_leaving_the_store(work, tiny_work, train):
    for shift in (10, -28):                          # 10 days earlier; the 28 days from the index date on
        moved = OnsetDataset(ppeye.load_config(DEMO, TINY + PIPE + tiny_work + [f"data.window_shift_days={shift}"]),
                             "train")
        rows = {int(r): i for i, r in enumerate(train.rows)}
        both = [(rows[int(r)], j) for j, r in enumerate(moved.rows) if int(r) in rows]
        assert len(both) > 0.5 * len(train)
        a, b = np.array(both).T
        np.testing.assert_array_equal(moved.start[b], train.start[a] - shift)
        assert len(moved) + sum(moved.excluded.values()) == len(train) + sum(train.excluded.values())
    for bad in ("1.5", "true", "a"):
        with pytest.raises(ConfigError, match="data.window_shift_days"):
            ppeye.load_config(DEMO, TINY + PIPE + tiny_work + [f"data.window_shift_days={bad}"])
    with pytest.raises(DataError, match="data.window_shift_days must be a whole number"):
        window_shift({"window_shift_days": 1.5})                  # a config built in code, not loaded


def test_features_are_standardised_with_training_statistics(work, train):
    kinds = load_tab_stats(work.data.work_dir)["kinds"]
    continuous = [i for i, k in enumerate(kinds) if k != "categorical"]
    np.testing.assert_allclose(train.tab[:, continuous].mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(train.tab[:, continuous].std(0), 1, atol=1e-3)


def test_collated_batch_holds_each_volume_once_and_indexes_it_right(train):
    batch_ids = next(iter(SiteDateBatchSampler(train, 8, seed=1)))
    samples = [train[i] for i in batch_ids]
    batch = WeatherCollator(train.store)(samples)
    w, idx = batch["weather_unique"], batch["day_index"]
    assert idx.shape == (8, 28) and w.shape[1:] == (4, 8, 8, 8)
    assert w.shape[0] == len({(s["site"], d) for s in samples for d in s["days"]})
    for b, s in enumerate(samples):
        np.testing.assert_array_equal(w[idx[b]], train.store.read(s["site"], s["days"]))


def test_store_reads_are_normalised(train):
    st = train.store
    days = np.nonzero((st.dates >= np.datetime64("2019-01-01")) & (st.dates <= np.datetime64("2019-06-29")))[0]
    x = np.concatenate([st.read(s, days) for s in range(len(st.sites))])
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3, 4)), 0, atol=1e-3)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3, 4)), 1, atol=1e-3)


def test_grouping_by_site_and_date_shares_days(train):
    collate = WeatherCollator(train.store)
    grouped = next(iter(SiteDateBatchSampler(train, 16, seed=0)))
    random = np.random.default_rng(0).choice(len(train), 16, replace=False)
    u_grouped = collate([train[i] for i in grouped])["weather_unique"].shape[0]
    u_random = collate([train[i] for i in random])["weather_unique"].shape[0]
    assert u_grouped * 3 < 16 * 28 and u_grouped * 2 < u_random


def test_sampler_covers_everyone_once_reshuffles_and_splits_ranks(train):
    sampler = SiteDateBatchSampler(train, 8, seed=3)
    epoch0 = [i for b in sampler for i in b]
    assert sorted(epoch0) == list(range(len(train)))
    sampler.set_epoch(1)
    assert [i for b in sampler for i in b] != epoch0
    ranks = [SiteDateBatchSampler(train, 8, seed=3, num_replicas=2, rank=r) for r in (0, 1)]
    a, b = ([i for batch in r for i in batch] for r in ranks)
    assert not set(a) & set(b) and len(ranks[0]) == len(ranks[1])
    sites = [{int(train.site[i]) for i in batch} for batch in sampler]
    assert all(len(s) == 1 for s in sites)  # a batch never mixes sites


def test_windows_with_missing_days_are_left_out_and_counted(work):
    store = Era5Store(f"{work.data.work_dir}/era5.zarr")
    store.valid[:, 100] = False  # as if 2019-04-11 were missing everywhere
    ds = OnsetDataset(work, "train", store=store)
    full = OnsetDataset(work, "train")
    covering = int(((full.start <= 100) & (full.start + 28 > 100)).sum())
    assert ds.excluded["window_with_missing_days"] == covering > 0
    assert len(ds) == len(full) - covering


def test_paddle_dataloader_with_workers_gives_the_same_batches(train):
    from ppeye.core.paddle_env import import_paddle

    paddle = import_paddle()
    sampler = SiteDateBatchSampler(train, 8, shuffle=False)
    batches = []
    for workers in (0, 2):
        loader = paddle.io.DataLoader(train, batch_sampler=sampler, collate_fn=WeatherCollator(train.store),
                                      num_workers=workers)
        batches.append([b for _, b in zip(range(3), loader)])
    for one, two in zip(*batches):
        for key in one:
            np.testing.assert_array_equal(np.asarray(one[key]), np.asarray(two[key]))
    assert tuple(batches[0][0]["day_index"].shape) == (8, 28)


def test_mismatches_are_named(work, tmp_path):
    bad = ppeye.load_config(DEMO, TINY + PIPE + [f"data.work_dir={work.data.work_dir}", "data.num_features=19"])
    with pytest.raises(DataError, match="the cohort.s -> this config.s: data.num_features: 20 -> 19"):
        OnsetDataset(bad, "train")
    bad = ppeye.load_config(DEMO, TINY + PIPE + [f"data.work_dir={work.data.work_dir}", "data.hours=4"])
    with pytest.raises(DataError, match=r"holds volumes \(4, 8, 8, 8\).*asks for \(4, 4, 8, 8\)"):
        OnsetDataset(bad, "train")
    empty = ppeye.load_config(DEMO, TINY + [f"data.work_dir={tmp_path}"])
    with pytest.raises(DataError, match="run tools/preprocess.py --stage ukb"):
        OnsetDataset(empty, "train")
    with pytest.raises(DataError, match="no participants in split"):
        OnsetDataset(work, "external")


def test_the_store_opens_from_an_fsspec_url_and_survives_pickling(work):
    import pickle

    path = os.path.abspath(f"{work.data.work_dir}/era5.zarr")
    local, url = Era5Store(path), Era5Store("file://" + path)
    np.testing.assert_array_equal(local.read(1, np.arange(30, 40)), url.read(1, np.arange(30, 40)))
    again = pickle.loads(pickle.dumps(url))  # what a DataLoader worker receives
    np.testing.assert_array_equal(again.read(0, np.arange(5)), local.read(0, np.arange(5)))


def test_a_cohort_made_with_other_settings_or_a_stale_imputation_is_refused(work, tiny_work, tmp_path):
    import shutil

    from conftest import resplit

    # the cohort records the settings it was made with: a config asking for other splits is refused,
    # naming each setting, instead of training on the old splits under the new config's name
    with pytest.raises(DataError, match=r"cohort.parquet was made with other settings than this config "
                                        r"\(the cohort's -> this config's: ukb.temporal_split: null -> \"2019-05-20\"; "
                                        r"ukb.validation: \"random\" -> \"later\"\)"):
        OnsetDataset(ppeye.load_config(DEMO, TINY + PIPE + tiny_work + ["ukb.validation=later",
                                                                        "ukb.temporal_split=2019-05-20"]), "train")
    OnsetDataset(ppeye.load_config(DEMO, TINY + PIPE + tiny_work + ["ukb.imputer=mean"]), "val")  # read later
    # a cohort re-split without imputing again: the imputer was fitted on other training people
    shutil.copytree(work.data.work_dir, tmp_path / "w")
    cohort = pd.read_parquet(tmp_path / "w" / "cohort.parquet")
    cohort.loc[cohort.split == "val", "split"] = "train"
    cohort.to_parquet(tmp_path / "w" / "cohort.parquet")
    moved = ppeye.load_config(DEMO, TINY + PIPE + tiny_work + [f"data.work_dir={tmp_path / 'w'}"])
    with pytest.raises(DataError, match="cohort_imputed.parquet does not match .*cohort.parquet \\(its people or "
                                        "their splits differ\\): rerun tools/preprocess.py --stage impute"):
        OnsetDataset(moved, "train")
    resplit(tmp_path / "w", cohort.split == "train", "train")  # both tables alike: accepted
    assert len(OnsetDataset(moved, "train")) > len(OnsetDataset(work, "train"))
    # a cohort of an earlier ppeye that recorded data.window_days too is not refused for it
    report = json.load(open(tmp_path / "w" / "cohort_report.json"))
    report["made_with"]["data"]["window_days"] = 999
    json.dump(report, open(tmp_path / "w" / "cohort_report.json", "w"))
    assert len(OnsetDataset(moved, "train")) > 0
