"""The diagnosis history of the cohort stage: codes dated strictly before the index date, nothing else."""
import os

import numpy as np
import pandas as pd
import pytest

import ppeye
import ppeye.data.synthetic.make as make
from conftest import DEMO, TINY, tiny_cfg
from ppeye.core.errors import DataError
from ppeye.data.ukb import fields as F
from ppeye.data.ukb.cohort import build_cohort
from ppeye.data.history import OTHER, CodeVocabulary, history_arrays
from ppeye.data.synthetic.history import COMMON, RARE
from ppeye.data.ukb.history import COLUMNS, read_history


def cfg_for(table, work):
    return ppeye.load_config(DEMO, TINY + [f"data.ukb_table={table}", f"data.work_dir={work}"])


def raw_records(table):
    """Every (1-based row, code, date) of the export's hospital diagnoses, codes without the dot."""
    out = []
    for col in [c for c in table if c.startswith(f"{F.ICD10_DIAGNOSES}-")]:
        dates = table[col.replace(str(F.ICD10_DIAGNOSES), str(F.ICD10_DATES), 1)]
        given = table[col].notna()
        out.append(pd.DataFrame({"row": np.nonzero(given.to_numpy())[0] + 1,
                                 "code": table.loc[given, col].str.replace(".", "", regex=False).str.upper().to_numpy(),
                                 "date": dates[given].to_numpy()}))
    return pd.concat(out, ignore_index=True)


def built(table, work):
    report = build_cohort(cfg_for(table, work))
    cohort = pd.read_parquet(os.path.join(work, "cohort.parquet"))
    return report, cohort, read_history(work)


@pytest.fixture(scope="module")
def tiny_history(tiny, tmp_path_factory):
    out, _ = tiny
    table = pd.read_csv(os.path.join(out, "ukb.csv"), dtype={c: str for c in pd.read_csv(
        os.path.join(out, "ukb.csv"), nrows=0).columns if c.startswith(("41270-", "41280-"))})
    return table, *built(os.path.join(out, "ukb.csv"), tmp_path_factory.mktemp("history"))


def test_history_is_exactly_the_codes_dated_before_the_index_date(tiny_history):
    table, report, cohort, history = tiny_history
    assert list(history.columns) == list(COLUMNS) and len(history) > 100
    raw = raw_records(table).merge(cohort[["row", "index_date"]], on="row")
    dated = ~raw.date.isin(F.PLACEHOLDER_DATES) & raw.date.notna()
    raw = raw[dated].assign(days_before=lambda r: (r.index_date - pd.to_datetime(r.date)).dt.days)
    expected = raw[raw.days_before >= 1][list(COLUMNS)]
    key = list(COLUMNS)
    pd.testing.assert_frame_equal(history.sort_values(key).reset_index(drop=True),
                                  expected.sort_values(key).reset_index(drop=True), check_dtype=False)
    assert history.days_before.min() >= 1
    counts = report["history"]
    assert counts["kept"] == len(history) and counts["on_or_after_index"] == int((raw.days_before < 1).sum()) > 0
    assert counts["people_with_history"] == history.row.nunique() and set(history.row) <= set(cohort.row)


def test_no_outcome_code_is_in_anyones_history(tiny_history):
    _, _, _, history = tiny_history
    confirming = tuple(p for ps in F.ICD10_CONFIRM.values() for p in ps)
    assert not history.code.str.startswith(confirming).any()
    assert history.code.str.startswith("H").sum() > 0          # H35 that is not AMD, H52 refraction: kept


def test_codes_on_after_and_without_a_date_are_left_out_and_counted(tiny_history, tmp_path):
    table, report, cohort, _ = tiny_history
    table = table.copy()
    person = cohort[cohort.split == "train"].iloc[0]
    i, index = int(person.row) - 1, pd.Timestamp(person.index_date)
    width = len([c for c in table if c.startswith(f"{F.ICD10_DIAGNOSES}-")])
    extra = [("Z000", index), ("Z001", index + pd.Timedelta(days=3)), ("Z002", None), ("Z003", "1900-01-01"),
             ("Z004", index - pd.Timedelta(days=1))]
    for a, (code, when) in enumerate(extra, start=width):
        table[f"{F.ICD10_DIAGNOSES}-0.{a}"] = None
        table[f"{F.ICD10_DATES}-0.{a}"] = None
        table.loc[i, f"{F.ICD10_DIAGNOSES}-0.{a}"] = code
        table.loc[i, f"{F.ICD10_DATES}-0.{a}"] = when if when is None or isinstance(when, str) else when.strftime("%Y-%m-%d")
    table.to_csv(tmp_path / "more.csv", index=False)
    report2, _, history = built(tmp_path / "more.csv", tmp_path / "w")
    mine = history[history.row == person.row]
    assert "Z004" in set(mine.code) and mine.set_index("code").days_before["Z004"] == 1
    assert not {"Z000", "Z001", "Z002", "Z003"} & set(history.code)
    assert report2["history"]["on_or_after_index"] == report["history"]["on_or_after_index"] + 2
    assert report2["history"]["undated"] == report["history"]["undated"] + 2


def test_an_outcome_code_before_the_index_date_moves_the_index_date_and_stays_out(tiny_history, tmp_path):
    table, _, cohort, history0 = tiny_history
    table = table.copy()
    controls = cohort[(cohort[[f"label_{d}" for d in F.DISEASES]].sum(axis=1) == 0) & (cohort.split == "train")]
    person = controls[controls.row.isin(history0[history0.days_before > 40].row)].sort_values("index_date").iloc[-1]
    earlier = pd.Timestamp(person.index_date) - pd.Timedelta(days=40)
    width = len([c for c in table if c.startswith(f"{F.ICD10_DIAGNOSES}-")])
    table[f"{F.ICD10_DIAGNOSES}-0.{width}"] = None
    table[f"{F.ICD10_DATES}-0.{width}"] = None
    table.loc[int(person.row) - 1, [f"{F.ICD10_DIAGNOSES}-0.{width}", f"{F.ICD10_DATES}-0.{width}"]] = \
        ["H401", earlier.strftime("%Y-%m-%d")]
    table.to_csv(tmp_path / "glaucoma.csv", index=False)
    _, cohort2, history = built(tmp_path / "glaucoma.csv", tmp_path / "w")
    now = cohort2.set_index("row").loc[person.row]
    assert now.label_glaucoma == 1 and pd.Timestamp(now.index_date) == earlier   # a case, indexed at the code
    assert not history.code.str.startswith("H40").any()
    before = history0[(history0.row == person.row) & (history0.days_before > 40)]     # the rest is now on or after
    mine = history[history.row == person.row]
    assert len(mine) == len(before) > 0
    np.testing.assert_array_equal(mine.days_before.to_numpy(), before.days_before.to_numpy() - 40)


def test_an_export_without_hospital_diagnoses_has_no_history_and_an_old_one_is_removed(tiny_history, tmp_path):
    table, _, _, _ = tiny_history
    work = tmp_path / "w"
    table.to_csv(tmp_path / "all.csv", index=False)
    built(tmp_path / "all.csv", work)
    assert (work / "history.parquet").is_file()
    table.drop(columns=[c for c in table if c.startswith(("41270-", "41280-"))]).to_csv(tmp_path / "none.csv", index=False)
    report = build_cohort(cfg_for(tmp_path / "none.csv", work))
    assert report["history"] is None and not (work / "history.parquet").exists()
    with pytest.raises(DataError, match="history.parquet not found.*41270"):
        read_history(work)


def test_the_planted_history_is_in_the_history_and_marks_its_disease(tiny, tiny_history):
    out, _ = tiny
    _, _, cohort, history = tiny_history
    truth = pd.read_csv(os.path.join(out, "truth.csv")).set_index("eid").loc[cohort.eid.astype(int)]
    rows = cohort.row.to_numpy()
    for flag, codes, disease in (("history_common", {"H521"}, "glaucoma"),
                                 ("history_rare", set(RARE["codes"]), "amd")):
        carriers = set(history[history.code.isin(codes)].row)
        np.testing.assert_array_equal(np.isin(rows, list(carriers)), truth[flag].to_numpy())  # all planted, all before
        case = cohort[f"label_{disease}"].to_numpy() == 1
        share_cases, share_others = truth[flag].to_numpy()[case].mean(), truth[flag].to_numpy()[~case].mean()
        assert share_cases > 2.5 * share_others, (flag, share_cases, share_others)   # tiny data: planted 0.2 vs 0.05, 0.25 vs 0.01


def test_the_plant_leaves_every_other_column_as_it_was(tiny, tmp_path, monkeypatch):
    out, _ = tiny
    monkeypatch.setattr(make, "plant_history", lambda people, *a: ([[] for _ in range(people.n)], {}, {}))
    make.make_synthetic(tiny_cfg(), str(tmp_path / "raw"))
    planted, plain = (pd.read_csv(os.path.join(d, "ukb.csv"), dtype=str) for d in (out, tmp_path / "raw"))
    other = [c for c in plain if not c.startswith(("41270-", "41280-"))]
    pd.testing.assert_frame_equal(planted[other], plain[other])
    codes = lambda t: t[[c for c in t if c.startswith("41270-")]].apply(lambda r: [c for c in r if isinstance(c, str)], axis=1)
    extra = {COMMON["code"], *RARE["codes"]}
    assert (codes(planted).apply(lambda cs: [c for c in cs if c not in extra]) == codes(plain)).all()


def small_history():
    return pd.DataFrame({"row": [1, 1, 1, 2, 2, 3, 4, 4],
                         "code": ["E119", "I10", "H311", "E119", "E113", "I10", "E119", "Z864"],
                         "days_before": [400, 30, 5, 100, 50, 7, 10, 2000]})


def test_the_vocabulary_numbers_codes_of_enough_training_people_and_their_categories():
    v = CodeVocabulary.fit(small_history(), train_rows=[1, 2, 3], min_people=2)
    assert v.code_people == {"E119": 2, "I10": 2} and v.category_people == {"E11": 2, "I10": 2}   # people, not records
    assert v.code_ids(["E119", "I10", "E113", "Z864"]).tolist() == [2, 3, OTHER, OTHER]
    assert v.category_ids(["E113", "Z864"]).tolist() == [2, OTHER]       # a rare code keeps its common category
    assert v.sizes == (4, 4)
    described = CodeVocabulary.fit(small_history(), [1, 2, 3], 2, extra_codes=["H311", "H312"])
    assert described.code_ids(["H311", "H312"]).tolist() == [4, 5] and described.sizes == (6, 5)


def test_the_vocabulary_round_trips_and_holds_no_small_counts(tmp_path):
    v = CodeVocabulary.fit(small_history(), [1, 2, 3, 4], min_people=3, extra_codes=["H311"])
    v.save(tmp_path)
    w = CodeVocabulary.load(tmp_path)
    assert w.to_dict() == v.to_dict() and min(w.code_people.values()) >= 3 and "I10" not in w.code_people
    with pytest.raises(DataError, match="history_vocab.json not found"):
        CodeVocabulary.load(tmp_path / "nowhere")


def test_history_arrays_keep_the_most_recent_codes_after_the_gap_and_within_the_look_back():
    v = CodeVocabulary.fit(small_history(), [1, 2, 3, 4], min_people=1)
    a, truncated = history_arrays(small_history(), rows=[2, 1, 5], vocab=v, max_codes=2)
    assert a["days"].tolist() == [[50, 100], [5, 30], [0, 0]] and truncated == 1   # person 1's E119 at 400 left out
    assert a["codes"][1].tolist() == v.code_ids(["H311", "I10"]).tolist() and (a["codes"][2] == 0).all()
    b, _ = history_arrays(small_history(), rows=[1, 4], vocab=v, max_codes=4, gap_days=7, lookback_days=1000)
    assert b["days"].tolist() == [[30, 400, 0, 0], [10, 0, 0, 0]]
    assert a["codes"].dtype == np.int64 and a["days"].dtype == np.float32
