"""The structure's habits, read from the source with ``ast``: no function over 100 lines, and
no SQL in ``dashboards/`` or ``studies/`` (``storage/`` owns every table and every query; an
import of sqlalchemy under ``if TYPE_CHECKING:``, to name the engine storage hands out in an
annotation, runs nothing and is allowed)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The repository's folders and the subpackage of hpo32 each one is (setup.cfg's package_dir).
PACKAGES = {
    "hpo32": "hpo32",
    "search": "hpo32.search",
    "studies": "hpo32.studies",
    "storage": "hpo32.storage",
    "dashboards": "hpo32.dashboards",
}
MAX_FUNCTION_LINES = 100
SQL_KEYWORDS = ("SELECT ", "UPDATE ", "INSERT INTO", "DELETE FROM")
#: Known exceptions, each with its reason; the tests fail once one is no longer needed, so
#: that the entry goes with the fix.
LONG_FUNCTIONS_ALLOWED: dict[str, str] = {}
SQL_ALLOWED: dict[str, str] = {}


def _modules(folders: tuple[str, ...] = tuple(PACKAGES)) -> Iterator[tuple[str, ast.Module]]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((PACKAGES[folder], *parts))
            yield name, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _functions(
    node: ast.AST, prefix: str
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}.{child.name}", child
            yield from _functions(child, f"{prefix}.{child.name}")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}.{child.name}")
        else:
            yield from _functions(child, prefix)


def _long_functions() -> dict[str, int]:
    found = {}
    for module, tree in _modules():
        for name, fn in _functions(tree, module):
            lines = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                found[name] = lines
    return found


def _type_only(tree: ast.Module) -> set[int]:
    """The ids of the nodes under ``if TYPE_CHECKING:`` (names for annotations, never run)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and (
            (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        ):
            inside.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return inside


def _sql_in(tree: ast.Module) -> list[str]:
    """Imports of sqlalchemy (but those only for annotations) and SQL statements in strings."""
    found = []
    type_only = _type_only(tree)
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] == "sqlalchemy"
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == (
            "sqlalchemy"
        ):
            found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [f"line {node.lineno}: {k!r}" for k in SQL_KEYWORDS if k in node.value]
    return found


def test_the_package_is_found():
    names = {name for name, _ in _modules()}
    assert {"hpo32", "hpo32.search.space", "hpo32.studies.cli.entry", "hpo32.storage.db"} <= names


def test_no_function_is_over_100_lines():
    found = _long_functions()
    over = {n: lines for n, lines in found.items() if n not in LONG_FUNCTIONS_ALLOWED}
    assert not over, "functions over 100 lines (split them): " + ", ".join(
        f"{n} ({lines} lines)" for n, lines in sorted(over.items())
    )
    stale = set(LONG_FUNCTIONS_ALLOWED) - set(found)
    assert not stale, f"no longer over 100 lines, drop from LONG_FUNCTIONS_ALLOWED: {stale}"


def test_no_sql_outside_storage():
    found = {}
    for module, tree in _modules(("dashboards", "studies")):
        if hits := _sql_in(tree):
            found[module] = hits
    unexpected = {m: hits for m, hits in found.items() if m not in SQL_ALLOWED}
    assert not unexpected, "SQL outside storage/ (move it to hpo32.storage): " + "; ".join(
        f"{m}: {', '.join(hits)}" for m, hits in sorted(unexpected.items())
    )
    stale = set(SQL_ALLOWED) - set(found)
    assert not stale, f"no SQL left there, drop from SQL_ALLOWED: {stale}"


def test_the_sql_check_sees_imports_and_statements():
    tree = ast.parse(
        "import sqlalchemy as sa\nfrom sqlalchemy.exc import IntegrityError\n"
        "q = f'DELETE FROM t WHERE x = {1}'\n"
    )
    assert len(_sql_in(tree)) == 3
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sqlalchemy as sa\n"
    assert _sql_in(ast.parse(typed)) == []
    assert _sql_in(ast.parse("'''Select one trial; update the view.'''")) == []
