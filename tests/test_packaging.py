"""Packaging: ranges in setup.py, exact pins in requirements.txt that satisfy them, Paddle and the
heavy or optional packages behind extras, and a clear error naming the extra when one is missing."""
import ast
import os
import re
import sys

import pytest
from packaging.requirements import Requirement

from ppeye.core.errors import ConfigError
from ppeye.core.optional import OPTIONAL, require

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def setup_lists():
    """INSTALL_REQUIRES and EXTRAS as setup.py writes them (read, not run)."""
    tree = ast.parse(open(os.path.join(ROOT, "setup.py")).read())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("INSTALL_REQUIRES", "EXTRAS"):
                found[node.targets[0].id] = ast.literal_eval(node.value)
    return found["INSTALL_REQUIRES"], found["EXTRAS"]


def name(req):
    return re.sub(r"[-_.]+", "-", Requirement(req).name).lower()


def test_setup_gives_ranges_and_keeps_paddle_and_the_optional_packages_out_of_the_core():
    core, extras = setup_lists()
    for req in core + [r for reqs in extras.values() for r in reqs]:
        assert "==" not in req, f"{req}: setup.py gives ranges; exact pins live in requirements.txt"
    core_names = {name(r) for r in core}
    assert not {"paddlepaddle", "paddlepaddle-gpu"} & core_names      # a GPU user's build is never replaced
    assert not {"faiss-cpu", "visualdl", "cdsapi", "cfgrib", "eccodes", "xgboost-cpu"} & core_names
    assert {extra for extra, _ in OPTIONAL.values()} <= set(extras)  # every optional import names a real extra


def test_every_pin_of_requirements_txt_is_declared_and_inside_its_range():
    core, extras = setup_lists()
    declared = {name(r): Requirement(r) for r in core + [r for reqs in extras.values() for r in reqs]}
    pins = [line.split("#")[0].strip() for line in open(os.path.join(ROOT, "requirements.txt"))]
    pins = [Requirement(p) for p in pins if p]
    assert len(pins) > 20
    for pin in pins:
        key = re.sub(r"[-_.]+", "-", pin.name).lower()
        assert key in declared, f"requirements.txt pins {pin.name}, which setup.py does not declare"
        (version,) = [s.version for s in pin.specifier]
        assert declared[key].specifier.contains(version, prereleases=True), \
            f"{pin.name}=={version} (requirements.txt) is outside setup.py's {declared[key]}"


def test_a_missing_optional_package_names_the_extra_that_installs_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)          # import faiss now raises ImportError
    with pytest.raises(ConfigError, match=r"retrieval-augmented inference .* needs the faiss package.*"
                                          r"pip install 'ppeye\[retrieval\]'"):
        require("faiss")


def test_without_paddle_the_error_says_how_to_install_it():
    import subprocess

    code = ("import sys; sys.modules['paddle'] = None\n"
            "from ppeye.core.paddle_env import import_paddle\n"
            "from ppeye.core.errors import ConfigError\n"
            "try:\n    import_paddle()\nexcept ConfigError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert "PaddlePaddle is not installed" in out.stdout and "ppeye[cpu]" in out.stdout, out.stderr[-2000:]
    assert "paddlepaddle.org.cn/packages/stable" in out.stdout


def test_every_tool_is_a_console_command_and_the_installed_one_runs(tmp_path):
    """``ppeye-<tool>`` for every module of ppeye/tools (setup.py's TOOLS), installed by ``make``
    (pip install -e .) beside the interpreter, and answering -h from any directory."""
    import subprocess

    tree = ast.parse(open(os.path.join(ROOT, "setup.py")).read())
    tools = next(ast.literal_eval(n.value) for n in tree.body
                 if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "TOOLS")
    modules = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "ppeye", "tools"))
                     if f.endswith(".py") and f != "__init__.py")
    assert sorted(tools) == modules
    command = os.path.join(os.path.dirname(sys.executable), "ppeye-pretrain-days")
    assert os.path.isfile(command), f"{command} missing: reinstall the package (pip install -e .)"
    res = subprocess.run([command, "-h"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "usage:" in res.stdout, res.stderr


def test_a_wheel_ships_the_configs_and_an_install_reads_them_from_any_directory(tmp_path):
    """A plain wheel (built from a copy of the sources, so the checkout gets no build/ directory)
    holds every config with its _BASE_ pieces; installed elsewhere, ``-c configs/demo.yaml`` from
    a directory without configs reads the shipped copy (and logs it), equal to the checkout's."""
    import shutil
    import subprocess
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "README.md", "MANIFEST.in", "requirements.txt", "requirements-dev.txt"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    shutil.copytree(os.path.join(ROOT, "ppeye"), src / "ppeye", ignore=shutil.ignore_patterns("__pycache__"))
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                          str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").iterdir()
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {os.path.join("ppeye", "configs", f) for f in _shipped()}
    assert shipped <= names and "ppeye/configs/_base_/model/onset_net.yaml" in names
    assert {f"ppeye/data/ukb/field_lists/eye_onset_v{v}.csv" for v in (1, 2)} <= names   # ukb.features
    site = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import json, ppeye; cfg = ppeye.load_config('configs/demo.yaml', ['train.epochs=3']); "
            "print(ppeye.__file__); print(json.dumps(cfg.to_dict(), sort_keys=True, default=str))")
    res = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(site)})
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    assert lines[-2].startswith(str(site))                                   # the installed copy, not the checkout
    assert "reading the copy shipped with ppeye" in res.stdout + res.stderr
    import json

    import ppeye

    expected = ppeye.load_config(os.path.join(ROOT, "configs", "demo.yaml"), ["train.epochs=3"]).to_dict()
    assert json.loads(lines[-1]) == json.loads(json.dumps(expected, sort_keys=True, default=str))


def _shipped():
    from ppeye.tools.configs import shipped_files

    return shipped_files()


def test_configs_are_found_from_anywhere_copied_without_overwriting_and_a_wrong_name_lists_them(tmp_path, monkeypatch):
    import ppeye
    from ppeye.tools.configs import copy_to

    assert os.path.realpath(os.path.join(ROOT, "configs")) == os.path.realpath(os.path.join(ROOT, "ppeye", "configs"))
    monkeypatch.chdir(tmp_path)
    a = ppeye.load_config("configs/full.yaml")
    assert a == ppeye.load_config("full.yaml") == ppeye.load_config(os.path.join(ROOT, "configs", "full.yaml"))
    with pytest.raises(ConfigError, match=r"config file not found: configs/nope.yaml .*configs/demo.yaml.*--copy"):
        ppeye.load_config("configs/nope.yaml")
    with pytest.raises(ConfigError, match="config file not found"):
        ppeye.load_config("../configs/demo.yaml")                          # only plain names reach the shipped ones
    target, files = copy_to(str(tmp_path))
    assert sorted(files) == _shipped() and len(files) >= 9
    mine = tmp_path / "configs" / "demo.yaml"
    mine.write_text(mine.read_text().replace("epochs: 8", "epochs: 5"))
    assert ppeye.load_config("configs/demo.yaml")["train"]["epochs"] == 5     # a file where you run wins
    with pytest.raises(SystemExit, match="exist already"):
        copy_to(str(tmp_path))
    assert "epochs: 5" in mine.read_text()                                  # nothing overwritten
