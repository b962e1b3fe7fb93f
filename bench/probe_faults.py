#!/usr/bin/env python
"""Hostile and careless-user inputs against the command-line tools (printed, not asserted).

Each case runs a tool the way a user would, on copies of what ``make demo`` made (the raw data,
the converted work directory, the trained run and its export), and is classified:

- ``refused``: a non-zero exit, no Python traceback, the message names what was wrong (a
  fragment the case expects), and every file the case protects is byte-for-byte unchanged;
- ``crash``: a traceback reached the user;
- ``silent``: the tool exited 0 where it should have refused;
- ``unclear``: refused, but the message does not name the input;
- ``lost``: a protected file changed or disappeared.

Each case has its own test in tests/ (named in the table); this probe checks them end to end
through the tools, as issue #24's probe did. Needs a finished ``make demo`` (``--demo`` is the
checkout or clone it ran in). About 4 minutes on 2 cores.

    python bench/probe_faults.py --demo /path/to/clone/that/ran/make/demo
"""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def digest_tree(path):
    """{relative path: sha256} of a file or every file below a directory."""
    out = {}
    paths = [path] if os.path.isfile(path) else [os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs]
    for p in paths:
        with open(p, "rb") as f:
            out[os.path.relpath(p, os.path.dirname(path))] = hashlib.sha256(f.read()).hexdigest()
    return out


class Probe:
    def __init__(self, demo, tmp):
        self.demo, self.tmp, self.rows = demo, tmp, []
        self.raw = os.path.join(demo, "data", "demo", "raw")
        self.work = os.path.join(demo, "data", "demo", "work")
        self.run_dir = os.path.join(demo, "output", "demo")
        self.export = os.path.join(demo, "inference", "demo")

    def paths(self, raw=None, work=None, table=None):
        """Overrides pointing the demo config at (copies of) the demo's data."""
        return [f"data.era5_raw_dir={raw or os.path.join(self.raw, 'era5')}",
                f"data.ukb_table={table or os.path.join(self.raw, 'ukb.csv')}",
                f"data.work_dir={work or self.work}", f"output_dir={os.path.join(self.tmp, 'runs')}"]

    def case(self, name, argv, expect, protect=(), test=""):
        before = {p: digest_tree(p) for p in protect if os.path.exists(p)}
        t0 = time.time()
        proc = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
        text = proc.stdout + proc.stderr
        lost = [p for p in protect if not os.path.exists(p) or digest_tree(p) != before.get(p)]
        if lost:
            verdict = "lost"
        elif "Traceback (most recent call last)" in text:
            verdict = "crash"
        elif proc.returncode == 0:
            verdict = "silent"
        elif expect.lower() not in text.lower():
            verdict = "unclear"
        else:
            verdict = "refused"
        last = [line for line in text.strip().splitlines() if line.strip()][-1:] or [""]
        self.rows.append((name, verdict, proc.returncode, time.time() - t0, last[0][:160], test))
        print(f"{verdict:<8} {name}  ({time.time() - t0:.0f} s)\n         {last[0][:200]}", flush=True)

    def copy(self, src, name):
        dst = os.path.join(self.tmp, name)
        (shutil.copytree if os.path.isdir(src) else shutil.copy2)(src, dst)
        return dst


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def altered_month(raw_era5, tmp, change):
    """A raw directory of hard links to the demo's months, with 2019-01 rewritten by ``change(ds)``."""
    import xarray as xr

    out = os.path.join(tmp, f"era5_{change.__name__}")
    shutil.copytree(raw_era5, out, copy_function=os.link)
    month = os.path.join(out, "2019", "01", "g00.zip")
    unpacked = os.path.join(tmp, f"unpacked_{change.__name__}")
    with zipfile.ZipFile(month) as z:
        z.extractall(unpacked)
        names = z.namelist()
    os.remove(month)                                   # a hard link: the demo's own file stays as it was
    with zipfile.ZipFile(month, "w") as z:
        for name in names:
            src = os.path.join(unpacked, name)
            with xr.open_dataset(src) as ds:
                ds = change(ds.load())
            fixed = src + ".new.nc"
            ds.to_netcdf(fixed)
            z.write(fixed, name)
    return out


def units_mm(ds):
    for v in ds.data_vars:
        if ds[v].attrs.get("units") == "m":
            ds[v].attrs["units"] = "mm"
    return ds


def infinite(ds):
    v = next(v for v in ds.data_vars if ds[v].ndim >= 3)
    ds[v].values[0, 0, 0] = float("inf")
    return ds


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", default=ROOT, help="the checkout or clone in which make demo ran")
    args = p.parse_args()
    demo = os.path.abspath(args.demo)
    for need in ("data/demo/raw/ukb.csv", "data/demo/work/cohort_imputed.parquet", "output/demo/checkpoints",
                 "inference/demo/infer_cfg.yml"):
        if not os.path.exists(os.path.join(demo, need)):
            sys.exit(f"{os.path.join(demo, need)} is missing: run make demo there first")
    t_all = time.time()
    with tempfile.TemporaryDirectory(prefix="ppeye-probe-") as tmp:
        pr = Probe(demo, tmp)
        cfg = os.path.join(ROOT, "configs", "demo.yaml")
        train = ["tools/train.py", "-c", cfg]
        # --- configs and values
        bad_key = write(os.path.join(tmp, "bad_key.yaml"), f"_BASE_: [{cfg}]\ntrain: {{epoch: 1}}\n")
        pr.case("misspelt key in a config file", ["tools/train.py", "-c", bad_key, "-o", *pr.paths()],
                "train.epoch", test="tests/test_config.py")
        unsafe = write(os.path.join(tmp, "unsafe.yaml"), f"_BASE_: [{cfg}]\nseed: !!python/object/apply:os.getcwd []\n")
        pr.case("a YAML tag that would run code", ["tools/train.py", "-c", unsafe, "-o", *pr.paths()],
                "unsafe.yaml", test="tests/test_config.py")
        pr.case("train.epochs=0", [*train, "-o", *pr.paths(), "train.epochs=0"], "train.epochs",
                test="tests/test_config.py")
        pr.case("a negative learning rate and num_workers", [*train, "-o", *pr.paths(), "optimizer.learning_rate=-1",
                                                             "loader.num_workers=-2"], "learning_rate",
                test="tests/test_config.py")
        pr.case("an impossible date in -o", [*train, "-o", *pr.paths(), "data.end_date=2021-02-30"], "2021-02-30",
                test="tests/test_config.py")
        pr.case("box=[8]", [*train, "-o", *pr.paths(), "data.box=[8]"], "data.box", test="tests/test_config.py")
        pr.case("a key nothing reads (PaddleDetection habit)", [*train, "-o", *pr.paths(), "use_gpu=true"], "use_gpu",
                test="tests/test_config.py")
        # --- UK Biobank tables
        import pandas as pd

        table = pd.read_csv(os.path.join(pr.raw, "ukb.csv"), low_memory=False)
        sys.path.insert(0, ROOT)
        from ppeye.data.ukb import fields

        outcome_fields = {f for ids in fields.FIRST_OCCURRENCE.values() for f in ids} | {fields.ICD10_DIAGNOSES,
                                                                                        fields.ICD10_DATES}
        diag = [c for c in table.columns if c.split("-")[0].lstrip("p").split("_")[0] in map(str, outcome_fields)]
        controls = table.copy()
        controls[diag] = None
        controls_path = os.path.join(tmp, "controls.csv")
        controls.to_csv(controls_path, index=False)
        pr.case("a table of controls only", ["tools/preprocess.py", "-c", cfg, "--stage", "ukb", "-o",
                                             *pr.paths(work=os.path.join(tmp, "w_controls"), table=controls_path)],
                "case", protect=[controls_path], test="tests/test_ukb_cohort.py")
        dmy = table.copy()
        date_cols = [c for c in table.columns if c.startswith("53-")]
        dmy[date_cols] = dmy[date_cols].apply(lambda s: pd.to_datetime(s, errors="coerce").dt.strftime("%d/%m/%Y"))
        dmy_path = os.path.join(tmp, "dmy.csv")
        dmy.to_csv(dmy_path, index=False)
        pr.case("dates written dd/mm/yyyy", ["tools/preprocess.py", "-c", cfg, "--stage", "ukb", "-o",
                                             *pr.paths(work=os.path.join(tmp, "w_dmy"), table=dmy_path)],
                "YYYY-MM-DD", protect=[dmy_path], test="tests/test_ukb_cohort.py")
        # --- ERA5 files
        era5 = os.path.join(pr.raw, "era5")
        for change, expect in ((units_mm, "units"), (infinite, "infinite")):
            raw = altered_month(era5, tmp, change)
            pr.case(f"ERA5 month with {'mm for m' if change is units_mm else 'an inf value'}",
                    ["tools/preprocess.py", "-c", cfg, "--stage", "era5", "--no_progress", "-o",
                     *pr.paths(raw=raw, work=os.path.join(tmp, f"w_{change.__name__}"))],
                    expect, protect=[raw], test="tests/test_era5_convert.py")
        # --- runs, checkpoints, exports
        run_copy = pr.copy(pr.run_dir, "run")
        ckpts = sorted(d for d in os.listdir(os.path.join(run_copy, "checkpoints")) if d.startswith("epoch_"))
        params = os.path.join(run_copy, "checkpoints", ckpts[-1], "model.pdparams")
        with open(params, "r+b") as f:
            f.truncate(os.path.getsize(params) // 2)
        own = os.path.join(pr.run_dir, "config.yaml")       # what a user evaluates and exports a run with
        pr.case("evaluation from a truncated checkpoint", ["tools/eval.py", "-c", own, "-o",
                                                           f"weights={os.path.join(run_copy, 'checkpoints', ckpts[-1])}"],
                "model.pdparams", protect=[run_copy], test="tests/test_trainer.py")
        run_resume = pr.copy(pr.run_dir, "run_resume")
        pr.case("-r with a changed config (more epochs)",
                ["tools/train.py", "-c", os.path.join(run_resume, "config.yaml"), "-r", run_resume, "-o",
                 f"output_dir={tmp}", "run_name=run_resume", "train.epochs=20"], "config", protect=[os.path.join(run_resume, "config.yaml"),
                                                        os.path.join(run_resume, "meta.csv")],
                test="tests/test_trainer.py")
        not_export = pr.copy(pr.run_dir, "not_an_export")
        pr.case("export over a directory that is not an export",
                ["tools/export.py", "-c", own, "-o", f"weights={pr.run_dir}",
                 "--output_dir", not_export], "not a ppeye export", protect=[not_export], test="tests/test_deploy.py")
        scoring = pr.copy(os.path.join(pr.run_dir, "to_score.csv"), "to_score.csv")   # make demo's table to score
        store = os.path.join(pr.work, "era5.zarr")
        pr.case("infer --output equal to --table",
                ["tools/infer.py", "--model_dir", pr.export, "--table", scoring, "--era5", store, "--output", scoring],
                "input table", protect=[scoring], test="tests/test_deploy.py")
        crafted = pr.copy(pr.export, "crafted_export")
        imputer = os.path.join(crafted, "features", "imputer.joblib")
        if os.path.exists(imputer):
            with open(imputer, "ab") as f:
                f.write(b"\x80\x04crafted")
        else:                                            # a bundle without an imputer: alter the weights
            with open(os.path.join(crafted, "model.pdiparams"), "ab") as f:
                f.write(b"crafted")
        pr.case("a bundle with an altered file", ["tools/infer.py", "--model_dir", crafted, "--table", scoring,
                                                  "--era5", store, "--output", os.path.join(tmp, "out.csv")],
                "hash differs", protect=[scoring], test="tests/test_deploy.py")
        pr.case("infer without any weather", ["tools/infer.py", "--model_dir", pr.export, "--table", scoring,
                                              "--output", os.path.join(tmp, "out2.csv")], "era5",
                protect=[scoring], test="tests/test_deploy.py")
    counts = {v: sum(r[1] == v for r in pr.rows) for v in ("refused", "unclear", "silent", "crash", "lost")}
    print(f"\n{len(pr.rows)} cases in {time.time() - t_all:.0f} s: "
          + ", ".join(f"{k} {n}" for k, n in counts.items()))
    print("\n| case | outcome | exit | what the user read | its test |\n|---|---|---|---|---|")
    for name, verdict, code, _, last, test in pr.rows:
        print(f"| {name} | {verdict} | {code} | {last.replace('|', '/')} | {test} |")


if __name__ == "__main__":
    main()
