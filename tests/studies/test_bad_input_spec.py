"""The bad-input catalogue for specs and spaces (issue 14): values the model builder cannot
take, networks that shrink 32x32 below a pixel, wrong types, bombs, names, class counts and
``max_failures``. Each case exits 2 with one bounded sentence through ``search`` and through
``check``, with no traceback and the database exactly as it was."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from hpo32.storage import Records, make_engine
from hpo32.studies.cli import main
from tests.studies import test_bad_input
from tests.studies.test_bad_input import _dump

#: The catalogue's database holding study 'kept' (a module fixture).
kept_db = test_bad_input.kept_db


def _spec(tmp: Path, text: str | bytes, name: str = "spec.yaml") -> list[str]:
    path = tmp / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return ["--spec", str(path)]


def _params(text: str) -> str:
    """A spec whose space's params are the YAML mapping ``text`` (one line)."""
    return f"space:\n  params: {text}\n"


def _bomb(levels: int = 9) -> str:
    """A YAML alias bomb: nine references a level, a few hundred bytes for 9**levels items."""
    lines = ['a0: &a0 ["xxxxxxxx", "xxxxxxxx", "xxxxxxxx", "xxxxxxxx"]']
    for k in range(1, levels):
        refs = ", ".join([f"*a{k - 1}"] * 9)
        lines.append(f"a{k}: &a{k} [{refs}]")
    return "description:\n" + "".join(f"  {line}\n" for line in lines)


_SHRINKS = "{conv_blocks: 4, convs_per_block: 3, kernel_size: 5, padding: valid_last}"

# (id, arguments after the command given (tmp), fragment expected in the message)
CASES = [
    (
        "batch-size-zero",
        lambda t: _spec(t, _params("{batch_size: 0}")),
        "'batch_size' takes a whole number of at least 1, not 0",
    ),
    (
        "dropout-above-one",
        lambda t: _spec(t, _params("{block_dropout_1: 1.5}")),
        "'block_dropout_1' takes a number from 0 to below 1, not 1.5",
    ),
    (
        "bogus-activation",
        lambda t: _spec(t, _params("{activation: bogus}")),
        "not 'bogus'",
    ),
    (
        "bogus-activation-among-choices",
        lambda t: _spec(t, _params("{activation: {choices: [relu, bogus]}}")),
        "not 'bogus' (one of its choices)",
    ),
    (
        "seven-conv-blocks",
        lambda t: _spec(t, _params("{conv_blocks: 7}")),
        "no parameter 'filters_5', which conv_blocks 7 needs; lower conv_blocks to at most 4",
    ),
    (
        "conv-blocks-range-past-the-builder",
        lambda t: _spec(t, _params("{conv_blocks: {high: 7}}")),
        "no parameter 'filters_5'",
    ),
    (
        "conv-blocks-past-any-builder",
        lambda t: _spec(t, _params("{conv_blocks: 100}")),
        "'conv_blocks' takes a whole number from 1 to 64, not 100",
    ),
    (
        "kernel-size-zero",
        lambda t: _spec(t, _params("{kernel_size: 0}")),
        "'kernel_size' takes a whole number from 1 to 32, not 0",
    ),
    (
        "negative-learning-rate",
        lambda t: _spec(t, _params("{learning_rate: -0.01}")),
        "'learning_rate' takes a number above 0, not -0.01",
    ),
    (
        "negative-learning-rate-range",
        lambda t: _spec(t, _params("{learning_rate: {type: float, low: -1.0, high: 0.1}}")),
        "not -1.0 (its low)",
    ),
    (
        "nadam",
        lambda t: _spec(t, "epochs: 1\ntrain_limit: 300\n" + _params("{optimizer: nadam}")),
        "'optimizer' takes one of adamax, adam, adamw, sgd, rmsprop, not 'nadam'",
    ),
    (
        "batch-norm-not-boolean",
        lambda t: _spec(t, _params("{batch_norm: 'yes'}")),
        "'batch_norm' takes true or false, not 'yes'",
    ),
    (
        "unknown-family",
        lambda t: _spec(t, _params("{family: vgg}")),
        "'family' takes one of cnn, resnet, alexnet, densenet121, not 'vgg'",
    ),
    (
        "fixed-network-below-one-pixel",
        lambda t: _spec(t, _params(_SHRINKS)),
        "shrinks the 32x32 image below one pixel",
    ),
    (
        "every-searched-network-below-one-pixel",
        lambda t: _spec(
            t,
            _params(
                "{conv_blocks: 4, convs_per_block: {low: 3, high: 3}, "
                "kernel_size: {choices: [5]}, padding: valid_last}"
            ),
        ),
        "every network of the space shrinks the 32x32 image below one pixel",
    ),
    (
        "warm-start-below-one-pixel",
        lambda t: _spec(t, f"warm_start:\n  - {_SHRINKS}\n"),
        "warm_start config 1: its conv blocks shrink the 32x32 image below one pixel",
    ),
    (
        "resnet-groups-past-their-widths",
        lambda t: _spec(t, _params("{family: resnet, res_groups: {high: 6}}")),
        "no parameter 'width_5', which res_groups 6 needs",
    ),
    (
        "when-min-not-a-number",
        lambda t: _spec(
            t,
            _params("{extra: {type: int, low: 1, high: 2, when: {parent: conv_blocks, min: two}}}"),
        ),
        "min of its condition must be a finite number, not 'two'",
    ),
    (
        "infinite-bound",
        lambda t: _spec(t, _params("{label_smoothing: {high: .inf}}")),
        "'label_smoothing': high must be a finite number",
    ),
    (
        "nan-bound",
        lambda t: _spec(t, _params("{weight_decay: {low: .nan}}")),
        "'weight_decay': low must be a finite number",
    ),
    (
        "nan-fixed-value",
        lambda t: _spec(t, _params("{label_smoothing: .nan}")),
        "a fixed value must be a string, finite number or boolean",
    ),
    (
        "log-not-boolean",
        lambda t: _spec(t, _params("{learning_rate: {log: 'no'}}")),
        "log must be true or false",
    ),
    (
        "parameter-name-with-a-newline",
        lambda t: _spec(t, 'space:\n  params:\n    "a\\nb": {type: fixed, value: 1}\n'),
        "parameter name 'a\\nb' is not allowed",
    ),
    (
        "base-none-without-the-models-parameters",
        lambda t: _spec(
            t, "space:\n  base: none\n  params: {conv_blocks: {type: int, low: 1, high: 2}}\n"
        ),
        "the space has no parameter",
    ),
    (
        "val-fraction-string",
        lambda t: _spec(t, 'val_fraction: "0.2"\n'),
        "val_fraction must be a number between 0 and 1, not '0.2'; write a number without quotes",
    ),
    (
        "seed-not-a-number",
        lambda t: _spec(t, "seed: abc\n"),
        "seed must be a whole number from 0 to 2147483647, not 'abc'",
    ),
    ("negative-seed", lambda t: ["--seed", "-1"], "seed must be a whole number from 0"),
    ("budget-inf", lambda t: _spec(t, "budget: .inf\n"), "budget must be a finite duration"),
    ("budget-nan", lambda t: _spec(t, "budget: .nan\n"), "budget must be a finite duration"),
    (
        "budget-overflowing-digits",
        lambda t: _spec(t, f"budget: '{'9' * 400}h'\n"),
        "cannot read budget",
    ),
    (
        "data-dir-list",
        lambda t: _spec(t, "data_dir: [1, 2]\n"),
        "data_dir must be a folder path, not [1, 2]",
    ),
    ("epochs-float", lambda t: _spec(t, "epochs: 1.5\n"), "epochs must be a positive integer"),
    (
        "description-a-date",
        lambda t: _spec(t, "description: 2024-01-01\n"),
        "holds a date",
    ),
    ("key-not-text", lambda t: _spec(t, "1: one\n"), "key 1 in"),
    (
        "binary-spec-file",
        lambda t: _spec(t, bytes(range(256)) * 4),
        "is not a UTF-8 text file",
    ),
    (
        "spec-file-5000-deep",
        lambda t: _spec(t, "description: " + "[" * 5000 + "]" * 5000 + "\n"),
        "nests too deeply",
    ),
    (
        "spec-nested-past-the-limit",
        lambda t: _spec(t, "description: " + "[" * 40 + "]" * 40 + "\n"),
        "nests deeper than 16 levels",
    ),
    (
        "spec-file-too-large",
        lambda t: _spec(t, "# padding\n" * 120_000),
        "is larger than 1024 KiB",
    ),
    ("yaml-alias-bomb", lambda t: _spec(t, _bomb()), "is larger than 64 KiB as JSON"),
    (
        "yaml-alias-bomb-in-a-bad-value",
        lambda t: _spec(t, _bomb().replace("description:", "seed:")),
        "is larger than 64 KiB as JSON",
    ),
    (
        "long-value-quoted-briefly",
        lambda t: _spec(t, f"seed: {'x' * 60_000}\n"),
        "seed must be a whole number",
    ),
    (
        "long-key-quoted-briefly",
        lambda t: _spec(t, json.dumps({"k" * 60_000: 1}), "spec.json"),
        "unknown key 'kkkk",
    ),
    ("one-class", lambda t: ["--classes", "1"], "classes must be at least 2"),
    (
        "one-class-list",
        lambda t: _spec(t, "classes: [3]\n"),
        "classes must name at least 2 classes",
    ),
    ("max-failures-zero", lambda t: ["--max-failures", "0"], "--max-failures: must be at least 1"),
    (
        "max-failures-zero-in-spec",
        lambda t: _spec(t, "max_failures: 0\n"),
        "max-failures must be a positive integer",
    ),
    (
        "max-failures-not-a-number",
        lambda t: _spec(t, "max_failures: many\n"),
        "max_failures must be a positive integer, not 'many'",
    ),
]

#: Cases that name the study themselves (``search`` needs one; ``check`` takes one).
NAME_CASES = [
    ("name-ending-in-a-newline", "fresh\n", "study name 'fresh\\n' is not allowed"),
    ("name-of-100-plus-characters", "n" * 101, "is not allowed"),
]


def _argv(command: str, extra: list[str], study: str = "fresh") -> list[str]:
    if command == "search":
        return ["search", "--study", study, "--n-trials", "1", *extra]
    return ["check", "--study", study, *extra]


def _run(argv, tmp_path, kept_db, cifar_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO32_STORAGE", raising=False)
    monkeypatch.setenv("HPO32_DATA_DIR", str(cifar_dir))
    before = _dump(kept_db)
    code = main([*argv, "--storage", f"sqlite:///{kept_db}"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpo32: error: "), err[:2000]
    assert "Traceback" not in err
    assert len(err) < 600, f"{len(err)} characters: {err[:300]}"
    assert _dump(kept_db) == before
    assert not (tmp_path / "hpo32.db").exists()
    return err


@pytest.mark.parametrize("command", ["search", "check"])
@pytest.mark.parametrize("extra, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_spec_exits_2_with_one_sentence_and_keeps_the_database(
    command,
    extra,
    fragment,
    tmp_path,
    kept_db,
    cifar_dir,
    capsys,
    monkeypatch,
):
    err = _run(_argv(command, extra(tmp_path)), tmp_path, kept_db, cifar_dir, capsys, monkeypatch)
    assert fragment in err


@pytest.mark.parametrize("command", ["search", "check"])
@pytest.mark.parametrize(
    "study, fragment", [c[1:] for c in NAME_CASES], ids=[c[0] for c in NAME_CASES]
)
def test_bad_study_names(
    command, study, fragment, tmp_path, kept_db, cifar_dir, capsys, monkeypatch
):
    err = _run(_argv(command, [], study), tmp_path, kept_db, cifar_dir, capsys, monkeypatch)
    assert fragment in err


def test_catalogue_covers_the_issue():
    assert len(CASES) + len(NAME_CASES) >= 40


@pytest.fixture
def corrupt_db(tmp_path):
    """A database whose study 'bent' holds a spec that is no longer valid."""
    path = tmp_path / "bent.db"
    import optuna

    from hpo32.storage import optuna_storage

    url = f"sqlite:///{path}"
    optuna.create_study(study_name="bent", storage=optuna_storage(url), direction="maximize")
    Records(make_engine(url)).add_study("bent", "optuna", "cifar10", {"epochs": 1}, 60.0)
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "UPDATE hpo32_studies SET spec_json = ? WHERE name = 'bent'",
            (json.dumps({"epochs": 1, "seed": "abc", "space": {"params": {"x": [1]}}}),),
        )
    con.close()
    return path


def test_a_corrupt_stored_spec_on_resume_is_one_sentence(corrupt_db, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _dump(corrupt_db)
    code = main(["resume", "bent", "--storage", f"sqlite:///{corrupt_db}"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("hpo32: error: ") and len(err.strip().splitlines()) == 1, err
    assert "seed must be a whole number" in err
    assert _dump(corrupt_db) == before
