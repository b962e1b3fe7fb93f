"""Atomic writes: no half-written output, previous outputs kept on failure."""
import os
import stat

import pytest

from ppeye.core.io import atomic_directory, atomic_write, umask


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write("new, half")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]  # no temporary left behind
    with atomic_write(path) as f:
        f.write("new")
    assert path.read_text() == "new"


def test_atomic_directory_refuses_to_clobber(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        with atomic_directory(out):
            pass
    assert (out / "keep.txt").read_text() == "x"


def test_atomic_directory_keeps_the_old_one_when_the_new_one_fails(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ValueError):
        with atomic_directory(out, overwrite=True) as tmp:
            open(os.path.join(tmp, "half.txt"), "w").write("y")
            raise ValueError("interrupted")
    assert os.listdir(out) == ["keep.txt"]
    assert sorted(os.listdir(tmp_path)) == ["out"]
    with atomic_directory(out, overwrite=True) as tmp:
        open(os.path.join(tmp, "new.txt"), "w").write("z")
    assert os.listdir(out) == ["new.txt"]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_write_csv_and_save_npz_round_trip_without_leftovers(tmp_path):
    import numpy as np

    from ppeye.core.io import save_npz, write_csv

    write_csv(str(tmp_path / "a.csv"), [{"x": 1, "y": "b"}], ["x", "y"])
    assert (tmp_path / "a.csv").read_text() == "x,y\n1,b\n"
    save_npz(str(tmp_path / "a.npz"), True, v=np.arange(3))
    assert np.load(tmp_path / "a.npz")["v"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.npz"]


def test_temporaries_of_killed_writes_are_cleaned_and_no_one_elses(tmp_path):
    import subprocess
    import sys

    from ppeye.core.io import _host_tag, atomic_directory, tmp_prefix

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()                                                     # a process that has exited
    dead = tmp_path / f".ppeye-tmp-{p.pid}.{_host_tag()}.abc123-epoch_0003"
    dead.mkdir()
    (dead / "model.pdparams").write_bytes(b"half")
    dead_file = tmp_path / f".ppeye-tmp-{p.pid}.{_host_tag()}.xyz789state.json"
    dead_file.write_text("{")
    mine = tmp_path / f"{tmp_prefix()}live-epoch_0004"          # this process: still writing
    mine.mkdir()
    elsewhere = tmp_path / f".ppeye-tmp-{p.pid}.00000000.abc-epoch_0005"   # another host's
    elsewhere.mkdir()
    unknown = tmp_path / ".ppeye-tmp-abc-epoch_0001"              # no owner recorded (older ppeye)
    unknown.mkdir()
    with atomic_directory(str(tmp_path / "epoch_0006")) as tmp:
        open(os.path.join(tmp, "x"), "w").close()
    assert not dead.exists() and not dead_file.exists()
    assert mine.exists() and elsewhere.exists() and unknown.exists()
    assert (tmp_path / "epoch_0006" / "x").exists()


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_outputs_get_the_permissions_of_a_plain_write_not_the_temporarys(tmp_path, mask):
    """A colleague on a shared machine reads results exactly as the user's umask allows: atomic
    writes used to leave every file 0600 and every directory 0700 (mkstemp, mkdtemp)."""
    old = os.umask(mask)
    try:
        assert umask() == mask
        with atomic_write(tmp_path / "a.json") as f:
            f.write("{}")
        with atomic_directory(tmp_path / "run") as d:
            open(os.path.join(d, "x"), "w").close()
        plain = tmp_path / "plain.json"
        plain.write_text("{}")
        os.makedirs(tmp_path / "plain_dir")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == stat.S_IMODE(os.stat(plain).st_mode) == 0o666 & ~mask
    assert stat.S_IMODE(os.stat(tmp_path / "run").st_mode) == stat.S_IMODE(os.stat(tmp_path / "plain_dir").st_mode) \
        == 0o777 & ~mask
