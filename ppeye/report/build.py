"""tools/report.py's engine: one run's TRIPOD+AI report as Markdown and as a self-contained HTML page.

The report directory holds ``report.md`` (figures in ``figures/``), ``report.html`` (the same,
figures inlined) and ``checklist.csv`` (item, topic, status). It is written whole or not at all.
Participant-level content: none. Counts, means and metrics only; counts from 1 to 4 are printed
as "<5"; no id, row or date of a person.
"""
import csv
import datetime as dt
import os
import shutil

from ..core.errors import InputError
from ..core.io import atomic_directory
from .gather import gather
from .html import to_html
from .tripod import ITEMS

NOT_TRIPOD = {"NC", "EX"}           # ppeye's own sections between the checklist's items


def render(facts, figure_dir):
    """The report's Markdown; the figures it cites copied into ``figure_dir`` (named by section)."""
    copied = {}

    def figure(path):
        if path not in copied:
            parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
            name = f"{len(copied) + 1:02d}_{parent}_{os.path.basename(path)}"
            shutil.copyfile(path, os.path.join(figure_dir, name))
            copied[path] = f"figures/{name}"
        return copied[path]

    facts = dict(facts, figure=figure)
    sections = [(item, topic, *fn(facts)) for item, topic, fn in ITEMS]
    meta = facts["meta"]
    head = [f"# TRIPOD+AI report: {os.path.basename(os.path.normpath(facts['run']))}", "",
            f"Run `{facts['run']}` (seed {meta.get('seed', '?')}, config fingerprint "
            f"{meta.get('config_fingerprint', '?')}, {meta.get('device', '?')} x {meta.get('world_size', '?')}); "
            f"written by tools/report.py on {dt.date.today():%Y-%m-%d}.", "",
            "**Participant-level content: none.** Counts, means and metrics only; counts from 1 to 4 appear as "
            "\"<5\". Items marked **for the authors** need what no run can know; the numbering follows the "
            "TRIPOD+AI checklist (Collins et al., BMJ 2024;385:e078378); NC and EX are ppeye's additions.", "",
            "| item | topic | status |", "|---|---|---|"]
    head += [f"| {item} | {topic} | {status} |" for item, topic, status, _ in sections]
    body = []
    for item, topic, status, lines in sections:
        label = topic if item in NOT_TRIPOD else f"{item}. {topic}"
        body += ["", f"## {label}", "", f"Status: **{status}**", "", *lines]
    return "\n".join(head + body) + "\n", sections


def write_report(run_dir, output_dir=None, overwrite=False, **extra):
    """Gather, render and write the report of ``run_dir``; returns the report directory."""
    out = output_dir or os.path.join(run_dir, "report")
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)) and not overwrite:
        raise InputError(f"{out} already exists: pass --overwrite to replace it (or choose --output_dir)")
    facts = gather(run_dir, **extra)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        os.makedirs(os.path.join(tmp, "figures"))
        markdown, sections = render(facts, os.path.join(tmp, "figures"))
        with open(os.path.join(tmp, "report.md"), "w") as f:
            f.write(markdown)
        with open(os.path.join(tmp, "report.html"), "w") as f:
            f.write(to_html(markdown, tmp, f"TRIPOD+AI report: {os.path.basename(os.path.normpath(run_dir))}"))
        with open(os.path.join(tmp, "checklist.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["item", "topic", "status"])
            w.writerows([item, topic, status] for item, topic, status, _ in sections)
    return out
