"""The search display: on a real pseudo-terminal (pexpect, the screen emulated by pyte) at
80 and 200 columns, on a pipe, and the Progress object fed events directly."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from hpo32.studies.progress import Header, Progress, header_line
from tests.studies.conftest import ROOT, hpo32_env, run_hpo32, search_args

#: What TensorFlow, absl and oneDNN print when they are not silenced.
TF_LINES = re.compile(
    r"oneDNN|absl::|InitializeLog|cpu_feature_guard|tensorflow/|retracing|"
    r"^[IWEF]\d{4} |TF-TRT|rebuild TensorFlow",
    re.MULTILINE,
)
CSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
PANEL = "╭│╰"


def _spawn(args: list[str], cwd, cols: int, rows: int = 40) -> tuple[int, str]:
    pexpect = pytest.importorskip("pexpect")
    env = hpo32_env(TERM="xterm-256color")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # hpo32 must silence TensorFlow itself
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "hpo32.studies.cli", *args],
        cwd=str(cwd),
        env=env,
        dimensions=(rows, cols),
        encoding="utf-8",
        codec_errors="replace",
        timeout=300,
    )
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before


def _screen(raw: str, cols: int, rows: int = 40) -> list[str]:
    """The lines a terminal of that size holds at the end, scrollback included."""
    pyte = pytest.importorskip("pyte")
    screen = pyte.HistoryScreen(cols, rows, history=5000)
    pyte.Stream(screen).feed(raw)
    lines = ["".join(line[x].data for x in range(cols)) for line in screen.history.top]
    lines += list(screen.display)
    return [line.rstrip() for line in lines]


@pytest.mark.parametrize("cols", [80, 200])
def test_the_live_display_on_a_terminal(tmp_path, cifar_dir, tiny_spec, cols):
    args = ["search", "--study", f"d{cols}", "--spec", str(tiny_spec), "--data-dir",
            str(cifar_dir), "--n-trials", "2", "--budget", "5m", "--storage",
            f"sqlite:///{tmp_path}/hpo32.db"]  # fmt: skip
    code, raw = _spawn(args, tmp_path, cols)
    assert code == 0, raw[-3000:]
    assert not TF_LINES.search(raw), TF_LINES.search(raw)
    # every line the program wrote fits the terminal: nothing wraps, so nothing is left
    # behind when the panel redraws
    text = CSI.sub("", raw)
    longest = max(re.split(r"[\r\n]", text), key=len)
    assert len(longest) <= cols, longest
    assert "\x1b[" in raw  # it was the live panel, not plain lines
    assert "best val_acc" in text and re.search(r"ETA \d+(s|m)", text), text[-3000:]
    assert re.search(r"trial 1 .*epoch [12]/2", text)  # the running trial's progress
    screen = [line for line in _screen(raw, cols) if line]
    # the panel is gone; what stays: the header, one line per trial, the test, the outcome
    assert not [line for line in screen if any(c in line for c in PANEL)], screen
    assert screen[0].startswith("hpo32: study 'd")
    joined = "\n".join(screen)
    for n in (0, 1):
        assert len(re.findall(rf"^trial +{n} val_acc", joined, re.MULTILINE)) == 1, joined
    assert "new best" in joined and "tested the best model (trial" in joined
    assert "stopped (n_trials) after 2 trials this session" in " ".join(screen)


def test_plain_lines_on_a_pipe(tmp_path, cifar_dir, tiny_spec):
    env = {"TF_CPP_MIN_LOG_LEVEL": ""}
    res = run_hpo32(
        *search_args("p", tiny_spec, cifar_dir, f"sqlite:///{tmp_path}/hpo32.db", n_trials="2"),
        cwd=tmp_path,
        **env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "\r" not in res.stdout and "\x1b" not in res.stdout
    assert not TF_LINES.search(res.stdout + res.stderr), res.stderr[-3000:]
    lines = res.stdout.splitlines()
    assert lines[0] == (
        "hpo32: study 'p': cifar10, optuna (random sampler, none pruner), up to 2 trials, "
        "2 epochs a trial"
    )
    assert sum(1 for line in lines if re.match(r"trial +\d val_acc", line)) == 2
    assert any(line.startswith("tested the best model (trial") for line in lines)
    assert lines[-1].startswith("hpo32: study 'p' stopped (n_trials) after 2 trials")


# -- the Progress object, fed events (no TensorFlow) ------------------------------------------
HEADER = Header(study="demo", dataset="cifar10", engine="optuna", sampler="tpe",
                pruner="median", budget=900.0, used=30.0, n_trials=None, epochs=3,
                best=(0.5, 2), states={"done": 3, "pruned": 1})  # fmt: skip
CONFIG = {"conv_blocks": 3, "filters_1": 64, "filters_2": 128, "filters_3": 256,
          "activation": "relu", "optimizer": "adamax", "learning_rate": 0.00234,
          "batch_size": 128}  # fmt: skip


def _feed(progress: Progress) -> None:
    progress({"kind": "trial_start", "number": 4, "config": CONFIG})
    progress({"kind": "batch", "phase": "train", "epoch": 1, "step": 120, "steps": 391,
              "images_per_second": 1830.0})  # fmt: skip


def test_the_header_names_only_what_applies_to_the_engine():
    assert header_line(HEADER) == (
        "hpo32: study 'demo': cifar10, optuna (tpe sampler, median pruner), budget 15m00s "
        "(30s used), 3 epochs a trial"
    )
    from hpo32.studies.spec import StudySpec

    spec = StudySpec().with_overrides(engine="keras-tuner:random", epochs=1, n_trials=1)
    line = header_line(Header.of("kt", spec))
    assert "sampler" not in line and "pruner" not in line
    assert line.endswith("keras-tuner:random, up to 1 trial, 1 epoch a trial")


def test_plain_progress_lines():
    out = io.StringIO()
    p = Progress(HEADER, stream=out, live=False)
    _feed(p)
    p({"kind": "epoch", "number": 4, "epoch": 1, "epochs": 3, "val_accuracy": 0.41})
    p({"kind": "trial_end", "number": 4, "value": 0.41, "stopped_by": "pruned"})
    p({"kind": "trial_start", "number": 5, "config": CONFIG})
    p({"kind": "epoch", "number": 5, "epoch": 3, "epochs": 3, "val_accuracy": 0.61})
    p({"kind": "trial_end", "number": 5, "value": 0.61, "stopped_by": None})
    p({"kind": "test_start", "number": 5, "images": 10000})
    p({"kind": "test_end", "number": 5, "accuracy": 0.6, "top5": 0.95})
    p.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("hpo32: study 'demo'")
    assert re.match(r"trial +4 val_acc 0.4100 pruned in \d+s \| best 0.5000 \(trial 2\) \| "
                    r"\d+s/15m00s", lines[3])  # fmt: skip
    assert "new best" in lines[-3] and lines[-2].startswith("testing the best model (trial 5)")
    assert lines[-1].startswith("tested the best model (trial 5): test_acc 0.6000, top-5 0.9500")
    assert p.states == {"done": 1, "pruned": 1, "failed": 0} and p.best == (0.61, 5)
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_the_panel_fits_any_width():
    from rich.console import Console

    p = Progress(HEADER, stream=io.StringIO(), live=False)
    _feed(p)
    for cols in (40, 80, 120, 200):
        console = Console(width=cols, file=io.StringIO(), force_terminal=True)
        console.print(p._render())
        text = CSI.sub("", console.file.getvalue())
        assert max(len(line) for line in text.splitlines()) <= cols
    assert "best val_acc 0.5000 (trial 2)" in text and "ETA 1" in text
    assert "trial 4" in text and "epoch 1/3, batch 120/391, 1,830 img/s" in text
    assert "trials 3 done, 1 pruned, 0 failed" in text


def test_a_study_without_a_budget_has_no_budget_clock():
    out = io.StringIO()
    p = Progress(Header("r", "cifar10", "optuna", "tpe", "none", None, used=22.0, epochs=1),
                 stream=out, live=False)  # fmt: skip
    p({"kind": "trial_start", "number": 0, "config": {}})
    p({"kind": "trial_end", "number": 0, "value": 0.3, "stopped_by": None})
    assert "22s used" in out.getvalue() and "/-" not in out.getvalue()


def test_help_shows_defaults_and_every_positional_argument():
    res = run_hpo32("resume", "--help", cwd=ROOT)
    assert "STUDY" in res.stdout and "the study's name" in res.stdout
    assert "--json" in res.stdout and "--quiet" in res.stdout and "--verbose" in res.stdout
    res = run_hpo32("search", "--help", cwd=ROOT)
    assert "(default: 1)" in res.stdout  # --workers
    res = run_hpo32("predict", "--help", cwd=ROOT)
    assert "(default: 10)" in res.stdout and "image files" in res.stdout


def test_tensorflow_stays_quiet_when_imported_and_speaks_with_verbose(tmp_path):
    code = (
        "import os, sys; from hpo32.studies.cli.entry import quiet_tensorflow; "
        "quiet_tensorflow() if sys.argv[1] == 'quiet' else None; import tensorflow as tf; "
        "tf.get_logger().warning('a retracing warning'); "
        "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))"
    )
    env = hpo32_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL")
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)

    quiet = subprocess.run([sys.executable, "-c", code, "quiet"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert quiet.stdout.strip() == "None"  # oneDNN's switch (numerics) is left alone
    loud = subprocess.run([sys.executable, "-c", code, "loud"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "a retracing warning" in loud.stderr
