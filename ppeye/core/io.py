"""Atomic file and directory writes: a reader never sees a half-written output."""
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile

from .runlock import alive


TMP_PREFIX = ".ppeye-tmp-"
_TMP_OWNER = re.compile(r"^\.ppeye-tmp-(\d+)\.([0-9a-f]{8})\.")


def _host_tag():
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def tmp_prefix():
    """``.ppeye-tmp-<pid>.<host tag>.``: whose temporary it is, so a dead process's can be cleaned."""
    return f"{TMP_PREFIX}{os.getpid()}.{_host_tag()}."


def clean_stale_temporaries(directory):
    """Remove the temporaries in ``directory`` left by processes of this host that no longer run
    (a kill during an atomic write); returns their names. Others' are left alone."""
    removed, host = [], _host_tag()
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for name in names:
        m = _TMP_OWNER.match(name)
        if not m or m.group(2) != host or alive(int(m.group(1))):
            continue
        path = os.path.join(directory, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        removed.append(name)
    return removed


def umask():
    """The process's umask, read without changing it (Linux: /proc/self/status; elsewhere a
    set-and-restore)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode="w", **open_kwargs):
    """Open a temporary file beside ``path``; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` keeps its old
    content (or stays absent). The file gets the permissions a plain ``open`` would give it
    (0666 less the umask), not the temporary's private 0600.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> with atomic_write(p) as f:
    ...     _ = f.write("hello")
    >>> open(p).read()
    'hello'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=tmp_prefix(), suffix=os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            os.chmod(f.fileno(), 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path, overwrite=False):
    """Yield a temporary directory that replaces ``path`` only if the block succeeds.

    With ``overwrite=False`` an existing non-empty ``path`` is an error, so a
    previous output is never destroyed by accident. With ``overwrite=True`` the
    old directory is swapped out and removed only after the new one is in place. The directory
    gets the permissions ``os.makedirs`` would give it (0777 less the umask), not 0700.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise FileExistsError(f"{path} exists and is not a directory")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise FileExistsError(f"{path} already exists and is not empty (pass overwrite to replace it)")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    clean_stale_temporaries(parent)          # those of killed writes (e.g. a checkpoint cut short)
    tmp = tempfile.mkdtemp(prefix=tmp_prefix(), suffix="-" + os.path.basename(path), dir=parent)
    try:
        os.chmod(tmp, 0o777 & ~umask())
        yield tmp
        if os.path.isdir(path):
            old = tmp + "-old"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


CSV_DIGITS = 6


def csv_value(value, digits=CSV_DIGITS):
    """A float as ``digits`` significant digits (0.776321, 1.23457e-05), not the 17 of ``repr``;
    anything else unchanged. 6 digits keep a ROC-AUC or a p-value exact to what it means (and what
    is read back for pooling) without 16-digit noise.

    >>> [csv_value(v) for v in (0.7763214561234, 1e-05 / 0.81, 3, float("nan"), "x")]
    ['0.776321', '1.23457e-05', 3, 'nan', 'x']
    """
    if isinstance(value, float) or type(value).__module__ == "numpy" and type(value).__name__.startswith("float"):
        return format(float(value), f".{digits}g")
    return value


def write_csv(path, rows, fields, digits=CSV_DIGITS):
    """Write dict rows as CSV atomically (header from ``fields``), floats to ``digits`` significant digits."""
    import csv

    with atomic_write(path) as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows({k: csv_value(v, digits) for k, v in row.items()} for row in rows)


def save_npz(path, compressed=False, **arrays):
    """``numpy.savez`` to ``path`` atomically."""
    import numpy as np

    tmp = f"{path}.tmp.npz"
    try:
        (np.savez_compressed if compressed else np.savez)(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def digest(obj):
    """A short (16 hex digits) SHA-256 of a JSON-able object, independent of dict order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def sha256(path):
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
