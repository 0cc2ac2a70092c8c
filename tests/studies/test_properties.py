"""Property-based checks of specs and command lines through ``hpo32 check`` (issue 14):
whatever a user writes is accepted (exit 0, one ``spec OK`` line) or refused with exit 2 and
one sentence, never a traceback, and nothing is written. Generated specs mix the real keys
with junk, every kind of value and random parameter definitions; a sample of the accepted
ones runs a tiny trial. Bounded and derandomized, so CI runs the same examples every time."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sqlite3
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from hpo32.search.space import default_space
from hpo32.studies.cli import main
from hpo32.studies.spec import ENGINES, StudySpec, list_presets
from tests.studies.conftest import TINY_SPEC

#: Examples per property: 60 in CI; HPO32_PROPERTY_EXAMPLES=2000 for a deeper run by hand.
MAX_EXAMPLES = int(os.environ.get("HPO32_PROPERTY_EXAMPLES", "60"))
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
SPEC_KEYS = [f.name for f in fields(StudySpec)] + ["machine"]
PARAM_NAMES = list(default_space().names)

# -- values -------------------------------------------------------------------------------
texts = st.text(max_size=12)
numbers = st.one_of(
    st.integers(-5, 600),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 0.5, 1e-4, -1, 2**53 + 1, 10**30]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
durations = st.one_of(
    st.sampled_from(["10m", "90s", "1h30m", "2h", "0s", "-5m", "soon", ".inf", "1e400h"]),
    numbers,
)
counts = st.one_of(st.none(), st.integers(-2, 8), st.sampled_from(["3", 2.0, True]))


def _either(plausible: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly plausible values, sometimes anything."""
    return st.one_of(plausible, plausible, plausible, junk)


# -- parameter definitions ----------------------------------------------------------------
param_names = st.one_of(st.sampled_from(PARAM_NAMES), texts)
conditions = st.fixed_dictionaries(
    {"parent": st.one_of(st.sampled_from(PARAM_NAMES), texts)},
    optional={
        "values": st.lists(scalars, max_size=3) | scalars,
        "min": st.one_of(numbers, texts),
        "max": numbers,
        "colour": scalars,
    },
)
param_fields = {
    "type": st.sampled_from(["int", "float", "categorical", "fixed", "integer", None]),
    "low": numbers,
    "high": numbers,
    "step": numbers,
    "log": st.one_of(st.booleans(), scalars),
    "choices": st.one_of(st.lists(scalars, max_size=4), scalars),
    "value": scalars,
    "default": scalars,
    "when": st.one_of(conditions, junk),
}
param_defs = st.one_of(
    scalars,
    st.lists(st.sampled_from(sorted(param_fields)), unique=True, max_size=4).flatmap(
        lambda keys: st.fixed_dictionaries({k: param_fields[k] for k in keys})
    ),
)
spaces = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "base": st.one_of(st.sampled_from(["default", "default", "none", "resnet"]), scalars),
            "params": st.dictionaries(param_names, param_defs, max_size=4),
        },
    ),
    junk,
)
configs = st.dictionaries(
    st.one_of(st.sampled_from([*PARAM_NAMES, "config", "study", "top"]), texts),
    st.one_of(scalars, st.sampled_from(["airbench94", "maxnet"])),
    max_size=3,
)

PLAUSIBLE: dict[str, st.SearchStrategy] = {
    "description": texts,
    "dataset": st.sampled_from(["cifar10", "cifar10", "imagenet32", "folder:/nowhere", "mnist"]),
    "classes": st.one_of(st.none(), st.integers(-1, 12), st.lists(st.integers(0, 11), max_size=4)),
    "data_dir": st.one_of(st.none(), texts),
    "download": st.booleans(),
    "engine": st.sampled_from([*ENGINES, "optuna", "optuna", "sklearn"]),
    "sampler": st.sampled_from(["tpe", "random", "cmaes", "grid", "annealing"]),
    "pruner": st.sampled_from(["median", "hyperband", "asha", "none", "sometimes"]),
    "budget": durations,
    "trial_budget": durations,
    "n_trials": counts,
    "max_failures": counts,
    "epochs": counts,
    "train_limit": counts,
    "val_limit": counts,
    "val_fraction": st.one_of(st.floats(-0.5, 1.5), st.just("0.2")),
    "seed": st.one_of(st.integers(-2, 2**33), texts),
    "weights": st.one_of(st.none(), texts),
    "precision": st.sampled_from(["auto", "float32", "bfloat16", "float16", "fp8"]),
    "epoch_images": counts,
    "warm_start": st.one_of(st.none(), st.lists(configs, max_size=2)),
    "space": spaces,
    "space_version": st.sampled_from([1, 2, 3]),
    "machine": st.dictionaries(
        st.sampled_from(["cpu", "gpu", "tpu"]),
        st.dictionaries(st.sampled_from(["epochs", "seed", "colour"]), st.integers(-1, 3)),
        max_size=2,
    ),
}
specs = st.tuples(
    st.lists(st.sampled_from(SPEC_KEYS), unique=True, max_size=6),
    st.dictionaries(texts, junk, max_size=1),
).flatmap(
    lambda parts: st.fixed_dictionaries({k: _either(PLAUSIBLE.get(k, junk)) for k in parts[0]}).map(
        lambda spec: {**spec, **parts[1]} if spec.keys().isdisjoint(parts[1]) else spec
    )
)


# -- command lines ------------------------------------------------------------------------
cli_text = st.text(st.characters(blacklist_characters="\x00", codec="utf-8"), max_size=10)
cli_ints = st.one_of(st.integers(-3, 10**12).map(str), cli_text)
FLAGS: dict[str, st.SearchStrategy] = {
    "--preset": st.one_of(st.sampled_from(sorted(list_presets())), cli_text),
    "--dataset": st.one_of(st.sampled_from(["cifar10", "imagenet32", "folder:/nowhere"]), cli_text),
    "--classes": cli_ints,
    "--engine": st.one_of(st.sampled_from(ENGINES), cli_text),
    "--sampler": st.sampled_from(["tpe", "random", "cmaes", "grid", "x"]),
    "--pruner": st.sampled_from(["median", "hyperband", "asha", "none", "x"]),
    "--budget": st.one_of(st.sampled_from(["10m", "90s", "0", "-1m", "inf", "1e400h"]), cli_text),
    "--trial-budget": st.sampled_from(["1m", "0s", "x"]),
    "--n-trials": cli_ints,
    "--max-failures": cli_ints,
    "--epochs": cli_ints,
    "--train-limit": cli_ints,
    "--val-limit": cli_ints,
    "--epoch-images": cli_ints,
    "--precision": st.sampled_from(["auto", "float32", "fp8"]),
    "--seed": cli_ints,
    "--weights": cli_text,
    "--workers": cli_ints,
    "--gpus": st.sampled_from(["0", "0,1", "x", ""]),
    "--study": st.one_of(st.sampled_from(["fresh", "a/b", "fresh\n", "n" * 101]), cli_text),
}
argvs = st.lists(
    st.sampled_from(sorted(FLAGS)).flatmap(lambda f: FLAGS[f].map(lambda v: [f, v])),
    max_size=5,
).map(lambda pairs: [item for pair in pairs for item in pair])


# -- running ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data_dir(cifar_dir: Path) -> str:
    return str(cifar_dir)


def _check(argv: list[str]) -> tuple[int, str, str]:
    """Runs ``hpo32 ARGV`` in-process, in an empty folder, and asserts the contract: exit 0
    with one OK line, or exit 2 with one ``hpo32: error:`` sentence; nothing written."""
    out, err = io.StringIO(), io.StringIO()
    home = os.getcwd()
    with tempfile.TemporaryDirectory() as cwd:
        db = Path(cwd) / "store" / "h.db"
        (Path(cwd) / "store").mkdir()
        os.chdir(cwd)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main([*argv, "--storage", f"sqlite:///{db}"])
        finally:
            os.chdir(home)
        assert sorted(os.listdir(cwd)) == ["store"] and not os.listdir(db.parent), argv
    stdout, stderr = out.getvalue(), err.getvalue()
    if currently_in_test_context():
        event(f"exit {code}")
    assert "Traceback" not in stderr
    if code == 0:
        assert stdout.startswith("hpo32: spec OK (") and stdout.count("\n") == 1, stdout
        assert "hpo32: error" not in stderr
    else:
        assert code == 2, (code, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hpo32: error: "), stderr[:2000]
        assert "could not be checked" not in stderr, stderr  # a check the spec layer missed
        assert len(stderr) < 1000, stderr[:300]
    return code, stdout, stderr


def _write(folder: str, spec: dict[str, Any], as_json: bool) -> str:
    path = Path(folder) / ("spec.json" if as_json else "spec.yaml")
    if as_json:
        path.write_text(json.dumps(spec))
    else:
        path.write_text(yaml.safe_dump(spec, allow_unicode=True))
    return str(path)


@SETTINGS
@given(spec=specs, as_json=st.booleans())
def test_generated_specs_are_accepted_or_refused_in_one_sentence(spec, as_json, data_dir):
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, spec, as_json)
        _check(["check", "--spec", path, "--data-dir", data_dir])
        assert os.listdir(folder) == [Path(path).name]


@SETTINGS
@given(argv=argvs)
def test_generated_command_lines_are_accepted_or_refused_in_one_sentence(argv, data_dir):
    _check(["check", *argv, "--data-dir", data_dir])


def test_the_generators_reach_both_outcomes(data_dir):
    """Sanity of the layer: the tiny spec passes, a known-bad one is refused."""
    with tempfile.TemporaryDirectory() as folder:
        good = _write(folder, yaml.safe_load(TINY_SPEC), as_json=False)
        assert _check(["check", "--spec", good, "--data-dir", data_dir])[0] == 0
        bad = _write(folder, {"seed": math.nan}, as_json=True)
        assert _check(["check", "--spec", bad, "--data-dir", data_dir])[0] == 2


# -- a sample of accepted specs, run ------------------------------------------------------
RECIPE = default_space()
tiny_overlays = st.fixed_dictionaries(
    {},
    optional={
        "sampler": st.sampled_from(["tpe", "random"]),
        "pruner": st.sampled_from(["median", "none", "asha"]),
        "seed": st.integers(0, 2**31 - 1),
        "val_fraction": st.floats(0.05, 0.5),
        "max_failures": st.integers(1, 3),
        "description": texts,
        "params": st.dictionaries(
            st.sampled_from(["lr_schedule", "tta", "ema", "augment_flip", "activation", "pooling"]),
            st.sampled_from(["cosine", "flip", True, False, "gelu", "avg", "bogus"]),
            max_size=3,
        ),
    },
)


@pytest.mark.slow
@settings(
    max_examples=2,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(overlay=tiny_overlays)
def test_accepted_generated_specs_run_a_tiny_trial(overlay, data_dir):
    spec = yaml.safe_load(TINY_SPEC)
    spec["space"]["params"].update(overlay.pop("params", {}))
    spec.update(overlay, epochs=1, train_limit=200, val_limit=50)
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, spec, as_json=False)
        assume(_check(["check", "--spec", path, "--data-dir", data_dir])[0] == 0)
        db = Path(folder) / "run.db"
        argv = ["search", "--study", "prop", "--spec", path, "--n-trials", "1"]
        argv += ["--data-dir", data_dir, "--storage", f"sqlite:///{db}"]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        assert code == 0, err.getvalue()[-2000:]
        con = sqlite3.connect(db)
        try:
            states = [row[0] for row in con.execute("SELECT state FROM trials")]
        finally:
            con.close()
        assert states == ["COMPLETE"], (states, out.getvalue())
