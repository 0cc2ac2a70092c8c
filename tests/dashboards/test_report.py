"""``hpo32 report``: one self-contained, escaped HTML file."""

from __future__ import annotations

import re

import pytest

from hpo32.dashboards.report import ReportError, write_report
from tests.dashboards.dbgen import HOSTILE_NAME


@pytest.fixture(scope="module")
def report(fixture_db, engine, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    names = [
        "cifar-optuna",
        "inet-optuna",
        "cifar-kt",
        "cifar-ak",
        "empty",
        "all-failed",
        HOSTILE_NAME,
    ]
    write_report(fixture_db[0], names, out, engine=engine)
    return out.read_text(encoding="utf-8")


def test_report_inlines_plotly_once_and_holds_every_figure(report):
    assert report.startswith("<!DOCTYPE html>")
    assert report.count("plotly.js v") == 1  # the library, inlined once
    assert re.findall(r"<(?:script|link)[^>]+(?:src|href)=", report) == []  # nothing fetched
    divs = re.findall(r'<div id="figure-(\d+)"', report)
    # 6 per study, then the dataset comparison (4) and the engines on cifar10 (3)
    assert len(divs) == 6 * 7 + 4 + 3
    for heading in (
        "ImageNet32 and CIFAR-10",
        "Engines on cifar10",
        "Best trial #",
        "test accuracy",
        "Parameter importances",
        "Slice plots",
    ):
        assert heading in report


def test_report_escapes_names(report):
    assert "<img src=x" not in report and "<b>bold</b>" not in report
    assert "&lt;img src=x onerror=" in report  # shown as text in the page


def test_report_errors_are_one_sentence(fixture_db, engine, tmp_path):
    with pytest.raises(ReportError, match="no study named 'nope'"):
        write_report(fixture_db[0], ["cifar-kt", "nope"], tmp_path / "r.html", engine=engine)
    with pytest.raises(ReportError, match="does not exist"):
        write_report(fixture_db[0], ["cifar-kt"], tmp_path / "no" / "r.html", engine=engine)
    with pytest.raises(ReportError, match="is a folder"):
        write_report(fixture_db[0], ["cifar-kt"], tmp_path, engine=engine)
    assert list(tmp_path.iterdir()) == []  # nothing half-written
