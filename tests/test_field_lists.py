"""Versioned lists of real UK Biobank fields (``ukb.features: <name>``, ppeye/data/ukb/field_lists)."""
import json
import os

import pandas as pd
import pytest
from conftest import DEMO, PIPE, TINY

import ppeye
from ppeye.core.errors import ConfigError
from ppeye.data.synthetic import cohort as synthetic_cohort
from ppeye.data.synthetic.make import make_synthetic
from ppeye.data.ukb import field_lists
from ppeye.data.ukb.cohort import build_cohort
from ppeye.data.ukb.field_lists import load_field_list
from ppeye.data.ukb.fields import KNOWN_FIELDS

LIST = "eye_onset_v1"


def test_the_list_holds_real_single_answer_fields_with_their_showcase_categories():
    fields = load_field_list(LIST)
    ids = [f.field for f in fields]
    assert len(ids) == 148 and len(set(ids)) == 148
    assert max(ids) < synthetic_cohort.FILLER_BASE                 # no synthetic filler ids
    assert all(f.category > 0 and f.category_name and f.why for f in fields)
    # every single-answer field ppeye knew is in; multiple-answer fields (one indicator per code
    # would be needed) and self-reported eye disorders (the outcome itself) are not
    multi = {6150, 6138}
    assert {f.field for f in KNOWN_FIELDS} - set(ids) == multi
    assert not {6148, 6119, 4689, 4700, 5901, 6177, 6153, 20107, 20110, 20111, 20002} & set(ids)
    by_id = {f.field: f for f in fields}
    # spot checks against the showcase: category ids and kinds
    assert (by_id[30750].category, by_id[30750].kind) == (17518, "continuous")        # HbA1c, blood biochemistry
    assert (by_id[5264].category, by_id[5264].block) == (100015, "eye")                # corneal hysteresis, IOP
    assert (by_id[24006].category, by_id[24006].name) == (114, "Particulate matter air pollution (pm2.5); 2010")
    assert by_id[2277].less_than_one and by_id[2277].codes == (-1, -3)
    assert all(f.synthetic == "curated" for f in fields if f.field in {k.field for k in KNOWN_FIELDS})
    assert synthetic_cohort.SIGNAL_FIELDS and set(synthetic_cohort.SIGNAL_FIELDS) <= set(ids)


def test_v2_adds_the_multiple_answer_fields_with_their_codings_arrays_and_categories():
    v1, v2 = load_field_list(LIST), load_field_list("eye_onset_v2")
    assert v2[:len(v1)] == v1 and len(v2) == 155                       # a new version; v1 stays as it was
    added = {f.field: f for f in v2[len(v1):]}
    assert all(f.kind == "multiple" for f in added.values())
    # showcase category, data-coding, arrays at the recruitment visit (MRC IEU PHESANT's field table)
    assert {k: (f.category, f.coding, f.arrays) for k, f in added.items()} == {
        6150: (100044, 100605, 4), 6138: (100063, 100305, 6), 6177: (100045, 100625, 3), 6153: (100045, 100626, 4),
        20107: (100034, 1010, 10), 20110: (100034, 1010, 11), 20111: (100034, 1010, 12)}
    assert added[6150].answers[-1] == (-7, "None of the above") and added[6150].codes == (-3,)
    assert [c for c, _ in added[20107].answers if c > 0] == [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14]
    assert added[20107].codes == (-11, -13, -21, -23)                  # do not know / prefer not, groups 1 and 2
    indicators = sum(len([c for c, _ in f.answers if c > 0]) for f in added.values())
    assert len(v1) + indicators == 205                                 # the model's columns (configs/full.yaml)
    assert all(f.arrays == 1 and not f.answers for f in v1)


def test_a_bad_list_or_name_is_refused_with_file_line_and_field(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"no field list named 'eye_onset_v9'; the lists are eye_onset_v1, "
                                          r"eye_onset_v2"):
        load_field_list("eye_onset_v9")
    rows = open(os.path.join(field_lists.HERE, f"{LIST}.csv")).read().splitlines()
    bad = [rows[0], rows[1], rows[2].replace(",integer,", ",count,", 1)]
    (tmp_path / "bad.csv").write_text("\n".join(bad) + "\n")
    (tmp_path / "twice.csv").write_text("\n".join([rows[0], rows[1], rows[1]]) + "\n")
    (tmp_path / "arrays.csv").write_text("\n".join([rows[0], rows[1].replace(",0,curated,", ",1,curated,")]) + "\n")
    multi = open(os.path.join(field_lists.HERE, "eye_onset_v2.csv")).read().splitlines()[-7]   # 6150
    (tmp_path / "multi.csv").write_text("\n".join([rows[0], multi.replace(",0-3,", ",0,")]) + "\n")
    (tmp_path / "codes.csv").write_text("\n".join([rows[0], multi.replace("|2:Angina|", "|2 Angina|")]) + "\n")
    monkeypatch.setattr(field_lists, "HERE", str(tmp_path))
    with pytest.raises(ConfigError, match=r"bad.csv, line 3 \(field '34'\): kind 'count' is not one of continuous"):
        load_field_list("bad")
    with pytest.raises(ConfigError, match="twice.csv: a field is listed twice"):
        load_field_list("twice")
    with pytest.raises(ConfigError, match=r"arrays.csv, line 2 \(field '31'\): arrays '1': a field that is not "
                                          r"multiple reads array 0 only"):
        load_field_list("arrays")
    with pytest.raises(ConfigError, match=r"multi.csv, line 2 \(field '6150'\): arrays '0': a multiple-answer field "
                                          r"reads arrays 0-N"):
        load_field_list("multi")
    with pytest.raises(ConfigError, match=r"codes.csv, line 2 \(field '6150'\): codes: '2 Angina' is not code:meaning"):
        load_field_list("codes")


@pytest.mark.parametrize("style", ["ukbconv", "rap"])
def test_synthetic_data_and_the_cohort_follow_the_named_list(tmp_path, style):
    """The generator writes a column for every listed id (and no filler), in ukbconv (``30750-0.0``)
    or Research Analysis Platform naming (``p30750_i0``, ``p31``), the cohort builder encodes them
    in the list's order with the list's kinds, and a size that disagrees with the list is refused
    before anything is written."""
    fields = load_field_list(LIST)
    paths = [f"data.era5_raw_dir={tmp_path}/raw/era5", f"data.ukb_table={tmp_path}/raw/ukb.csv",
             f"data.work_dir={tmp_path}/work"]
    overrides = TINY + PIPE + paths + ["ukb.features=eye_onset_v1", "synthetic.num_participants=300",
                                       f"synthetic.table_style={style}"]
    with pytest.raises(ConfigError, match=r"synthetic.num_features is 20 but the field list eye_onset_v1 "
                                          r"\(ukb.features\) has 148 fields"):
        make_synthetic(ppeye.load_config(DEMO, overrides), str(tmp_path / "raw"))
    assert not (tmp_path / "raw").exists()
    cfg = ppeye.load_config(DEMO, overrides + ["synthetic.num_features=148", "data.num_features=148"])
    make_synthetic(cfg, str(tmp_path / "raw"))
    raw = pd.read_csv(tmp_path / "raw" / "ukb.csv")

    def name(f):
        if style == "ukbconv":
            return f"{f.field}-0.0"
        return f"p{f.field}_i0" if f.instanced else f"p{f.field}"

    assert all(name(f) in raw.columns for f in fields)
    ids = [int(c.split("-")[0]) if style == "ukbconv" else int(c[1:].split("_")[0]) for c in raw.columns if c != "eid"]
    assert max(ids) < synthetic_cohort.FILLER_BASE
    pm25 = raw[name(next(f for f in fields if f.field == 24006))].dropna()     # "normal 10.0 1.06 6 20"
    assert 6 <= pm25.min() and pm25.max() <= 20 and abs(pm25.mean() - 10.0) < 0.3
    # solarium use: "values 0:80 -10:5 ...": never (0) and less than once a year (-10) stay apart
    solarium = raw[name(next(f for f in fields if f.field == 2277))].value_counts()
    assert solarium[0] > 150 and 0 < solarium[-10] < 40
    build_cohort(cfg)
    cohort = pd.read_parquet(tmp_path / "work" / "cohort.parquet")
    assert [c for c in cohort.columns if c.startswith("f") and c[1:].isdigit()] == [f"f{f.field}" for f in fields]
    saved = json.load(open(tmp_path / "work" / "features" / "ukb_fields.json"))["fields"]
    assert [(e["field"], e["kind"]) for e in saved] == [(f.field, f.kind) for f in fields]
    assert {0.0, 0.5} <= set(cohort["f2277"].dropna())                       # -10 read as 0.5, 0 as 0
