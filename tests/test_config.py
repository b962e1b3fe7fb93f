"""The config system: _BASE_ inheritance, merging, -o overrides, saving."""
import datetime

import pytest
import yaml

import ppeye
from ppeye.core.config import Config, ConfigError, load_config, merge, save_config


@pytest.fixture
def tree(write_yaml):
    write_yaml("base/runtime.yaml", "seed: 1\noutput_dir: out\nname: run\n")
    write_yaml("base/model.yaml", "model:\n  width: 64\n  depth: 18\n  dropout: 0.1\n  layers: [1, 2]\n  moe: {enabled: true, top_k: 2}\n")
    write_yaml("base/wide.yaml", "_BASE_: [model.yaml]\nmodel:\n  width: 128\n")
    return write_yaml("leaf.yaml", "_BASE_: [base/runtime.yaml, base/wide.yaml]\nmodel:\n  layers: [7]\nseed: 3\n")


def test_bases_are_relative_to_the_including_file_and_merge_recursively(tree):
    cfg = load_config(tree)
    assert cfg.model.width == 128  # base/wide.yaml wins over its own base
    assert cfg.model.depth == 18  # sibling keys of an overridden key survive
    assert cfg.seed == 3  # the leaf wins over all bases
    assert cfg.output_dir == "out"
    assert "_BASE_" not in cfg


def test_lists_replace_whole(tree):
    assert load_config(tree).model.layers == [7]


def test_later_bases_win_over_earlier_ones(write_yaml):
    write_yaml("a.yaml", "x: 1\ny: {p: 1, q: 1}\n")
    write_yaml("b.yaml", "x: 2\ny: {q: 2}\n")
    cfg = load_config(write_yaml("c.yaml", "_BASE_: [a.yaml, b.yaml]\n"))
    assert cfg.x == 2 and cfg.y == {"p": 1, "q": 2}


def test_base_cycle_is_an_error(write_yaml):
    write_yaml("a.yaml", "_BASE_: [b.yaml]\n")
    write_yaml("b.yaml", "_BASE_: [a.yaml]\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(write_yaml("c.yaml", "_BASE_: [a.yaml]\n"))


def test_missing_base_names_the_including_file(write_yaml):
    path = write_yaml("c.yaml", "_BASE_: [nope.yaml]\n")
    with pytest.raises(ConfigError, match=r"c\.yaml.*nope\.yaml"):
        load_config(path)


def test_missing_file_and_bad_yaml_are_clear(write_yaml, tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "absent.yaml"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write_yaml("bad.yaml", "a: [1, 2\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write_yaml("list.yaml", "- 1\n- 2\n"))


def test_yaml_is_loaded_safely(write_yaml):
    path = write_yaml("evil.yaml", "x: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_overrides_parse_yaml_values_at_any_depth(tree):
    cfg = load_config(tree, ["model.moe.top_k=1", "model.layers=[3, 4]", "model.dropout=0", "model.moe.enabled=false"])
    assert cfg.model.moe.top_k == 1
    assert cfg.model.layers == [3, 4]
    assert cfg.model.dropout == 0.0 and isinstance(cfg.model.dropout, float)  # a float key accepts an int
    assert cfg.model.moe.enabled is False


def test_every_repeated_o_group_applies_in_order(tree):
    # argparse with action=append, nargs=+ gives a list of groups
    cfg = load_config(tree, [["seed=5", "model.width=1"], ["model.width=2"]])
    assert cfg.seed == 5 and cfg.model.width == 2


def test_unknown_key_fails_and_suggests_the_nearest(tree):
    with pytest.raises(ConfigError) as e:
        load_config(tree, ["model.widht=3"])
    assert "model.widht" in str(e.value) and "model.width" in str(e.value)
    with pytest.raises(ConfigError, match="model.moe.top_k"):
        load_config(tree, ["top_k=1"])  # a same-named key elsewhere is suggested


def test_plus_adds_a_new_key_on_purpose(tree):
    cfg = load_config(tree, ["+model.note=baseline", "+extra.deep.key=1"])
    assert cfg.model.note == "baseline" and cfg.extra.deep.key == 1


@pytest.mark.parametrize(
    "override, expected",
    [("seed=abc", "expects int"), ("seed=1.5", "expects int"), ("model.moe.enabled=3", "expects bool"),
     ("model.layers=3", "expects list"), ("model=3", "expects dict"), ("model.dropout=[1]", "expects float")],
)
def test_type_mismatch_is_an_error_naming_key_and_types(tree, override, expected):
    with pytest.raises(ConfigError, match=expected) as e:
        load_config(tree, [override])
    assert override.split("=")[0] in str(e.value)


def test_a_string_key_keeps_what_was_typed(tree):
    assert load_config(tree, ["name=007"]).name == "007"
    assert load_config(tree, ["name=yes"]).name == "yes"


def test_null_is_always_allowed_by_type(tree):
    assert load_config(tree, ["model.depth=null"]).model.depth is None


def test_values_are_checked_at_load_naming_every_bad_key():
    import os

    demo = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "demo.yaml")
    with pytest.raises(ConfigError, match=r"train\.epochs must be an integer >= 1, got 0; "
                                          r"optimizer\.learning_rate must be a number > 0, got -0\.1; "
                                          r"loader\.num_workers must be an integer >= 0, got -1"):
        load_config(demo, ["train.epochs=0", "optimizer.learning_rate=-0.1", "loader.num_workers=-1"])
    for bad in ("loader.batch_size=0", "train.epochs=null", "evaluation.ci_level=1.0", "data.window_days=0",
                "data.box=[8]", "data.box=[8, 0]", "data.box=[8, 8, 8]"):
        with pytest.raises(ConfigError, match=bad.split("=")[0].replace(".", "\\.") + " must be"):
            load_config(demo, [bad])
    assert load_config(demo, ["train.epochs=1", "log_iter=0"]).train.epochs == 1
    for bad, message in (("data.start_date=2019-13-01", "is not a valid value \\(month must be in 1..12\\)"),
                         ("data.start_date=01/01/2019", "data.start_date must be a date YYYY-MM-DD"),
                         ("data.end_date=2018-06-30", "must come before data.end_date 2018-06-30"),
                         ("data.norm_period=[2022-01-01, 2022-12-31]", "data.norm_period must be .* overlapping")):
        with pytest.raises(ConfigError, match=message):
            load_config(demo, [bad])
    assert load_config(demo, ["data.end_date=2019-06-30"]).data.end_date == "2019-06-30"   # norm period overlaps


def test_a_dict_override_merges_and_checks_its_keys(tree):
    cfg = load_config(tree, ["model.moe={top_k: 1}"])
    assert cfg.model.moe == {"enabled": True, "top_k": 1}  # the sibling key survives
    with pytest.raises(ConfigError, match="has no key 'topk'"):
        load_config(tree, ["model.moe={topk: 1}"])


def test_malformed_overrides(tree):
    for bad in ["seed", "=3", "model..width=3"]:
        with pytest.raises(ConfigError):
            load_config(tree, [bad])
    with pytest.raises(ConfigError, match="not a section"):
        load_config(tree, ["seed.x=1"])


def test_dates_accept_iso_strings(write_yaml):
    path = write_yaml("d.yaml", "start: 2019-01-01\n")
    cfg = load_config(path, ["start=2020-02-03"])
    assert cfg.start == datetime.date(2020, 2, 3)
    with pytest.raises(ConfigError, match="start"):
        load_config(path, ["start=March"])


def test_each_load_returns_a_fresh_object(tree):
    a = load_config(tree)
    a.model.width = 1
    assert load_config(tree).model.width == 128


def test_saved_config_reloads_equal(tree, tmp_path):
    cfg = load_config(tree, ["+model.note=x"])
    path = tmp_path / "run" / "config.yaml"
    save_config(cfg, path)
    assert load_config(path) == cfg
    assert yaml.safe_load(path.read_text())["model"]["note"] == "x"


def test_config_reads_like_a_dict_and_attributes():
    cfg = Config({"a": {"b": [{"c": 1}]}})
    assert cfg.a.b[0].c == 1 and cfg["a"]["b"][0]["c"] == 1
    assert cfg.get_path("a.b") == [{"c": 1}] and cfg.get_path("a.x", 5) == 5
    with pytest.raises(AttributeError, match="no key 'z'"):
        cfg.z
    assert merge({"a": {"x": 1}}, {"a": {"y": 2}}) == {"a": {"x": 1, "y": 2}}


def test_public_load_config_is_the_same_function(tree):
    assert ppeye.load_config(tree, ["seed=9"]).seed == 9


def test_an_unknown_key_in_a_config_file_is_refused_with_the_nearest_keys(write_yaml):
    import os

    demo = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "demo.yaml")
    leaf = write_yaml("leaf.yaml", f"_BASE_: [{demo}]\ntrain: {{epoch: 1}}\n")
    with pytest.raises(ConfigError, match=r"leaf\.yaml: unknown config key 'train\.epoch'.*Did you mean: train\.epochs"):
        load_config(leaf)
    with pytest.raises(ConfigError, match="unknown config key 'trian'"):
        load_config(write_yaml("top.yaml", f"_BASE_: [{demo}]\ntrian: {{epochs: 1}}\n"))
    # + adds a key on purpose, at any depth; known keys pass as before
    cfg = load_config(write_yaml("ok.yaml", f"_BASE_: [{demo}]\ntrain:\n  epochs: 1\n  +my_note: 2\n+extra: {{a: 1}}\n"))
    assert cfg.train.epochs == 1 and cfg.train.my_note == 2 and cfg.extra == {"a": 1}


def test_pieces_under_a_base_directory_define_keys_freely(write_yaml):
    write_yaml("_base_/runtime.yaml", "seed: 1\n")
    write_yaml("_base_/model.yaml", "_BASE_: [runtime.yaml]\nmodel: {width: 8}\n")   # adds a section
    cfg = load_config(write_yaml("leaf.yaml", "_BASE_: [_base_/model.yaml]\nmodel: {width: 16}\n"))
    assert cfg.model.width == 16 and cfg.seed == 1
