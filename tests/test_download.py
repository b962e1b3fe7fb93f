"""The ERA5-Land downloader, with fake CDS clients (no network): plan, parallelism, resume, failures."""
import glob
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import ppeye
from conftest import DEMO, ROOT, TINY
from ppeye.data.era5.download import (PermanentDownloadError, classify, describe_plan, download, plan_requests)

DL = ["data.download.group_size=3", "data.download.retries=2", "data.download.backoff_seconds=0",
      "data.end_date=2019-04-30"]


def cfg_for(raw, extra=()):
    return ppeye.load_config(DEMO, TINY + DL + [f"data.era5_raw_dir={raw}", *extra])


class Response:
    def __init__(self, status_code):
        self.status_code = status_code


class HTTPError(Exception):
    """Like requests' HTTPError: a message and a response with a status code."""

    def __init__(self, status, message):
        super().__init__(f"{status} {message}")
        self.status, self.message = status, message
        self.response = Response(status)

    def __reduce__(self):  # picklable, to reach the worker processes
        return HTTPError, (self.status, self.message)


class FakeCDS:
    """Serves the tiny synthetic files; scripted failures are counted with marker files
    (requests run in worker processes, so plain attributes would not be shared)."""

    def __init__(self, source, log_dir, fail=None, times=1, delay=0.0, corrupt_first=False):
        self.source, self.log_dir = source, log_dir
        self.fail, self.times, self.delay, self.corrupt_first = fail, times, delay, corrupt_first

    def __call__(self):
        return self

    def retrieve(self, dataset, params, target):
        assert dataset == "reanalysis-era5-land" and params["data_format"] == "netcdf"
        key = f"{params['year']}-{params['month']}-{'_'.join(params['variable'])}"
        attempt = len(glob.glob(os.path.join(self.log_dir, key + ".*"))) + 1
        began = time.time()
        time.sleep(self.delay)
        open(os.path.join(self.log_dir, f"{key}.{attempt}"), "w").write(json.dumps(
            {"pid": os.getpid(), "began": began, "ended": time.time()}))
        if self.fail and attempt <= self.times:
            raise self.fail
        group = "g00" if "2m_temperature" in params["variable"] else "g01"
        src = glob.glob(os.path.join(self.source, params["year"], params["month"], group + ".*"))[0]
        if self.corrupt_first and attempt == 1:
            open(target, "wb").write(open(src, "rb").read()[:5000])
            return
        shutil.copyfile(src, target)


def calls(log_dir):
    return [json.load(open(p)) for p in glob.glob(os.path.join(log_dir, "*"))]


@pytest.fixture
def src(tiny):
    return os.path.join(tiny[0], "era5")


def test_plan_uses_the_current_request_format():
    requests = plan_requests(cfg_for("/x"))
    assert [r.key for r in requests][:3] == ["2019-01-g00", "2019-01-g01", "2019-02-g00"] and len(requests) == 8
    p = requests[0].params
    assert p["variable"] == ["2m_temperature", "total_precipitation", "surface_solar_radiation_downwards"]
    assert p["year"] == "2019" and p["month"] == "01" and len(p["day"]) == 31 and p["time"][-1] == "23:00"
    north, west, south, east = p["area"]
    assert north > south and west < east and p["download_format"] == "unarchived"
    assert requests[0].fields == 3 * 31 * 24
    assert "8 requests" in describe_plan(requests)


def test_requests_above_the_cost_limit_are_refused_at_planning():
    with pytest.raises(ppeye.ConfigError, match="lower data.download.group_size"):
        plan_requests(cfg_for("/x", ["data.download.max_fields=1000"]))


def test_downloads_in_parallel_and_verifies(src, tmp_path):
    raw, log = tmp_path / "raw", tmp_path / "log"
    log.mkdir()
    counts = download(cfg_for(raw), client_factory=FakeCDS(src, str(log), delay=0.3))
    assert counts == {"planned": 8, "already_done": 0, "done": 8, "failed": 0, "waited_seconds": 0.0}
    assert sorted(os.listdir(raw / "2019" / "01")) == ["g00.zip", "g01.nc"]
    spans = sorted((c["began"], c["ended"]) for c in calls(log))
    assert len({c["pid"] for c in calls(log)}) == 2  # data.download.concurrency
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:]))  # requests overlapped in time
    states = [json.loads(x)["state"] for x in open(raw / "manifest.jsonl")]
    assert states.count("done") == 8 and states.count("running") == 8
    again = download(cfg_for(raw), client_factory=FakeCDS(src, str(log)))
    assert again["already_done"] == 8 and again["done"] == 0 and len(calls(log)) == 8


def test_transient_errors_are_retried(src, tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    fake = FakeCDS(src, str(log), fail=HTTPError(503, "Service Unavailable"), times=2)
    counts = download(cfg_for(tmp_path / "raw"), client_factory=fake)
    assert counts["done"] == 8 and len(calls(log)) == 8 * 3


def test_the_total_wait_is_bounded_said_before_and_counted_after(src, tmp_path):
    from ppeye.data.era5.download import CLIENT_RETRIES, CLIENT_SLEEP_MAX, retry_plan

    plan = retry_plan({"retries": 3, "backoff_seconds": 10})
    assert plan["max_wait_seconds"] == pytest.approx(1.25 * (10 + 20 + 40) + 4 * CLIENT_RETRIES * CLIENT_SLEEP_MAX)
    assert "up to 3 retries" in plan["text"] and f"{plan['max_wait_seconds'] / 60:.1f} min" in plan["text"]
    log = tmp_path / "log"
    log.mkdir()
    fake = FakeCDS(src, str(log), fail=HTTPError(503, "Service Unavailable"), times=2)
    cfg = cfg_for(tmp_path / "raw", ["data.download.retries=2", "data.download.backoff_seconds=0.01"])
    counts = download(cfg, client_factory=fake)
    entries = [json.loads(x) for x in open(tmp_path / "raw" / "manifest.jsonl")]
    waits = [e["waited_seconds"] for e in entries if e["state"] == "done"]
    bound = retry_plan(cfg["data"]["download"])["max_wait_seconds"]
    assert len(waits) == 8 and all(0.01 * 0.75 * 3 <= w <= 0.01 * 1.25 * 3 <= bound for w in waits)   # 2 waits each
    assert counts["waited_seconds"] == pytest.approx(sum(waits))
    res = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "download.py"), "-c", "configs/full.yaml",
                          "--dry-run"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "retrying: up to 5 retries per request" in res.stdout, res.stderr


def test_a_request_failing_more_than_the_retries_is_reported(src, tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    fake = FakeCDS(src, str(log), fail=HTTPError(429, "Too Many Requests"), times=99)
    counts = download(cfg_for(tmp_path / "raw", ["data.download.retries=1"]), client_factory=fake)
    assert counts["failed"] == 8 and counts["done"] == 0
    last = [json.loads(x) for x in open(tmp_path / "raw" / "manifest.jsonl")][-1]
    assert last["state"] == "failed" and "429" in last["error"]


def test_a_corrupt_download_is_fetched_again(src, tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    counts = download(cfg_for(tmp_path / "raw"), client_factory=FakeCDS(src, str(log), corrupt_first=True))
    assert counts["done"] == 8 and len(calls(log)) == 16
    assert not glob.glob(str(tmp_path / "raw" / "**" / "*.part-*"), recursive=True)


@pytest.mark.parametrize("message, advice", [
    ("403 Client Error: Forbidden. required licences not accepted", "licence has not been accepted"),
    ("403 Client Error: cost limits exceeded", "lower data.download.group_size"),
    ("401 Client Error: Unauthorized: authentication failed", "check ~/.cdsapirc"),
])
def test_permanent_refusals_stop_with_what_to_do(src, tmp_path, message, advice):
    log = tmp_path / "log"
    log.mkdir()
    fake = FakeCDS(src, str(log), fail=HTTPError(int(message[:3]), message[4:]), times=99)
    with pytest.raises(PermanentDownloadError, match=advice):
        download(cfg_for(tmp_path / "raw"), client_factory=fake)
    assert len(calls(log)) <= 2  # no retries, and no new requests once refused


def test_classify():
    assert classify(ConnectionError("Connection aborted"))[0] == "transient"
    assert classify(TimeoutError("the queue timed out"))[0] == "transient"
    assert classify(HTTPError(500, "Internal Server Error"))[0] == "transient"
    assert classify(HTTPError(403, "Forbidden"))[0] == "permanent"


def _run_slowly(raw, src, log):
    os.setpgrp()  # lead a process group, so the kill below takes the pool workers down too
    download(cfg_for(raw, ["data.download.concurrency=1"]), client_factory=FakeCDS(src, log, delay=0.4))


def test_a_killed_run_continues_where_it_stopped(src, tmp_path):
    raw, log = tmp_path / "raw", tmp_path / "log"
    log.mkdir()
    proc = multiprocessing.get_context("fork").Process(target=_run_slowly, args=(str(raw), src, str(log)))
    proc.start()
    manifest = raw / "manifest.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (manifest.exists() and manifest.read_text().count('"done"') >= 3):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.join()
    finished = manifest.read_text().count('"done"')
    assert 3 <= finished < 8
    with open(manifest, "a") as f:
        f.write('{"key": "2019-04-g01", "sta')  # a line cut by the kill
    before = len(calls(log))
    counts = download(cfg_for(raw), client_factory=FakeCDS(src, str(log)))
    assert counts["already_done"] >= finished and counts["already_done"] + counts["done"] == 8
    assert len(calls(log)) - before == counts["done"]
    assert not glob.glob(str(raw / "**" / "*.part-*"), recursive=True)


def test_a_second_download_into_the_same_raw_directory_is_refused_and_keeps_the_first_runs_parts(src, tmp_path):
    import socket
    import subprocess
    import sys

    from ppeye.core.errors import InputError

    raw = tmp_path / "raw"
    (raw / "2020" / "01").mkdir(parents=True)
    first = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])   # a download still running
    try:
        part = raw / "2020" / "01" / f"g00.zip.part-{first.pid}"
        part.write_bytes(b"half a file")
        (raw / ".ppeye.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": first.pid,
                                                     "what": "download", "started": "now"}))
        log = tmp_path / "log"
        log.mkdir()
        with pytest.raises(InputError, match=f"in use by another download \\(process {first.pid}"):
            download(cfg_for(raw), client_factory=FakeCDS(src, str(log)))
        assert part.read_bytes() == b"half a file" and calls(log) == []
    finally:
        first.kill()
        first.wait()
    # that run is gone: its lock is stale, its part a leftover; the next run cleans both and finishes
    counts = download(cfg_for(raw), client_factory=FakeCDS(src, str(log)))
    assert counts["done"] == 8 and not part.exists() and not (raw / ".ppeye.lock").exists()


def test_the_cds_clients_own_retry_loop_is_bounded(monkeypatch):
    import types

    from ppeye.data.era5 import download as dl

    made = {}
    fake = types.ModuleType("cdsapi")
    fake.Client = lambda **kw: made.update(kw) or "client"
    monkeypatch.setitem(sys.modules, "cdsapi", fake)
    assert dl.cds_client() == "client"
    assert made["retry_max"] == dl.CLIENT_RETRIES <= 1 and made["sleep_max"] <= 10 and made["timeout"] == 60
    assert made["quiet"] is True and made["progress"] is False


def test_files_of_a_smaller_area_do_not_count_as_downloaded(src, tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    raw = tmp_path / "raw"
    assert download(cfg_for(raw), client_factory=FakeCDS(src, str(log)))["done"] == 8
    wider = cfg_for(raw, ["data.download.margin_cells=40"])          # e.g. a site added: a larger area
    fresh = download(wider, client_factory=FakeCDS(src, str(log)))
    assert fresh["already_done"] == 0                                  # no file of the old plan passes
    last = [json.loads(x) for x in open(raw / "manifest.jsonl")][-1]
    assert "not the requested area" in last["error"]                   # (the fake serves the old area again)
    assert download(cfg_for(raw), client_factory=FakeCDS(src, str(log)))["done"] == 8
