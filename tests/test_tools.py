"""The tools/ scripts: PaddleDetection-style flags, clear errors, honest about unbuilt stages."""
import argparse
import importlib
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

import ppeye
from conftest import DEMO, ROOT, TINY, shared

TOOLS = ["download", "preprocess", "train", "eval", "export", "infer", "visualize", "make_synthetic", "demo",
         "compare_imputers", "make_scoring_table", "pretrain_days", "compare", "results", "simulate", "report"]


def run_tool(name, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", f"{name}.py"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", TOOLS)
def test_every_tool_prints_help(name):
    res = run_tool(name, "-h")
    assert res.returncode == 0, res.stderr
    assert "usage:" in res.stdout and "-c" in res.stdout


@pytest.mark.parametrize("name", TOOLS + ["extract", "sweep", "embed_codes"])
def test_every_tool_runs_from_the_package_outside_the_checkout(name, tmp_path):
    """``python -m ppeye.tools.<name>``, from another directory: what a normal install offers
    (tools/<name>.py is a thin entry point onto it)."""
    res = subprocess.run([sys.executable, "-m", f"ppeye.tools.{name}", "-h"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "usage:" in res.stdout
    wrapper = open(os.path.join(ROOT, "tools", f"{name}.py")).read()
    assert f"from ppeye.tools.{name} import main" in wrapper and len(wrapper.splitlines()) <= 8


def test_train_has_the_flags_paddledetection_users_expect():
    out = run_tool("train", "-h").stdout
    for flag in ["--config", "--opt", "--eval", "--resume", "--use_vdl", "--vdl_log_dir", "--fleet", "--output_dir", "--amp"]:
        assert flag in out
    assert "key.path=value" in out  # the override help


def test_boolean_flags_take_no_value_or_the_paddledetection_value():
    from ppeye.core import cli

    parser = cli.make_parser("t")
    cli.add_switch(parser, "--eval", help="x")
    seen = {tuple(argv): parser.parse_args(["-c", "c.yaml", *argv]).eval
            for argv in ([], ["--eval"], ["--eval=True"], ["--eval", "false"], ["--eval=0"])}
    assert seen == {(): None, ("--eval",): True, ("--eval=True",): True, ("--eval", "false"): False, ("--eval=0",): False}
    # `--use_vdl maybe` is refused, never taken for true
    res = run_tool("train", "-c", "configs/demo.yaml", "--use_vdl", "maybe")
    assert res.returncode == 2 and "expected true or false, got 'maybe'" in res.stderr


def test_keys_paddledetection_users_type_get_ppeyes_name_not_an_invitation_to_add_them():
    res = run_tool("train", "-c", "configs/demo.yaml", "-o", "use_gpu=true")
    assert res.returncode == 2 and "ppeye's name for PaddleDetection's 'use_gpu' is device" in res.stderr
    assert "+use_gpu" not in res.stderr
    res = run_tool("train", "-c", "configs/demo.yaml", "-o", "LearningRate.base_lr=0.01")
    assert "is optimizer.learning_rate" in res.stderr
    out = run_tool("train", "-h").stdout               # the help's example is a real key
    assert "model.temporal.afno.enabled=false" in out and "model.afno" not in out


def test_unknown_override_is_a_clear_error_without_traceback():
    res = run_tool("train", "-c", "configs/demo.yaml", "-o", "train.epoch=3")
    assert res.returncode == 2
    assert "unknown config key 'train.epoch'" in res.stderr and "train.epochs" in res.stderr
    assert "Traceback" not in res.stderr


def test_compare_refuses_bad_seed_and_design_flags_before_any_work(tmp_path):
    cases = [(["-c", "configs/demo.yaml", "--seeds", "1,1"], "--seeds takes a number of seeds"),
             (["-c", "configs/demo.yaml", "--seeds", "2", "-o", f"weights={tmp_path}"], "drop -o weights"),
             (["-c", "configs/demo.yaml", "--cv", "centres", "--split", "test"], "drop --split"),
             (["--runs", str(tmp_path), "--seeds", "2", "--output_dir", str(tmp_path / "o")], "--runs compares runs")]
    for args, message in cases:
        res = run_tool("compare", *args)
        assert res.returncode != 0 and message in res.stderr, (args, res.stderr[-500:])
        assert "Traceback" not in res.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow                # the command-line runs end to end: make test-slow
def test_export_and_infer_from_the_command_line(trained, tmp_path):
    root, overrides = trained
    base = ["-c", "configs/demo.yaml", "-o", *overrides]
    res = run_tool("export", *base, f"weights={root}/r", "--output_dir", str(tmp_path / "m"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "m" / "model.json").exists() and (tmp_path / "m" / "infer_cfg.yml").exists()
    res = run_tool("make_scoring_table", *base, "--split", "test", "--out", str(tmp_path / "t.csv"), "--limit", "9")
    assert res.returncode == 0 and "wrote 9 rows" in res.stdout, res.stderr[-3000:]
    work = [o for o in overrides if o.startswith("data.work_dir=")][0].split("=", 1)[1]
    res = run_tool("infer", "--model_dir", str(tmp_path / "m"), "--table", str(tmp_path / "t.csv"), "--era5",
                   os.path.join(work, "era5.zarr"), "--output", str(tmp_path / "r.csv"), "--batch_size", "4")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "scored 9 of 9 rows" in res.stdout
    assert len(open(tmp_path / "r.csv").read().splitlines()) == 10
    # an export made from another config is refused when -c names the config in use
    res = run_tool("infer", "-c", "configs/demo.yaml", "--model_dir", str(tmp_path / "m"), "--table",
                   str(tmp_path / "t.csv"), "--era5", os.path.join(work, "era5.zarr"), "--output", str(tmp_path / "x.csv"))
    assert res.returncode == 2 and "was exported from config 'r'" in res.stderr and "Traceback" not in res.stderr
    res = run_tool("infer", "--model_dir", str(tmp_path), "--table", str(tmp_path / "t.csv"), "--output",
                   str(tmp_path / "x.csv"))
    assert res.returncode == 2 and "not an export directory" in res.stderr


def test_extract_from_the_command_line(trained, tmp_path):
    root, overrides = trained
    base = ["-c", "configs/demo.yaml", "-o", *overrides, f"weights={root}/r"]
    res = run_tool("extract", *base, "--days", "--output", str(tmp_path / "d.zarr"), "--people",
                   "--people_dir", str(tmp_path / "p"), "--splits", "val")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "d.zarr" / "features").exists() and (tmp_path / "p" / "val.npz").exists()
    assert "volumes/s" in res.stdout + res.stderr
    res = run_tool("extract", *base, "--output", str(tmp_path / "d.zarr"))       # no silent overwrite
    assert res.returncode != 0 and "already exists" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow                # the command-line runs end to end: make test-slow
def test_train_and_eval_from_the_command_line_and_their_bad_inputs(tiny_work, tmp_path):
    from test_trainer import SMALL_MODEL
    from conftest import PIPE

    base = ["-c", "configs/demo.yaml", "-o", *TINY, *PIPE, *tiny_work, *SMALL_MODEL, "train.epochs=1",
            "evaluation.bootstrap=20", "retrieval.enabled=false"]
    res = run_tool("train", *base, "--eval", "--output_dir", str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "demo"                                     # run_name defaults to the config's name
    assert (run / "checkpoints" / "best.json").exists() and (run / "metrics.csv").exists()
    res = run_tool("eval", *base, f"weights={run}", "--split", "test")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (run / "eval" / "test_metrics.csv").exists() and not (run / "eval" / "val_metrics.csv").exists()
    # each bad input stops before any work with what is wrong and how to fix it
    bad = {
        "missing data": (["data.work_dir=" + str(tmp_path / "nowhere")], "train", [],
                         "does not exist: run tools/preprocess.py --stage ukb"),
        "other architecture": (["model.width=32", f"weights={run}"], "eval", [],
                               "does not fit this model"),
        "different config": (["train.epochs=1", "optimizer.learning_rate=0.5"], "train",
                             ["-r", str(run), "--output_dir", str(tmp_path)], "was trained with a different config"),
        "empty split": ([f"weights={run}"], "eval", ["--split", "external"], "no participants in split(s) ['external']"),
        "no weights": ([], "eval", [], "no weights to evaluate"),
    }
    for case, (opts, tool, flags, message) in bad.items():
        res = run_tool(tool, *base, *opts, *flags)
        assert res.returncode == 2, (case, res.stderr[-2000:])
        assert message in res.stderr and "Traceback" not in res.stderr, (case, res.stderr[-2000:])


@pytest.mark.slow                # the command-line runs end to end: make test-slow
def test_visualize_from_the_command_line(tiny_work, tmp_path):
    from test_trainer import SMALL_MODEL
    from conftest import PIPE

    base = ["-c", "configs/demo.yaml", "-o", *TINY, *PIPE, *tiny_work, *SMALL_MODEL, "train.epochs=1",
            "retrieval.enabled=false"]
    assert run_tool("train", *base, "--output_dir", str(tmp_path)).returncode == 0
    res = run_tool("visualize", *base, f"weights={tmp_path / 'demo'}", "--what", "attention,afno",
                   "--max_people", "40")
    assert res.returncode == 0, res.stderr[-3000:]
    vis = tmp_path / "demo" / "vis"
    assert (vis / "attention_days.png").exists() and (vis / "afno_modes.csv").exists()
    assert not (vis / "gradcam_spatial.png").exists()
    res = run_tool("visualize", *base, f"weights={tmp_path / 'demo'}", "--what", "gradcam", "--layer", "fc")
    assert res.returncode == 2 and "valid layers: backbone.blocks.0" in res.stderr
    # the lag-response of two runs (here one run twice), pooled
    run = str(tmp_path / "demo")
    res = run_tool("visualize", *base, "explain.lag_response.max_lag=3", "--what", "lag_response", "--runs", run, run,
                   "--output_dir", str(tmp_path / "lag"), "--max_people", "20")
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.load(open(tmp_path / "lag" / "lag_response.json"))["runs"] == 2
    for argv, message in ((["--what", "gradcam", "--runs", run, "--output_dir", str(tmp_path / "x")], "--what lag_response"),
                          (["--what", "lag_response", "--runs", run], "--output_dir")):
        res = run_tool("visualize", *base, *argv)
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "x").exists()


def test_missing_config_file():
    res = run_tool("train", "-c", "configs/nope.yaml")
    assert res.returncode == 2 and "config file not found: configs/nope.yaml" in res.stderr


def test_make_synthetic_refuses_to_overwrite_without_the_flag(tmp_path):
    out = tmp_path / "raw"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    res = run_tool("make_synthetic", "-c", "configs/demo.yaml", "--out", str(out))     # the old name still works
    assert res.returncode == 2 and "--overwrite" in res.stderr
    assert (out / "mine.txt").read_text() == "keep"


def test_preprocess_era5_stage_end_to_end(tiny, tmp_path):
    out, _ = tiny
    args = ["-c", "configs/demo.yaml", "--stage", "era5", "-o", *TINY,
            f"data.era5_raw_dir={out}/era5", f"data.work_dir={tmp_path}", "data.norm_period=[2019-01-01, 2019-03-31]"]
    res = run_tool("preprocess", *args)
    assert res.returncode == 0, res.stderr
    assert "6 months converted" in res.stdout and (tmp_path / "era5.zarr").is_dir()
    again = run_tool("preprocess", *args)
    assert "0 months converted, 6 unchanged" in again.stdout
    missing = run_tool("preprocess", "-c", "configs/demo.yaml", "--stage", "era5", "-o", f"data.era5_raw_dir={tmp_path}/nope")
    assert missing.returncode == 2 and "nope does not exist" in missing.stderr


def test_compare_imputers_writes_csv_and_plot(tiny, tmp_path):
    pbc = shared("tabular", "pbc.csv")      # the tool scores the tables given beside the cohort
    out, _ = tiny
    base = ["-c", "configs/demo.yaml", "-o", *TINY, f"data.ukb_table={out}/ukb.csv", f"data.work_dir={tmp_path}/w"]
    assert run_tool("preprocess", *base, "--stage", "ukb").returncode == 0
    res = run_tool("compare_imputers", *base, "--methods", "mean,mice", "--max_rows", "300",
                   "--output_dir", str(tmp_path / "cmp"), "--table", f"{pbc}:rownames,id")
    assert res.returncode == 0, res.stderr
    table = (tmp_path / "cmp" / "imputation_comparison.csv").read_text()
    assert "cohort,random,mice" in table and "pbc,block,mean" in table
    assert (tmp_path / "cmp" / "imputation_comparison.png").stat().st_size > 1000
    assert "mean rank" in res.stdout
    bad = run_tool("compare_imputers", *base, "--methods", "mean", "--output_dir", str(tmp_path / "cmp2"),
                   "--table", f"{pbc}:rownames,patient")
    assert bad.returncode != 0 and "no column(s) ['patient'] to leave out" in bad.stderr


def test_download_dry_run_prints_the_plan_and_needs_no_credentials(tmp_path):
    res = run_tool("download", "-c", "configs/full.yaml", "--dry-run")
    assert res.returncode == 0 and "924 requests to reanalysis-era5-land" in res.stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDSAPI")}
    env["HOME"] = str(tmp_path)
    res = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "download.py"), "-c", "configs/demo.yaml",
                          "-o", f"data.era5_raw_dir={tmp_path}/raw"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert res.returncode == 2 and "no CDS credentials" in res.stderr


def test_preprocess_era5_on_a_dask_distributed_cluster(tiny, tmp_path):
    from dask.distributed import LocalCluster

    out, _ = tiny
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        res = run_tool("preprocess", "-c", "configs/demo.yaml", "--stage", "era5", "-o", *TINY,
                       f"data.era5_raw_dir={out}/era5", f"data.work_dir={tmp_path}", "data.end_date=2019-03-31",
                       "data.norm_period=[2019-01-01, 2019-03-31]", "data.convert_workers=2",
                       f"data.dask_scheduler={cluster.scheduler_address}")
        assert res.returncode == 0, res.stderr
        assert "3 months converted" in res.stdout
        assert "convert_month" in cluster.scheduler.task_prefixes  # the months ran on the cluster's workers


EXAMPLE = re.compile(r"^\s+(?:python tools/(\w+)\.py|python -m ppeye\.tools\.(\w+)|fleetrun .*?tools/(\w+)\.py)(.*)$")


def help_examples():
    """Every example command in every tool's help (its docstring), as (tool, argv)."""
    out = []
    for name in sorted(os.listdir(os.path.join(ROOT, "ppeye", "tools"))):
        if name.endswith(".py") and name != "__init__.py":
            for line in open(os.path.join(ROOT, "ppeye", "tools", name)).read().split('"""')[1].splitlines():
                m = EXAMPLE.match(line)
                if m:
                    tool = next(g for g in m.groups()[:3] if g)
                    out.append((tool, shlex.split(m.group(4).split("  #")[0])))
    return out


class Parsed(Exception):
    pass


@pytest.mark.parametrize("tool, argv", help_examples(), ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_every_example_in_every_help_parses_and_names_real_config_keys(tool, argv, monkeypatch):
    """The examples a user copies from -h: accepted by the tool's own parser, and every -o key is
    one the named config has (checked by loading it when the config file exists)."""
    module = importlib.import_module(f"ppeye.tools.{tool}")
    original = argparse.ArgumentParser.parse_args

    def parse_only(self, args=None, namespace=None):
        raise Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_only)
    monkeypatch.setattr(sys, "argv", [f"{tool}.py", *argv])
    with pytest.raises(Parsed) as parsed:
        module.main()
    args = parsed.value.args[0]
    config, overrides = getattr(args, "config", None), getattr(args, "opt", None)
    if config and os.path.isfile(os.path.join(ROOT, config)):
        monkeypatch.setattr(argparse.ArgumentParser, "parse_args", original)
        ppeye.load_config(os.path.join(ROOT, config), overrides or [])


def test_the_examples_are_found_and_the_override_help_names_real_keys():
    assert len(help_examples()) >= 30
    from ppeye.core.cli import OVERRIDE_HELP

    keys = re.findall(r"(?<=[ =])([a-z_]+(?:\.[a-z_]+)+)=", OVERRIDE_HELP)
    assert "model.temporal.afno.enabled" in keys
    ppeye.load_config(DEMO, [f"{k}={v}" for k, v in re.findall(r"(?<![+\w.])([a-z_]+(?:\.[a-z_]+)+)=(\S+)",
                                                                OVERRIDE_HELP) if not k.startswith("key.")])


def test_export_model_is_paddledetections_name_for_export():
    a, b = run_tool("export", "-h").stdout, run_tool("export_model", "-h").stdout
    same = lambda text: " ".join(text.replace("export_model.py", "X").replace("export.py", "X").split())  # noqa: E731
    assert same(a) == same(b)
    assert "--output_dir" in b and "--quantize" in b
