"""UK Biobank export -> cohort.parquet, checked against the synthetic ground truth."""
import json
import os

import numpy as np
import pandas as pd
import pytest

import ppeye
from conftest import DEMO, SMALL, TINY
from ppeye.core.errors import ConfigError, DataError
from ppeye.data.synthetic import make_synthetic
from ppeye.data.synthetic.signals import auc
from ppeye.data.ukb import fields as F
from ppeye.data.ukb.cohort import build_cohort
from ppeye.data.ukb.encoding import feature_list, numeric_values
from ppeye.data.ukb.geo import osgb_to_latlon
from ppeye.data.ukb.load import canonical


def cfg_for(table, work, extra=()):
    return ppeye.load_config(DEMO, TINY + [f"data.ukb_table={table}", f"data.work_dir={work}", *extra])


@pytest.fixture(scope="module")
def built(tiny, tmp_path_factory):
    out, gt = tiny
    work = tmp_path_factory.mktemp("cohort")
    report = build_cohort(cfg_for(os.path.join(out, "ukb.csv"), work))
    cohort = pd.read_parquet(work / "cohort.parquet")
    truth = pd.read_csv(os.path.join(out, "truth.csv")).set_index("eid").loc[cohort.eid.astype(int)]
    return work, report, cohort, truth


def test_one_row_per_participant_with_features_labels_split(built):
    work, report, cohort, _ = built
    assert cohort.eid.is_unique and set(cohort.split) == {"train", "val", "test"}
    assert len([c for c in cohort if c.startswith("f")]) == 20
    shares = cohort.split.value_counts(normalize=True)
    assert abs(shares["train"] - 0.7) < 0.03 and abs(shares["test"] - 0.15) < 0.03
    meta = json.load(open(work / "features" / "ukb_fields.json"))
    assert [m["column"] for m in meta["fields"]][:3] == ["f31", "f34", "f52"]
    assert sum(report["excluded"].values()) + report["participants"] == report["rows"]


def test_labels_equal_the_planted_truth(built):
    _, _, cohort, truth = built
    for d in F.DISEASES:
        np.testing.assert_array_equal(cohort[f"label_{d}"].to_numpy(), truth[f"y_{d}"].to_numpy())


def test_cases_are_indexed_at_first_onset(built):
    _, _, cohort, truth = built
    known = truth[[f"onset_date_known_{d}" for d in F.DISEASES]].all(axis=1).to_numpy()
    case = cohort[[f"label_{d}" for d in F.DISEASES]].any(axis=1).to_numpy()
    sel = case & known
    assert sel.sum() > 100
    np.testing.assert_array_equal(cohort.index_date.to_numpy()[sel], pd.to_datetime(truth.reference_date).to_numpy()[sel])


def test_prevalent_disease_and_h35_that_is_not_amd_are_handled(tiny, built):
    out, _ = tiny
    _, report, cohort, truth = built
    all_truth = pd.read_csv(os.path.join(out, "truth.csv"))
    assert not set(all_truth.eid[all_truth.prevalent_disease]) & set(cohort.eid.astype(int))
    assert report["h35_not_amd"] == int(all_truth.h35_not_amd.sum())
    assert (cohort.label_amd.to_numpy()[truth.h35_not_amd.to_numpy()] == 0).all()


def test_control_index_dates_are_case_dates_inside_follow_up(tiny, built):
    out, _ = tiny
    _, _, cohort, _ = built
    case = cohort[[f"label_{d}" for d in F.DISEASES]].any(axis=1)
    controls = cohort[~case]
    assert set(controls.index_date) <= set(cohort.index_date[case])
    table = pd.read_csv(os.path.join(out, "ukb.csv"), usecols=["eid", "53-0.0", "40000-0.0"]).set_index("eid")
    assessed = pd.to_datetime(table.loc[controls.eid.astype(int), "53-0.0"]).to_numpy()
    assert (controls.index_date.to_numpy() >= assessed).all()
    died = pd.to_datetime(table.loc[controls.eid.astype(int), "40000-0.0"]).to_numpy()
    alive = pd.isna(died)
    assert (controls.index_date.to_numpy()[~alive] <= died[~alive]).all()


def test_the_calendar_does_not_leak_the_label(built):
    """A weather-free model that knows only the index month scores chance on held-out people."""
    _, _, cohort, _ = built
    month = pd.to_datetime(cohort.index_date).dt.month
    case = cohort[[f"label_{d}" for d in F.DISEASES]].any(axis=1).astype(int)
    train = cohort.split == "train"
    rate = case[train].groupby(month[train]).mean()
    held = ~train
    score = month[held].map(rate).fillna(case[train].mean())
    assert abs(auc(score, case[held]) - 0.5) < 0.07


def test_codes_become_missing_and_categories_are_coded(tiny, built):
    out, _ = tiny
    _, report, cohort, _ = built
    table = pd.read_csv(os.path.join(out, "ukb.csv")).set_index("eid").loc[cohort.eid.astype(int)]
    smoking = cohort.f20116.dropna()
    assert set(smoking) <= {0.0, 1.0, 2.0}  # codes of the levels 0, 1, 2
    assert cohort.f20116.isna().sum() >= (table["20116-0.0"] == -3).sum()
    assert cohort.f738.min() >= 1 and cohort.f738.isna().sum() >= table["738-0.0"].isin([-1, -3]).sum()
    assert (cohort.f189 < 0).any()  # a continuous measure keeps its negative values


def test_less_than_one_and_unreadable_values():
    frame = pd.DataFrame({"1050-0.0": ["2", "-10", "-3", "abc", None]})
    report = {"unreadable_values": {}}
    values = numeric_values(frame, 1050, "integer", True, report)
    np.testing.assert_array_equal(values, [2.0, 0.5, np.nan, np.nan, np.nan])
    assert report["unreadable_values"]["1050"] == 1


def test_rap_export_gives_the_same_cohort(tmp_path):
    for style, fmt in (("ukbconv", "csv"), ("rap", "tsv")):
        cfg = ppeye.load_config(DEMO, SMALL + [f"synthetic.table_style={style}", f"synthetic.table_format={fmt}",
                                               "synthetic.num_participants=300"])
        make_synthetic(cfg, str(tmp_path / style))
        build_cohort(cfg_for(tmp_path / style / f"ukb.{fmt}", tmp_path / f"w_{style}", ["data.end_date=2019-03-15"]))
    a = pd.read_parquet(tmp_path / "w_ukbconv" / "cohort.parquet")
    b = pd.read_parquet(tmp_path / "w_rap" / "cohort.parquet")
    pd.testing.assert_frame_equal(a, b)


def test_column_names_are_normalised():
    assert canonical("p31") == "31-0.0" and canonical("participant.p53_i0") == "53-0.0"
    assert canonical("p41270_a3") == "41270-0.3" and canonical("p6150_i0_a1") == "6150-0.1"
    assert canonical("participant.eid") == "eid" and canonical("notes") is None


def test_missing_required_field_and_bad_tables(tiny, tmp_path):
    out, _ = tiny
    table = pd.read_csv(os.path.join(out, "ukb.csv"))
    table.drop(columns=["53-0.0"]).to_csv(tmp_path / "no53.csv", index=False)
    with pytest.raises(DataError, match="required field 53 is missing"):
        build_cohort(cfg_for(tmp_path / "no53.csv", tmp_path / "w"))
    pd.concat([table, table.iloc[:2]]).to_csv(tmp_path / "dupes.csv", index=False)
    with pytest.raises(DataError, match="2 participant ids appear more than once"):
        build_cohort(cfg_for(tmp_path / "dupes.csv", tmp_path / "w"))
    with pytest.raises(DataError, match="does not exist"):
        build_cohort(cfg_for(tmp_path / "absent.csv", tmp_path / "w"))
    with pytest.raises(ConfigError, match="kind 'text'"):
        feature_list(cfg_for("x", tmp_path, ["ukb.features=[{field: 31, kind: text}]"]))


def test_codes_outside_a_fields_coding_are_counted_warned_and_taken_as_missing(tiny, tmp_path):
    from test_trainer import Warnings

    out, _ = tiny
    table = pd.read_csv(os.path.join(out, "ukb.csv"), dtype=str)
    sex = pd.to_numeric(table["31-0.0"], errors="coerce")
    assert set(sex.dropna()) == {0, 1}
    with Warnings() as caught:
        report = build_cohort(cfg_for(os.path.join(out, "ukb.csv"), tmp_path / "w", [
            "ukb.features=[{field: 31, kind: categorical, codes: [0]}, 34]"]))
    cohort = pd.read_parquet(tmp_path / "w" / "cohort.parquet")
    assert report["unknown_codes"]["31"] == int((sex.loc[cohort.row - 1] == 1).sum()) > 0
    meta = json.load(open(tmp_path / "w" / "features" / "ukb_fields.json"))["fields"]
    assert meta[0]["codes"] == [0.0] and meta[0]["levels"] == [0.0]       # no level for the unknown code
    assert cohort["f31"].isna().sum() == report["unknown_codes"]["31"] + int(sex.loc[cohort.row - 1].isna().sum())
    assert any("codes outside their ukb.features codes, taken as missing: field 31" in m for m in caught.lines)
    for bad, match in (("[{field: 31, kind: categorical, code: [0, 1]}]", "field 31 has unknown key\\(s\\) code"),
                       ("[{field: 34, kind: continuous, codes: [1]}]", "field 34: codes must be a non-empty list"),
                       ("[{field: 31, codes: []}]", "field 31: codes must be a non-empty list")):
        with pytest.raises(ConfigError, match=match):
            feature_list(cfg_for("x", tmp_path, [f"ukb.features={bad}"]))


def test_unknown_centres_are_counted_and_a_failed_run_keeps_the_old_cohort(tiny, tmp_path):
    out, _ = tiny
    build_cohort(cfg_for(os.path.join(out, "ukb.csv"), tmp_path / "w"))
    before = (tmp_path / "w" / "cohort.parquet").read_bytes()
    table = pd.read_csv(os.path.join(out, "ukb.csv"))
    table.loc[:9, "54-0.0"] = 99999
    table.to_csv(tmp_path / "odd.csv", index=False)
    report = build_cohort(cfg_for(tmp_path / "odd.csv", tmp_path / "w2"))
    assert report["excluded"]["unknown_centre_code"] == 10
    table.drop(columns=["54-0.0"]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError):
        build_cohort(cfg_for(tmp_path / "bad.csv", tmp_path / "w"))
    assert (tmp_path / "w" / "cohort.parquet").read_bytes() == before


def test_missingness_report_finds_the_eye_block(built):
    work, _, _, _ = built
    blocks = pd.read_csv(work / "missingness_blocks.csv")
    assert any({"f5262", "f5254"} <= set(cols.split()) for cols in blocks["columns"])
    features = pd.read_csv(work / "missingness_features.csv")
    assert features.set_index("column").loc["f5262", "missing_share"] > 0.5
    assert (work / "missingness.png").stat().st_size > 1000


def test_osgb_matches_the_ordnance_survey_worked_example():
    lat, lon = osgb_to_latlon([651409.903], [313177.270])
    assert lat[0] == pytest.approx(52 + 39 / 60 + 27.2531 / 3600, abs=1e-7)
    assert lon[0] == pytest.approx(1 + 43 / 60 + 4.5177 / 3600, abs=1e-7)


def test_home_coordinates_pick_the_nearest_centre(tiny, tmp_path):
    out, _ = tiny
    table = pd.read_csv(os.path.join(out, "ukb.csv"))
    table["20074-0.0"] = 383500  # central Manchester
    table["20075-0.0"] = 398500
    table.loc[:4, "20074-0.0"] = 260000  # Snowdonia: too far from Liverpool and Manchester
    table.to_csv(tmp_path / "home.csv", index=False)
    report = build_cohort(cfg_for(tmp_path / "home.csv", tmp_path / "w", ["ukb.site_from=home",
                                                                          "ukb.max_home_distance_km=40"]))
    cohort = pd.read_parquet(tmp_path / "w" / "cohort.parquet")
    assert set(cohort.site) == {11001}
    assert report["excluded"]["home_too_far_or_missing"] == 5


def test_assessment_dates_in_the_future_are_excluded(tiny, tmp_path):
    out, _ = tiny
    table = pd.read_csv(os.path.join(out, "ukb.csv"))
    table.loc[:2, "53-0.0"] = "2099-01-01"
    table.to_csv(tmp_path / "future.csv", index=False)
    report = build_cohort(cfg_for(tmp_path / "future.csv", tmp_path / "w"))
    assert report["excluded"]["assessment_date_missing_or_future"] == 3


def test_a_temporal_split_holds_out_the_later_index_dates(tiny, built, tmp_path):
    from ppeye.data.ukb.centres import resolve_sites

    out, _ = tiny
    _, _, before, _ = built
    build_cohort(cfg_for(os.path.join(out, "ukb.csv"), tmp_path, [
        "ukb.temporal_split=[2019-05-15, 2019-06-10]", "ukb.external_centres=[Liverpool]"]))
    cohort = pd.read_parquet(tmp_path / "cohort.parquet")
    dates, split = cohort.index_date, cohort.split
    external = cohort.site == resolve_sites(["Liverpool"])[0].code
    assert (split[external] == "external").all()
    assert (split[~external & (dates > "2019-06-10")] == "period_2").all()
    assert (split[~external & (dates > "2019-05-15") & (dates <= "2019-06-10")] == "period").all()
    assert (dates[split.isin(["train", "val", "test"])] <= "2019-05-15").all()
    assert {"train", "val", "test", "external", "period", "period_2"} == set(split)
    # the same people, index dates and labels (categories are coded on the new training split)
    same = ["eid", "row", "site", "index_date"] + [c for c in cohort if c.startswith("label_")]
    pd.testing.assert_frame_equal(cohort[same], before[same])
    for bad in ("2030-01-01", "[2019-06-10, 2019-05-15]", "[2019-03-01, 2019-04-01, 2019-05-01]", "soon"):
        with pytest.raises(ConfigError, match="ukb.temporal_split must be null, a date or a list of 2 ascending dates"):
            build_cohort(cfg_for(os.path.join(out, "ukb.csv"), tmp_path / "bad", [f"ukb.temporal_split={bad}"]))
    assert not (tmp_path / "bad").exists()


def test_a_later_validation_takes_the_latest_index_dates_before_the_held_out_period(tiny, built, tmp_path):
    out, _ = tiny
    _, _, before, _ = built
    report = build_cohort(cfg_for(os.path.join(out, "ukb.csv"), tmp_path, [
        "ukb.temporal_split=2019-06-10", "ukb.validation=later"]))
    cohort = pd.read_parquet(tmp_path / "cohort.parquet")
    dates, split = cohort.index_date, cohort.split
    pool = split.isin(["train", "val", "test"])
    val = split == "val"
    # every validation person's index date is after every training or test person's (no day shared
    # in between: the earliest validation date is later than the latest earlier one)
    assert dates[val].min() > dates[split.isin(["train", "test"])].max()
    assert (dates[pool] <= "2019-06-10").all() and (split[dates > "2019-06-10"] == "period").all()
    assert abs(val.sum() / pool.sum() - 0.15) < 0.03          # about ukb.split.val of the earlier people
    shares = split[pool & ~val].value_counts(normalize=True)  # train : test keeps 0.7 : 0.15
    assert abs(shares["train"] - 0.7 / 0.85) < 0.03
    assert report["index_dates"]["val"][0] > report["index_dates"]["train"][1]
    assert report["made_with"]["ukb"]["validation"] == "later"
    # the random design is unchanged by the option (the same people in the same splits as before it)
    pd.testing.assert_series_equal(before.split, build_and_read(out, tmp_path / "random", ["ukb.validation=random"]))
    with pytest.raises(ConfigError, match="ukb.validation must be one of random, later, got 'latest'"):
        build_cohort(cfg_for(os.path.join(out, "ukb.csv"), tmp_path / "bad", ["ukb.validation=latest"]))
    assert not (tmp_path / "bad").exists()


def build_and_read(out, work, extra):
    build_cohort(cfg_for(os.path.join(out, "ukb.csv"), work, extra))
    return pd.read_parquet(os.path.join(work, "cohort.parquet")).split


def test_tables_with_no_usable_case_are_clear_errors(tiny, tmp_path):
    out, _ = tiny
    table = pd.read_csv(os.path.join(out, "ukb.csv"), dtype=str)
    outcome = [c for c in table.columns if c.split("-")[0] in ("131186", "131164", "131166", "131182", "131184",
                                                               "41270", "41280")]
    controls = table.copy()
    controls[outcome] = np.nan
    controls.to_csv(tmp_path / "controls.csv", index=False)
    with pytest.raises(DataError, match="no usable case .* a table of controls alone cannot make a cohort"):
        build_cohort(cfg_for(tmp_path / "controls.csv", tmp_path / "w1"))
    dated = table.copy()
    for c in dated.columns:
        if c.split("-")[0] in ("53", "131186", "131164", "131166", "131182", "131184", "41280", "40000"):
            dated[c] = pd.to_datetime(dated[c], errors="coerce").dt.strftime("%d/%m/%Y")
    dated.to_csv(tmp_path / "ddmm.csv", index=False)
    with pytest.raises(DataError, match="column 53-0.0: none of its .* dates is YYYY-MM-DD \\(they look like dd/mm/yyyy"):
        build_cohort(cfg_for(tmp_path / "ddmm.csv", tmp_path / "w2"))
    with pytest.raises(ConfigError, match="data.window_days 5000 leaves no possible index date"):
        build_cohort(cfg_for(os.path.join(out, "ukb.csv"), tmp_path / "w3", ["data.window_days=5000"]))
    for w in ("w1", "w2", "w3"):
        assert not (tmp_path / w / "cohort.parquet").exists()


def test_birth_years_after_assessment_and_unreadable_text_are_counted_and_said(tiny, tmp_path):
    from test_trainer import Warnings

    out, _ = tiny
    table = pd.read_csv(os.path.join(out, "ukb.csv"), dtype=str)
    table.loc[:4, "34-0.0"] = "2030"                              # born after the assessment
    numeric = next(c for c in table.columns if c.startswith("21001-"))   # BMI
    table.loc[:39, numeric] = "n/a"                               # 40 of 800 rows: text in a number field
    table.to_csv(tmp_path / "odd.csv", index=False)
    with Warnings() as caught:
        report = build_cohort(cfg_for(tmp_path / "odd.csv", tmp_path / "w"))
    assert report["excluded"]["born_after_assessment"] == 5
    assert report["unreadable_values"]["21001"] >= 30              # counted among the people kept
    text = caught.text
    assert "5 rows give a year of birth (field 34) after their assessment: excluded" in text
    assert "more than 1% unreadable values" in text and "field 21001:" in text
    assert "n/a" not in text                                       # counts, never the raw values


def test_encoding_marks_each_rows_unreadable_unknown_and_unseen_values():
    from ppeye.data.ukb.encoding import encode_features

    frame = pd.DataFrame({"31-0.0": ["0", "1", "7", "x", None], "1558-0.0": ["1", "2", "6", "-3", "9"]})
    meta = [{"field": 31, "column": "f31", "kind": "categorical", "less_than_one": False, "levels": [0.0],
             "codes": [0.0, 1.0]},
            {"field": 1558, "column": "f1558", "kind": "ordinal", "less_than_one": False, "codes": [1, 2, 3, 4, 5, 6]}]
    report, rows = {}, {}
    enc = encode_features(frame, meta, report, rows)
    # 1 is a valid code training never had; 7 is outside the coding; x is text; -3 is UK Biobank's
    # "prefer not to answer" (missing, not wrong); 9 is outside 1558's coding
    assert rows["unseen_category"]["31"].tolist() == [False, True, False, False, False]
    assert rows["unknown_code"]["31"].tolist() == [False, False, True, False, False]
    assert rows["unreadable"]["31"].tolist() == [False, False, False, True, False]
    assert rows["unknown_code"]["1558"].tolist() == [False, False, False, False, True]
    assert report["unknown_codes"] == {"31": 1, "1558": 1} and report["unseen_categories"] == {"31": 1}
    assert enc["f31"].isna().tolist() == [False, True, True, True, True]
    assert enc["f1558"].tolist()[:3] == [1, 2, 6] and enc["f1558"].isna().tolist()[3:] == [True, True]
