"""The shape of the house: imports go one way, no private names cross modules, short functions.

These read the source (``ast``), so they hold for imports made inside
functions too: a lazy import that closes a circle is still a circle.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "poolcli"
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) for every import in the module, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
            if target.startswith("poolcli"):
                # "from . import x" / "from .pkg import mod" import modules
                subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
                found.append((target, [n for n in names if f"{target}.{n}" not in MODULES], node.lineno))
                found += [(s, [], node.lineno) for s in subs]
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("poolcli")]
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        for target, _, _ in _imports(name, path):
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    return graph


def test_no_import_circle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_no_private_names_imported_across_modules():
    bad = []
    for name, path in MODULES.items():
        for target, names, line in _imports(name, path):
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    bad.append(f"{path.name}:{line} imports {n} from {target}")
    assert bad == []


def _function_lines(node: ast.AST) -> int:
    body = node.body  # type: ignore[attr-defined]
    start = body[0].lineno
    if isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) and len(body) > 1:
        start = body[1].lineno  # docstrings do not count
    return node.end_lineno - start + 1  # type: ignore[attr-defined]


def test_no_function_over_80_lines():
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _function_lines(node) > MAX_FUNCTION_LINES:
                long.append(f"{name}.{node.name}: {_function_lines(node)} lines")
    assert long == []


def test_cli_under_500_lines():
    assert len((PKG / "cli.py").read_text(encoding="utf-8").splitlines()) < 500


def test_numeric_cores_import_no_io_or_ui_library():
    cores = [m for m in MODULES if m.startswith("poolcli.pooling") or m in (
        "poolcli.filters", "poolcli.kernels", "poolcli._bands", "poolcli._checks", "poolcli._threads",
        "poolcli.invariance")]
    for m in cores:
        text = MODULES[m].read_text(encoding="utf-8")
        for lib in ("PIL", "typer", "rich", "click"):
            assert f"import {lib}" not in text and f"from {lib}" not in text, (m, lib)


def test_a_run_imports_no_help_renderer(tmp_path):
    """A run that prints no help does not import Typer's help renderer (``typer.rich_utils`` pulls in
    ``rich.markdown`` and ``markdown_it``: 30 ms of every run); help still gets poolcli's table (names whole)."""
    from PIL import Image

    Image.new("L", (8, 8), 90).save(tmp_path / "a.png")
    code = (
        "import sys\n"
        "from poolcli.cli import main\n"
        f"try:\n    main(['run', {str(tmp_path / 'a.png')!r}, '-o', {str(tmp_path / 'out')!r}, '-q'])\n"
        "except SystemExit as e:\n    print('EXIT', e.code)\n"
        "print('LOADED', [m for m in ('typer.rich_utils', 'rich.markdown') if m in sys.modules])\n"
        "main(['run', '--help'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "80"})
    assert "EXIT 0" in proc.stdout and "LOADED []" in proc.stdout, proc.stdout[-800:] + proc.stderr[-2000:]
    assert "--count-include-pad" in proc.stdout  # the option name whole at 80 columns: _HelpTable was used


def test_help_path_imports_no_numpy():
    """``poolcli --help`` and ``poolcli run --help`` load neither NumPy nor Pillow (start-up time)."""
    code = (
        "import sys\n"
        "from poolcli.cli import main\n"
        "try:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('numpy', 'PIL', 'scipy') if m in sys.modules]\n"
        "print('LOADED', bad)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "LOADED []" in proc.stdout, proc.stdout[-500:] + proc.stderr[-2000:]
