"""Multiple-answer UK Biobank fields (6150, 6138, 6177/6153, 20107/20110/20111): one indicator column
per answer code, read from every array of the visit, in the cohort and at inference alike."""
import json

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO, PIPE, TINY

import ppeye
from ppeye.core.errors import ConfigError
from ppeye.data.synthetic.make import make_synthetic
from ppeye.data.ukb.centres import resolve_sites
from ppeye.data.ukb.cohort import build_cohort
from ppeye.data.ukb.encoding import encode_features, feature_list
from ppeye.data.ukb.field_lists import load_field_list
from ppeye.data.ukb.impute import impute_cohort
from ppeye.data.ukb.multiple import indicator_entries
from ppeye.deploy.pipeline import FeaturePipeline
from ppeye.deploy.sample import scoring_table

VASCULAR = ((1, "Heart attack"), (2, "Angina"), (3, "Stroke"), (4, "High blood pressure"), (-7, "None of the above"))


def test_every_array_is_read_and_no_answer_unknown_and_text_are_told_apart():
    frame = pd.DataFrame({
        "6150-0.0": ["4", "-7", "-3", None, "2", "x", "3", "-1", "1"],
        "6150-0.1": ["1", None, None, None, "99", None, "-3", None, None],
        "6150-0.2": [None, None, None, None, None, None, None, None, "4"],
    })
    meta = indicator_entries(6150, VASCULAR, (-3,))
    assert [m["column"] for m in meta] == ["f6150_c1", "f6150_c2", "f6150_c3", "f6150_c4"]
    report, rows = {}, {}
    enc = encode_features(frame, meta, report, rows)
    nan = np.nan
    expected = {          # rows: two answers; none of the above; prefer not to answer; empty; an answer and an
        # unknown code (99); text; an answer beside "prefer not to answer"; "do not know"; answers in arrays 0 and 2
        "f6150_c1": [1, 0, nan, nan, 0, nan, nan, nan, 1],
        "f6150_c2": [0, 0, nan, nan, 1, nan, nan, nan, 0],
        "f6150_c3": [0, 0, nan, nan, 0, nan, 1, nan, 0],
        "f6150_c4": [1, 0, nan, nan, 0, nan, nan, nan, 1],
    }
    for column, values in expected.items():
        np.testing.assert_array_equal(enc[column].to_numpy(), np.array(values, np.float32), err_msg=column)
    assert report["unknown_codes"] == {"6150": 1} and report["unreadable_values"] == {"6150": 1}
    assert rows["unknown_code"]["6150"].tolist() == [False] * 4 + [True] + [False] * 4
    assert rows["unreadable"]["6150"].tolist() == [False] * 5 + [True] + [False] * 3
    # a table without the field: every indicator missing, nothing counted as wrong
    absent = encode_features(pd.DataFrame({"31-0.0": ["0", "1"]}), meta, {}, {})
    assert absent.isna().all().all()


def test_ukb_features_reads_a_known_multiple_answer_id_as_one_and_refuses_a_first_answer_kind(tmp_path):
    def features(spec):
        return feature_list(ppeye.load_config(DEMO, TINY + [f"ukb.features={spec}"]))

    (field, kind, _, codes), = features("[6150]")
    assert (field, kind) == (6150, "multiple") and codes["answers"] == VASCULAR and codes["no_answer"] == (-3,)
    with pytest.raises(ConfigError, match="field 6150 is a multiple-answer field; kind 'categorical' would read its "
                                          "first answer only"):
        features("[{field: 6150, kind: categorical}]")
    with pytest.raises(ConfigError, match="field 6154 has kind multiple but no codes"):
        features("[{field: 6154, kind: multiple}]")
    with pytest.raises(ConfigError, match="codes of a multiple-answer field must be a list of integer codes"):
        features("[{field: 6154, kind: multiple, codes: [-7]}]")
    (_, kind, _, codes), = features("[{field: 6154, kind: multiple, codes: [3, 1, 2, -7]}]")
    assert kind == "multiple" and [c for c, _ in codes["answers"]] == [-7, 1, 2, 3]


@pytest.mark.parametrize("style", ["rap", "ukbconv"])
def test_the_v2_list_round_trips_from_a_real_style_export_to_the_cohort_and_to_inference(tmp_path, style):
    """Synthetic data in the export's own naming (``p6150_i0_a3`` or ``6150-0.3``) -> the cohort's
    indicator columns -> the scoring table a user hands to tools/infer.py -> the inference pipeline's
    encoding, which must equal the cohort's for the same people."""
    fields = load_field_list("eye_onset_v2")
    multiple = [f for f in fields if f.kind == "multiple"]
    columns = sum(len([c for c, _ in f.answers if c > 0]) for f in multiple) + len(fields) - len(multiple)
    paths = [f"data.era5_raw_dir={tmp_path}/raw/era5", f"data.ukb_table={tmp_path}/raw/ukb.csv",
             f"data.work_dir={tmp_path}/work"]
    cfg = ppeye.load_config(DEMO, TINY + PIPE + paths + [
        "ukb.features=eye_onset_v2", "synthetic.num_participants=300", f"synthetic.table_style={style}",
        f"synthetic.num_features={len(fields)}", f"data.num_features={columns}"])
    make_synthetic(cfg, str(tmp_path / "raw"))
    raw = pd.read_csv(tmp_path / "raw" / "ukb.csv", dtype=str)
    for f in multiple:
        names = [f"p{f.field}_i0_a{a}" if style == "rap" else f"{f.field}-0.{a}" for a in range(f.arrays)]
        assert [c for c in raw.columns if c.startswith((f"p{f.field}_", f"{f.field}-"))] == names
    assert raw[[f"p6150_i0_a{a}" if style == "rap" else f"6150-0.{a}" for a in (0, 1)]].notna().all(axis=1).any()
    build_cohort(cfg)
    impute_cohort(cfg)
    cohort = pd.read_parquet(tmp_path / "work" / "cohort.parquet")
    saved = json.load(open(tmp_path / "work" / "features" / "ukb_fields.json"))["fields"]
    assert len(saved) == columns == 205
    assert [m["column"] for m in saved if m["field"] == 6177] == ["f6177_c1", "f6177_c2", "f6177_c3"]
    # 6177 is asked of men only, 6153 of women only: a man has no 6153 answer
    men = cohort["f6177_c1"].notna() & cohort["f6153_c1"].isna()
    assert men.sum() > 50 and (cohort["f6177_c2"].notna() & cohort["f6153_c2"].notna()).sum() == 0
    assert 0.15 < cohort["f6150_c4"].mean() < 0.4                        # high blood pressure, rate 0.27

    sites = [{"code": s.code, "name": s.name, "lat": s.lat, "lon": s.lon} for s in resolve_sites(cfg["data"]["sites"])]
    pipe = FeaturePipeline.from_work_dir(str(tmp_path / "work"), sites)
    n = scoring_table(cfg, "test", str(tmp_path / "score.csv"))
    frame, report = pipe.read_table(str(tmp_path / "score.csv"))
    assert report["absent_feature_fields"] == [] and len(pipe.feature_fields) == len(fields)
    encoded = encode_features(frame, pipe.fields, {})
    mine = cohort[cohort["split"] == "test"].reset_index(drop=True)
    assert n == len(mine) and n > 20
    indicator = [m["column"] for m in saved if m.get("multiple")]
    np.testing.assert_array_equal(encoded[indicator].to_numpy(), mine[indicator].to_numpy())


def test_scoring_reads_array_0_of_visit_0_and_every_array_of_visit_0_of_a_multiple_answer_field():
    from ppeye.data.ukb.multiple import scored_column

    fields, multiple = {"21022", "6150"}, {"6150"}
    assert scored_column("21022-0.0", fields, multiple) and not scored_column("21022-1.0", fields, multiple)
    assert not scored_column("21022-0.1", fields, multiple) and not scored_column("4080-0.0", fields, multiple)
    assert all(scored_column(f"6150-0.{a}", fields, multiple) for a in range(4))
    assert not scored_column("6150-1.0", fields, multiple) and not scored_column("eid", fields, multiple)
