"""Download ERA5-Land from the Climate Data Store: planned, parallel, resumable, verified.

* **Plan.** One request per month and group of at most ``data.download.group_size``
  variables (fields = variables x days x 24 must stay under the CDS cost limit), for
  the area covering every site's box plus a margin, in the current request format
  (``variable``, ``year``, ``month``, ``day``, ``time``, ``area`` [N, W, S, E],
  ``data_format``, ``download_format``). Files land in ``<era5_raw_dir>/<YYYY>/<MM>/<group>.nc``
  (``.zip`` when the CDS sends an archive), the layout tools/preprocess.py reads.
* **Resume.** ``manifest.jsonl`` beside the files logs every state change; a request
  whose file exists and verifies is never fetched again, so a killed run continues
  where it stopped. Downloads go to a ``.part`` name and are renamed once verified
  (opened, with every variable and every hour of the month).
* **Failures.** HTTP 429/5xx, connection errors and queue time-outs are retried with
  exponential backoff; a refused licence, an exceeded cost limit or bad credentials
  (all possibly HTTP 403) stop the run with what to do.
* **Credentials** come from ``~/.cdsapirc`` or ``CDSAPI_URL``/``CDSAPI_KEY`` through
  cdsapi and are never logged.
"""
import calendar
import json
import os
import random
import time
import zipfile

import numpy as np
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

from ...core.errors import ConfigError, DataError, PpeyeError
from ...core.logger import get_logger
from ...core.optional import require
from ...core.runlock import DirectoryLock
from ..ukb.centres import resolve_sites
from .grid import site_box, union_box
from .reader import open_raw
from .variables import plan_groups, resolve_variables

DATASET = "reanalysis-era5-land"
MANIFEST = "manifest.jsonl"
BYTES_PER_FIELD_CELL = 2.0  # compressed NetCDF, measured on the synthetic files: ~2 bytes per value


class PermanentDownloadError(PpeyeError):
    """A CDS refusal that retrying cannot fix; the message says what the user must do."""


@dataclass
class Request:
    key: str
    target: str  # relative to the raw directory, without extension
    params: dict
    variables: list
    year: int
    month: int
    fields: int = 0
    est_bytes: float = 0.0
    shorts: list = field(default_factory=list)


def plan_requests(cfg):
    """Every request needed for ``data.start_date`` .. ``data.end_date``, in calendar order."""
    import pandas as pd

    data = cfg["data"]
    dl = data["download"]
    sites = resolve_sites(data["sites"])
    variables = resolve_variables(data["variables"])
    boxes = [site_box(c.lat, c.lon, tuple(data["box"]), float(data["resolution"])) for c in sites]
    area_box = union_box(boxes, int(dl["margin_cells"]))
    area = area_box.area
    cells = area_box.height * area_box.width
    start, end = pd.Timestamp(str(data["start_date"])), pd.Timestamp(str(data["end_date"]))
    if dl["download_format"] not in ("unarchived", "zip") or dl["data_format"] not in ("netcdf", "grib"):
        raise ConfigError("data.download.data_format must be netcdf or grib, download_format unarchived or zip")
    out = []
    for period in pd.period_range(start, end, freq="M"):
        days = range(1, calendar.monthrange(period.year, period.month)[1] + 1)
        for group, members in plan_groups(variables, int(dl["group_size"])).items():
            fields = len(members) * len(days) * 24
            if fields > int(dl["max_fields"]):
                raise ConfigError(f"a request of {len(members)} variables for a month has {fields} fields, above "
                                  f"data.download.max_fields ({dl['max_fields']}): lower data.download.group_size")
            out.append(Request(
                key=f"{period.year:04d}-{period.month:02d}-{group}",
                target=os.path.join(f"{period.year:04d}", f"{period.month:02d}", group),
                params={
                    "variable": [v.name for v in members],
                    "year": f"{period.year:04d}",
                    "month": f"{period.month:02d}",
                    "day": [f"{d:02d}" for d in days],
                    "time": [f"{h:02d}:00" for h in range(24)],
                    "area": area,
                    "data_format": dl["data_format"],
                    "download_format": dl["download_format"],
                },
                variables=[v.name for v in members], shorts=[v.short for v in members],
                year=period.year, month=period.month, fields=fields,
                est_bytes=fields * cells * BYTES_PER_FIELD_CELL,
            ))
    return out


def describe_plan(requests):
    """The --dry-run text: counts, sizes, area, the first requests."""
    total_fields = sum(r.fields for r in requests)
    total_mb = sum(r.est_bytes for r in requests) / 2**20
    lines = [f"{len(requests)} requests to {DATASET}, {total_fields:,} fields, about {total_mb:,.0f} MB",
             f"area [N, W, S, E] = {requests[0].params['area'] if requests else '-'}"]
    for r in requests[:5]:
        lines.append(f"  {r.key}: {len(r.variables)} variables x {len(r.params['day'])} days x 24 hours "
                     f"= {r.fields} fields, ~{r.est_bytes / 2**20:.1f} MB -> {r.target}.nc")
    if len(requests) > 5:
        lines.append(f"  ... and {len(requests) - 5} more")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ manifest


class Manifest:
    """An append-only JSON-lines log of request states; the last line for a key wins."""

    def __init__(self, raw_dir):
        self.path = os.path.join(raw_dir, MANIFEST)
        os.makedirs(raw_dir, exist_ok=True)

    def states(self):
        out = {}
        if not os.path.exists(self.path):
            return out
        with open(self.path) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a kill: ignore it
                    continue
                out[entry.get("key", entry.get("file"))] = entry
        return out

    def record(self, **entry):
        entry["time"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        with open(self.path, "a") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())


# ------------------------------------------------------------------------------ one request


def classify(error):
    """``("permanent", advice)`` or ``("transient", reason)`` for a failed retrieve."""
    text = str(error).lower()
    status = getattr(getattr(error, "response", None), "status_code", None)
    if "licence" in text or "license" in text or "terms of use" in text:
        return "permanent", ("the ERA5-Land licence has not been accepted for your account: accept it on the "
                             "dataset's download page of the Climate Data Store (terms of use), then rerun")
    if "cost limit" in text or "too large" in text or "request too big" in text:
        return "permanent", ("the request exceeds the CDS cost limit: lower data.download.group_size "
                             "(variables per request) and rerun")
    if status == 401 or "401" in text or "authentication" in text or "invalid api key" in text or \
            "not authorised" in text or "not authorized" in text or "invalid credentials" in text:
        return "permanent", ("the CDS refused your credentials: check ~/.cdsapirc or CDSAPI_URL/CDSAPI_KEY "
                             "(the key of your CDS profile)")
    if status == 403 or "403" in text or "forbidden" in text:
        return "permanent", f"the CDS refused the request (403): {_first_line(error)}"
    return "transient", _first_line(error)


def _first_line(error):
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__


def verify(path, request):
    """Open a downloaded file and check it holds every variable and hour of the month."""
    ds = open_raw(path)
    missing = [s for s in request.shorts if s not in ds.data_vars]
    if missing:
        raise DataError(f"{path}: variables {missing} are missing from the download")
    expected = len(request.params["day"]) * 24
    if ds.sizes["time"] < expected:
        raise DataError(f"{path}: {ds.sizes['time']} time steps, expected {expected} (an incomplete download)")
    north, west, south, east = (float(v) for v in request.params["area"])
    lat, lon = ds["latitude"].values, ds["longitude"].values
    step = float(np.abs(np.diff(lat)).min()) if len(lat) > 1 else 0.1     # the CDS snaps the area to its grid
    if lat.max() < north - step or lat.min() > south + step or lon.min() > west + step or lon.max() < east - step:
        raise DataError(f"{path}: covers latitudes {lat.min():.2f}..{lat.max():.2f}, longitudes {lon.min():.2f}.."
                        f"{lon.max():.2f}, not the requested area N {north} W {west} S {south} E {east} (a file of "
                        f"an earlier plan, e.g. before a site was added)")
    return True


def final_path(raw_dir, request):
    for ext in (".nc", ".zip", ".grib"):
        path = os.path.join(raw_dir, request.target + ext)
        if os.path.exists(path):
            return path
    return None


def fetch(request, raw_dir, client_factory, retries, backoff, sleep=time.sleep):
    """Retrieve one request into its final file; returns a result dict (never raises transient errors)."""
    folder = os.path.join(raw_dir, os.path.dirname(request.target))
    os.makedirs(folder, exist_ok=True)
    part = os.path.join(raw_dir, f"{request.target}.part-{os.getpid()}")
    last, waited = "", 0.0
    for attempt in range(retries + 1):
        try:
            client = client_factory()
            client.retrieve(DATASET, request.params, part)
            ext = ".zip" if zipfile.is_zipfile(part) else (".grib" if request.params["data_format"] == "grib" else ".nc")
            verify(part, request)
            target = os.path.join(raw_dir, request.target + ext)
            os.replace(part, target)
            return {"key": request.key, "state": "done", "file": os.path.relpath(target, raw_dir),
                    "attempts": attempt + 1, "bytes": os.path.getsize(target), "waited_seconds": round(waited, 3)}
        except DataError as e:  # a corrupt or incomplete file: fetch it again
            last = f"corrupt download: {e}"
        except Exception as e:  # the client's own exception types vary with its version
            kind, message = classify(e)
            if kind == "permanent":
                _remove(part)
                return {"key": request.key, "state": "failed", "permanent": True, "error": message,
                        "attempts": attempt + 1, "waited_seconds": round(waited, 3)}
            last = message
        _remove(part)
        if attempt < retries:
            pause = backoff * 2**attempt * (0.75 + 0.5 * random.random())
            sleep(pause)
            waited += pause
    return {"key": request.key, "state": "failed", "permanent": False, "error": last, "attempts": retries + 1,
            "waited_seconds": round(waited, 3)}


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


# the client's own retry loop for transient HTTP errors (cdsapi's defaults: 500 retries of up to
# 120 s, hours of silent retrying offline) is cut to one short retry: ppeye's data.download.retries
# and backoff_seconds govern retrying, visibly, in fetch()
CLIENT_RETRIES, CLIENT_SLEEP_MAX, CLIENT_TIMEOUT = 1, 10, 60


def retry_plan(dl):
    """What retrying may cost one request, said before a download starts: ppeye's waits between
    attempts (``backoff_seconds`` doubling, jittered by at most +25%, ``retries`` times) plus the CDS
    client's own bounded retry within each attempt. Returns ``{"retries", "backoff_seconds",
    "max_wait_seconds", "text"}``.

    >>> retry_plan({"retries": 5, "backoff_seconds": 30})["max_wait_seconds"]
    1222.5
    """
    retries, backoff = int(dl["retries"]), float(dl["backoff_seconds"])
    ours = sum(backoff * 2**k * 1.25 for k in range(retries))
    client = (retries + 1) * CLIENT_RETRIES * CLIENT_SLEEP_MAX
    total = ours + client
    text = (f"retrying: up to {retries} retries per request after a transient error (429/5xx, connection, time-out), "
            f"waiting {backoff:g} s doubling each time; with the CDS client's own retry (at most {CLIENT_RETRIES} of "
            f"<= {CLIENT_SLEEP_MAX} s per attempt) a request waits at most {total / 60:.1f} min in all "
            f"(data.download.retries, backoff_seconds)")
    return {"retries": retries, "backoff_seconds": backoff, "max_wait_seconds": round(total, 3), "text": text}


def cds_client(retry_max=CLIENT_RETRIES, sleep_max=CLIENT_SLEEP_MAX, timeout=CLIENT_TIMEOUT):
    """The real CDS client (cdsapi reads ~/.cdsapirc or CDSAPI_URL / CDSAPI_KEY), with its own
    retrying bounded (see CLIENT_RETRIES)."""
    cdsapi = require("cdsapi")

    return cdsapi.Client(quiet=True, progress=False, retry_max=retry_max, sleep_max=sleep_max, timeout=timeout)


def check_credentials():
    if os.environ.get("CDSAPI_KEY") or os.path.exists(os.environ.get("CDSAPI_RC", os.path.expanduser("~/.cdsapirc"))):
        return
    raise PermanentDownloadError("no CDS credentials: create ~/.cdsapirc (url and key lines) or set CDSAPI_URL and "
                                 "CDSAPI_KEY; the key is on your Climate Data Store profile page")


# ------------------------------------------------------------------------------ the run


def download(cfg, client_factory=None, progress=False, sleep=time.sleep, log=None):
    """Fetch every planned request not yet done; returns counts. Raises on a permanent refusal.
    One download at a time per raw directory (a second is refused): at its start a run removes
    the ``.part`` files of killed runs, which would otherwise be a concurrent run's files."""
    log = log or get_logger("ppeye.download")
    with DirectoryLock(cfg["data"]["era5_raw_dir"], "download", log):
        return _download(cfg, client_factory, progress, sleep, log)


def _download(cfg, client_factory, progress, sleep, log):
    dl = cfg["data"]["download"]
    raw_dir = cfg["data"]["era5_raw_dir"]
    requests = plan_requests(cfg)
    if client_factory is None:
        check_credentials()
        client_factory = cds_client
    manifest = Manifest(raw_dir)
    for name in _walk_parts(raw_dir):  # leftovers of a killed run
        _remove(name)
    to_fetch, done = [], 0
    for r in requests:
        path = final_path(raw_dir, r)
        if path:
            try:
                verify(path, r)
                done += 1
                continue
            except DataError as e:
                log.warning(f"{os.path.relpath(path, raw_dir)} fails verification ({e}); fetching it again")
                os.remove(path)
        to_fetch.append(r)
    counts = {"planned": len(requests), "already_done": done, "done": 0, "failed": 0, "waited_seconds": 0.0}
    if not to_fetch:
        log.info(f"all {len(requests)} requests are already downloaded")
        return counts
    log.info(retry_plan(dl)["text"])
    from tqdm.auto import tqdm

    bar = tqdm(total=len(to_fetch), desc="ERA5-Land", unit="request", disable=not progress)
    workers = max(1, int(dl["concurrency"]))
    permanent = None
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending = {}
        queue = list(to_fetch)
        while queue or pending:
            while queue and len(pending) < workers and permanent is None:
                r = queue.pop(0)
                manifest.record(key=r.key, state="running", target=r.target)
                pending[pool.submit(fetch, r, raw_dir, client_factory, int(dl["retries"]),
                                    float(dl["backoff_seconds"]), sleep)] = r
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                r = pending.pop(future)
                result = future.result()
                manifest.record(**result, target=r.target, variables=r.variables)
                counts["done" if result["state"] == "done" else "failed"] += 1
                counts["waited_seconds"] += result.get("waited_seconds", 0.0)
                if result.get("permanent"):
                    permanent = result["error"]
                bar.update(1)
                bar.set_postfix(done=counts["done"] + done, queued=len(queue), failed=counts["failed"])
    bar.close()
    if permanent:
        raise PermanentDownloadError(f"download stopped: {permanent} ({counts['done']} requests finished this run; "
                                     "rerun to continue)")
    log.info(f"ERA5-Land: {counts['done']} downloaded, {done} already there, {counts['failed']} failed "
             f"(see {manifest.path}); {counts['waited_seconds']:.0f} s spent waiting to retry")
    return counts


def _walk_parts(raw_dir):
    for root, _, files in os.walk(raw_dir):
        for f in files:
            if ".part-" in f:
                yield os.path.join(root, f)
