"""``hpo32 dashboard`` and ``hpo32 report``: parse, resolve the settings once, delegate.

:func:`add_parsers` registers both subcommands on the ``hpo32`` parser; :func:`cmd_dashboard`
and :func:`cmd_report` run them. Both open the database read-only. User errors (bad URL,
missing database, unknown study, port in use, unwritable output) end in one sentence on
stderr and exit code 2. ``python -m hpo32.dashboards.cli`` runs them without the rest of hpo32.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from typing import Sequence

__all__ = ["EXIT_USER_ERROR", "add_parsers", "cmd_dashboard", "cmd_report", "main"]

EXIT_USER_ERROR = 2
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
_STORAGE_HELP = "database URL (default: $HPO32_STORAGE or sqlite:///hpo32.db)"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if value < 0.5:
        raise argparse.ArgumentTypeError(f"refresh must be at least 0.5 seconds, got {text}")
    return value


def add_parsers(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    storage_help: str = _STORAGE_HELP,
) -> None:
    """Adds the ``dashboard`` and ``report`` subcommands to ``subparsers`` (the object
    ``parser.add_subparsers(dest="command")`` returned)."""
    p = subparsers.add_parser(
        "dashboard",
        help="serve the web dashboard (read-only)",
        description="Serve the web dashboard over the database, "
        "opened read-only; pages refresh while searches run.",
    )
    p.add_argument("--storage", help=storage_help)
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to bind (default: {DEFAULT_HOST}, this machine only)",
    )
    p.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port (default: {DEFAULT_PORT}; 0 picks a free one)",
    )
    p.add_argument(
        "--refresh",
        type=_seconds,
        default=5.0,
        help="seconds between checks for new data (default: 5)",
    )

    p = subparsers.add_parser(
        "report",
        help="write studies' figures to one HTML file",
        description="Write the dashboard's figures for the studies "
        "into one self-contained HTML file that opens offline.",
    )
    p.add_argument("studies", nargs="+", metavar="STUDY", help="study names")
    p.add_argument(
        "--out",
        default="report.html",
        help="file to write, - for standard output (default: report.html)",
    )
    p.add_argument("--storage", help=storage_help)


def _url(arg: str | None) -> str:
    """The storage URL, validated for reading (:func:`hpo32.storage.resolve_url` with
    ``existing``): a SQLite file must exist (it need not be writable).

    Raises:
        StorageError: with the fix.
    """
    from hpo32.storage import resolve_url

    return resolve_url(arg, existing=True)


def _fail(message: str) -> int:
    print(f"hpo32: error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> str | None:
    """None when ``host:port`` can be bound, else why not (one sentence)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return f"cannot resolve host '{host}'; pass an address like 127.0.0.1."
    family, _type, _proto, _name, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            if port and "in use" in str(exc).lower():
                return f"port {port} on {host} is in use; pass another --port (0 picks one)."
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}."
    return None


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serves the dashboard until Ctrl+C; returns the exit code."""
    import logging

    from hpo32.storage import StorageError

    try:
        url = _url(args.storage)
    except StorageError as exc:
        return _fail(str(exc))
    problem = _check_port(args.host, args.port)
    if problem:
        return _fail(problem)
    from werkzeug.serving import make_server

    from hpo32.dashboards.app import create_app
    from hpo32.dashboards.data import open_engine

    try:
        engine = open_engine(url)  # resolved once, here; the app is handed the engine
    except StorageError as exc:
        return _fail(str(exc))
    app = create_app(engine, refresh_seconds=args.refresh)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per refresh
    server = make_server(args.host, args.port, app.server, threaded=True)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"hpo32 dashboard: {_display(url)} (read-only) at http://{shown}:{server.port}/ "
        "- Ctrl+C to stop",
        flush=True,
    )
    note = _journal_note(url)
    if note:
        print(f"hpo32 dashboard: note: {note}", file=sys.stderr, flush=True)
    if not _is_loopback(args.host):
        print(
            f"hpo32 dashboard: warning: listening on {args.host}: anyone who can reach "
            "this machine can read these studies.",
            file=sys.stderr,
            flush=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _journal_note(url: str) -> str | None:
    """Why a SQLite file not in WAL mode can make a writer wait, or None."""
    import sqlite3

    from hpo32.storage import sqlite_path
    from hpo32.storage.db import sqlite_read_only_uri

    path = sqlite_path(url)
    if path is None:
        return None
    try:
        con = sqlite3.connect(sqlite_read_only_uri(path), uri=True, timeout=5)
        try:
            mode = str(con.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    if mode == "wal":
        return None
    return (
        f"'{path.name}' is in {mode} journal mode, not WAL: a search writing to it waits "
        "while a page reads (a fraction of a second); any hpo32 search switches it to "
        "WAL for good."
    )


def _display(url: str) -> str:
    from hpo32.storage.db import redact_url

    return redact_url(url)


def cmd_report(args: argparse.Namespace) -> int:
    """Writes the HTML report; returns the exit code."""
    from hpo32.dashboards.report import ReportError, write_report
    from hpo32.storage import StorageError

    try:
        url = _url(args.storage)
        path = write_report(url, args.studies, args.out)
    except (StorageError, ReportError) as exc:
        return _fail(str(exc))
    if path is not None:  # with --out - the page went to standard output, alone
        size = os.path.getsize(path) / 1e6
        print(f"hpo32 report: wrote {path} ({size:.1f} MB, opens offline)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hpo32.dashboards.cli dashboard|report ...`` (the same as ``hpo32 ...``)."""
    parser = argparse.ArgumentParser(prog="python -m hpo32.dashboards.cli")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_parsers(sub)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    return {"dashboard": cmd_dashboard, "report": cmd_report}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
