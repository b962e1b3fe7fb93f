"""tools/report.py: a TRIPOD+AI report of an evaluated run, its items, figures, refusals and privacy."""
import csv
import json
import os
import re
import shutil
from html.parser import HTMLParser

import pandas as pd
import pytest
import yaml

import ppeye
from conftest import DEMO
from test_tools import run_tool
from ppeye.core.errors import InputError
from ppeye.engine.evaluator import Evaluator
from ppeye.report.build import write_report
from ppeye.report.gather import small
from ppeye.report.html import to_html
from ppeye.report.tripod import ITEMS


@pytest.fixture(scope="module")
def evaluated(trained, tmp_path_factory):
    """A copy of the tiny trained run, evaluated on its test and external splits."""
    root, overrides = trained
    run = tmp_path_factory.mktemp("report") / "r"
    shutil.copytree(root / "r", run, ignore=shutil.ignore_patterns("eval", "report"))
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={run}"])
    Evaluator(cfg, out_dir=str(run / "eval")).run(["test", "external"])
    return run, cfg


def test_small_counts_are_hidden():
    assert [small(n) for n in (0, 1, 4, 5, 123)] == ["0", "<5", "<5", "5", "123"]


def test_the_report_of_an_evaluated_run(evaluated, tmp_path):
    run, cfg = evaluated
    out = write_report(str(run), str(tmp_path / "rep"))
    md = open(os.path.join(out, "report.md")).read()
    # every item once, in the checklist table and as a section; checklist.csv the same
    with open(os.path.join(out, "checklist.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [r["item"] for r in rows] == [i for i, _, _ in ITEMS]
    assert {r["status"] for r in rows} <= {"from the run", "partly: the authors complete it", "for the authors"}
    for item, topic, _ in ITEMS:
        assert f"| {item} | {topic} |" in md
    # the numbers are the evaluation's, with their intervals
    test = json.load(open(run / "eval" / "test_metrics.json"))["metrics"]["macro_roc_auc"]
    assert f"| macro | {test['value']:.3f} [{test['ci_low']:.3f}, {test['ci_high']:.3f}]" in md
    counts = pd.read_csv(run / "split.csv").set_index("split")
    assert f"| train | {small(counts.loc['train', 'n'])} |" in md
    report = json.load(open(os.path.join(cfg["data"]["work_dir"], "cohort_report.json")))
    assert f"From {report['rows']} rows of the table" in md
    # every figure cited is in figures/, and the HTML inlines each one
    cited = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", md)
    assert cited and all(os.path.isfile(os.path.join(out, c)) for c in cited)
    assert sorted(os.listdir(os.path.join(out, "figures"))) == sorted(os.path.basename(c) for c in cited)
    page = open(os.path.join(out, "report.html")).read()
    assert page.count("data:image/png;base64,") == len(cited)
    tags = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append(tag)

    Tags().feed(page)
    assert tags.count("h2") == len(ITEMS) and "table" in tags
    # no participant id, in any token of the report
    cohort = pd.read_parquet(os.path.join(cfg["data"]["work_dir"], "cohort.parquet"), columns=["eid"])
    tokens = set(re.findall(r"\d+", md)) | set(re.findall(r"\d+", re.sub(r"base64,[^\"]+", "", page)))
    assert not tokens & set(cohort["eid"].astype(str))
    # one seed only, no negative control given: both said
    assert "one training seed" in md and "No negative control was given" in md
    # the command line: the same report; a second time without --overwrite refused, the first kept
    for expect in (0, 2):
        res = run_tool("report", "--run", str(run), "--output_dir", str(tmp_path / "cli"))
        assert res.returncode == expect, res.stderr
    assert "already exists: pass --overwrite" in res.stderr
    assert open(tmp_path / "cli" / "report.md").read().split("\n", 3)[3] == md.split("\n", 3)[3]


def test_refusals_name_what_is_missing_and_nothing_is_overwritten(evaluated, tmp_path):
    run, cfg = evaluated
    bare = tmp_path / "bare"
    shutil.copytree(run, bare, ignore=shutil.ignore_patterns("eval"))
    with pytest.raises(InputError, match=r"summary.json does not exist: evaluate the run first: python tools/eval.py"):
        write_report(str(bare), str(tmp_path / "a"))
    assert not (tmp_path / "a").exists()
    with pytest.raises(InputError, match="no such run directory"):
        write_report(str(tmp_path / "nothing"), str(tmp_path / "a"))
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep")
    with pytest.raises(InputError, match="already exists: pass --overwrite"):
        write_report(str(run), str(taken))
    assert os.listdir(taken) == ["mine.txt"]
    # a comparison whose model used the real windows is not a negative control
    control = tmp_path / "control"
    (control / "seed_42").mkdir(parents=True)
    with open(control / "seed_42" / "model.yaml", "w") as f:
        yaml.safe_dump({"data": {"window_shift_days": 0}}, f)
    (control / "results.md").write_text("# ppeye results over seeds\n\n## test\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    with pytest.raises(InputError, match="not a negative control: data.window_shift_days is 0"):
        write_report(str(run), str(tmp_path / "b"), negative_controls=[str(control)])
    with pytest.raises(InputError, match="results.md does not exist: the results of tools/compare.py --seeds"):
        write_report(str(run), str(tmp_path / "b"), seeds=str(tmp_path))
    assert not (tmp_path / "b").exists()
    # with the shift, the control's tables join the report under its own heading
    days = cfg["data"]["window_days"]
    with open(control / "seed_42" / "model.yaml", "w") as f:
        yaml.safe_dump({"data": {"window_shift_days": -days}}, f)
    out = write_report(str(run), str(taken), overwrite=True, negative_controls=[str(control)])
    md = open(os.path.join(out, "report.md")).read()
    heading = (f"### Windows moved {days} days later: only days from the index date on "
               f"(`data.window_shift_days: -{days}`)")
    assert heading in md and "#### test" in md
    assert not (taken / "mine.txt").exists()


def test_the_html_of_the_markdown_the_report_writes(tmp_path):
    from PIL import Image

    Image.new("RGB", (4, 3)).save(tmp_path / "f.png")
    md = "# T\n\nA **bold** `code` <b>\n\n| a | b |\n|---|---|\n| 1 | x<y |\n\n- one\n  more\n- two\n\n![cap](f.png)\n"
    page = to_html(md, str(tmp_path), "t")
    assert "<h1>T</h1>" in page and "<p>A <strong>bold</strong> <code>code</code> &lt;b&gt;</p>" in page
    assert "<th>a</th><th>b</th>" in page and "<td>x&lt;y</td>" in page
    assert "<ul><li>one more</li><li>two</li></ul>" in page and "<figcaption>cap</figcaption>" in page
