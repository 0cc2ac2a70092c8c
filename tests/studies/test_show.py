"""``search --json``, ``resume --quiet``, ``show --top``/``--trial`` and ``hpo32 space`` over
one tiny real study."""

from __future__ import annotations

import json
import re

import pytest

from tests.studies.conftest import TINY_SPEC, run_hpo32, search_args


@pytest.fixture(scope="module")
def study(tmp_path_factory, cifar_dir):
    """A study of 2 trials made by ``search --json``; (folder, storage URL, the JSON)."""
    root = tmp_path_factory.mktemp("show")
    (root / "tiny.yaml").write_text(TINY_SPEC)
    url = f"sqlite:///{root}/hpo32.db"
    res = run_hpo32(*search_args("s", root / "tiny.yaml", cifar_dir, url, n_trials="2", json=True),
                    cwd=root)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return root, url, res.stdout


def test_search_json_is_one_object_and_nothing_else(study):
    _, _, stdout = study
    outcome = json.loads(stdout)  # the whole of stdout: no header, no trial lines
    assert outcome["study"] == "s" and outcome["reason"] == "n_trials"
    assert outcome["trials_run"] == 2 and 0 <= outcome["best_value"] <= 1
    assert 0 <= outcome["test_accuracy"] <= 1


def test_resume_quiet_prints_only_the_outcome_line(study, cifar_dir):
    root, url, _ = study
    res = run_hpo32("resume", "s", "--n-trials", "3", "--quiet", "--storage", url, cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.splitlines() == [res.stdout.strip()]
    assert res.stdout.startswith("hpo32: study 's' stopped (n_trials) after 1 trial this")
    # the budget is spent (3 of 3 trials): --json says so as one object too
    res = run_hpo32("resume", "s", "--json", "--storage", url, cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout)["study"] == "s"


def test_show_top(study):
    root, url, _ = study
    res = run_hpo32("show", "s", "--top", "2", "--json", "--storage", url, cwd=root)
    assert res.returncode == 0, res.stderr
    top = json.loads(res.stdout)
    assert len(top) == 2 and top[0]["value"] >= top[1]["value"]
    assert {"conv_blocks", "batch_size"} <= set(top[0]["config"])
    res = run_hpo32("show", "s", "--top", "2", "--storage", url, cwd=root)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "study s: the best 2 trials by val_acc"
    assert f"#1 trial {top[0]['number']}" in lines[1]
    assert any(line.split()[:1] == ["conv_blocks"] for line in lines)
    assert f"{top[0]['value']:.4f}" in res.stdout
    res = run_hpo32("show", "s", "--top", "50", "--json", "--storage", url, cwd=root)
    assert len(json.loads(res.stdout)) >= 2  # no more than there are


def test_show_trial(study):
    root, url, _ = study
    res = run_hpo32("show", "s", "--trial", "0", "--json", "--storage", url, cwd=root)
    assert res.returncode == 0, res.stderr
    trial = json.loads(res.stdout)
    assert trial["number"] == 0 and trial["state"] in ("COMPLETE", "PRUNED", "FAIL")
    assert [step for step, _ in trial["intermediate_values"]] == [1, 2]
    res = run_hpo32("show", "s", "--trial", "0", "--storage", url, cwd=root)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert out.startswith("study s, trial 0: complete, val_acc ")
    assert "stopped: ran all its epochs" in out and "timings: train " in out
    assert "model: " in out and "EPOCH" in out and "VAL_ACCURACY" in out
    assert "conv_blocks" in out
    for line in out.splitlines():  # floats rounded: no 0.123456789
        assert not re.search(r"\d\.\d{7,}", line), line
    res = run_hpo32("show", "s", "--trial", "99", "--storage", url, cwd=root)
    assert res.returncode == 2 and "has no trial 99" in res.stderr
    res = run_hpo32("show", "nope", "--trial", "0", "--storage", url, cwd=root)
    assert res.returncode == 2 and "no study named 'nope'" in res.stderr


def test_space(study):
    root, url, _ = study
    res = run_hpo32("space", "s", "--json", "--storage", url, cwd=root)
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["conv_blocks"]["kind"] == "int" and rows["conv_blocks"]["range"] == "1 .. 2"
    assert rows["batch_size"]["kind"] == "choice" and rows["batch_size"]["range"] == "32, 64"
    assert rows["filters_2"]["condition"] == "conv_blocks >= 2"
    assert rows["filters_1"]["log"] == "log"
    res = run_hpo32("space", "s", "--storage", url, cwd=root)
    assert res.returncode == 0, res.stderr
    header = res.stdout.splitlines()[1].split()
    assert header == ["NAME", "KIND", "RANGE", "LOG", "CONDITION", "DEFAULT"]
    res = run_hpo32("space", "nope", "--storage", url, cwd=root)
    assert res.returncode == 2 and "nope" in res.stderr
