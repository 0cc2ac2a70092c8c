"""``hpo32 dashboard`` / ``hpo32 report`` parsing, errors and a real server process."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hpo32.dashboards import cli

ROOT = Path(__file__).resolve().parents[2]


def _parse(argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli.add_parsers(sub)
    return parser.parse_args(argv)


def test_parsers_default_to_loopback_and_port_8050():
    args = _parse(["dashboard"])
    assert (args.host, args.port, args.storage, args.refresh) == ("127.0.0.1", 8050, None, 5.0)
    args = _parse(["report", "a", "b", "--out", "x.html", "--storage", "sqlite:///x.db"])
    assert (args.studies, args.out, args.storage) == (["a", "b"], "x.html", "sqlite:///x.db")
    with pytest.raises(SystemExit):
        _parse(["dashboard", "--port", "70000"])
    with pytest.raises(SystemExit):
        _parse(["report"])  # at least one study


def test_user_errors_exit_2_with_one_sentence(tmp_path, fixture_db, capsys):
    missing = f"sqlite:///{tmp_path}/none.db"
    assert cli.main(["dashboard", "--storage", missing]) == 2
    assert cli.main(["report", "x", "--storage", missing]) == 2
    assert cli.main(["dashboard", "--storage", "ftp://host/db"]) == 2
    assert (
        cli.main(["report", "nope", "--storage", fixture_db[0], "--out", str(tmp_path / "r.html")])
        == 2
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.main(["dashboard", "--storage", fixture_db[0], "--port", str(port)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 5 and all(line.startswith("hpo32: error: ") for line in lines)
    assert "no database at" in lines[0] and "hpo32 search" in lines[0]
    assert "no study named 'nope'" in lines[3]
    assert f"port {port}" in lines[4] and "--port" in lines[4]


def test_report_command_writes_the_file(tmp_path, fixture_db, capsys):
    out = tmp_path / "r.html"
    assert cli.main(["report", "cifar-kt", "--storage", fixture_db[0], "--out", str(out)]) == 0
    assert out.stat().st_size > 1_000_000  # plotly.js inlined
    assert "wrote" in capsys.readouterr().out


def test_dashboard_process_serves_read_only_on_loopback(fixture_db):
    """The real command in its own process: binds 127.0.0.1, answers, stops on SIGINT."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpo32.dashboards.cli",
            "dashboard",
            "--storage",
            fixture_db[0],
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        t0 = time.monotonic()
        line = proc.stdout.readline()
        started = time.monotonic() - t0
        assert "(read-only) at http://127.0.0.1:" in line, proc.stderr.read()
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200 and b"hpo32 dashboard" in resp.read()
        with urllib.request.urlopen(url + "_dash-layout", timeout=10) as resp:
            assert b"Compare datasets" in resp.read()
        assert started < 15
    finally:
        proc.send_signal(2)  # Ctrl+C
        try:
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.stderr.close()


def test_importing_the_cli_loads_nothing_heavy():
    code = (
        "import sys, hpo32.dashboards, hpo32.dashboards.cli; "
        "print(sorted(m for m in ('dash', 'plotly', 'optuna', 'sqlalchemy') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        check=True,
    )
    assert out.stdout.strip() == "[]"
