"""The layering rule, checked on the source: the engine knows a ccxt venue at some URLs, never the
simulator that may be serving them, nor the screen that may be drawing it; widgets draw state and
never talk to a venue. Imports are read with ``ast`` so lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "tps19"

FORBIDDEN = {
    "engine": ("tps19.simex", "textual", "tps19.desk"),
    # The desk screen and its panes post messages to the app and draw what they are given: they
    # never import the app (that cycle made the app and the screen one unit).
    "desk/screens": ("tps19.desk.app",),
    "desk/widgets": ("ccxt", "tps19.desk.app", "tps19.desk.screens"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, at any depth; ``module`` is the
    file's own dotted name (for relative imports), by default from its place under tps19/."""
    module = module or _module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # `from . import simex` names the module in the alias, not in `module`
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def violations(layer: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for line, name in imported_modules(path):
            for prefix in FORBIDDEN[layer]:
                if name == prefix or name.startswith(prefix + "."):
                    bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {name}")
    return bad


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    assert violations(layer) == []


def test_the_check_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    # The rule is only as good as its parser: function-level and relative imports must count.
    probe = tmp_path / "probe.py"
    probe.write_text("import ccxt\ndef f():\n    from ..simex import SimExchange\n    from .. import desk\n"
                     "    import textual.app\n", encoding="utf-8")
    names = [name for _, name in imported_modules(probe, "tps19.engine.probe")]
    assert names == ["ccxt", "tps19.simex", "tps19.simex.SimExchange", "tps19", "tps19.desk", "textual.app"]


# -- the desk wing: only the entry points open it ------------------------------------------------

DESK_OPENERS = ("tps19.cli", "tps19.run", "tps19.desk")


def desk_importers() -> list[str]:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        if any(module == p or module.startswith(p + ".") for p in DESK_OPENERS):
            continue
        for line, name in imported_modules(path):
            if name == "tps19.desk" or name.startswith("tps19.desk."):
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {name}")
    return bad


def test_only_the_cli_and_run_open_the_desk() -> None:
    assert desk_importers() == []


# -- no import circles ---------------------------------------------------------------------------


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name (a package by its __init__)."""
    return {_module_name_under(path, root): path for path in sorted(root.rglob("*.py"))}


def _module_name_under(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_edges(path: Path, module: str, known: set[str]) -> set[str]:
    """The modules of ``known`` that the file imports, at any depth (in functions, under
    TYPE_CHECKING). ``from pkg import name`` is an edge to ``pkg.name`` when that is a module,
    else to ``pkg`` (its __init__); ``import a.b`` is an edge to ``a.b``."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    edges: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            edges |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:
                    edges.add(sub)
                elif target in known:
                    edges.add(target)
    edges.discard(module)
    return edges


def import_circles(root: Path = ROOT) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    files = module_files(root)
    known = set(files)
    graph = {m: sorted(import_edges(p, m, known)) for m, p in files.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(circles)


def test_no_import_circles_in_the_package() -> None:
    assert import_circles() == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_from_package_import_is_an_edge_to_the_module_or_the_face(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "__init__.py": "",
        "sub/__init__.py": "VALUE = 1\n",
        "sub/mod.py": "",
        "user.py": "from .sub import mod, VALUE\nfrom pkg.sub.mod import thing\ndef f():\n    import pkg.sub\n",
    })
    known = set(module_files(root))
    edges = import_edges(root / "user.py", "pkg.user", known)
    assert edges == {"pkg.sub.mod", "pkg.sub"}
    # `from .sub import VALUE` alone reaches the face only
    (root / "user.py").write_text("from .sub import VALUE\n", encoding="utf-8")
    assert import_edges(root / "user.py", "pkg.user", known) == {"pkg.sub"}


def test_the_circle_check_finds_circles_in_functions_and_under_type_checking(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "__init__.py": "",
        "a.py": "def f():\n    from . import b\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import C\n",
        "c.py": "from .a import f\n",
        "d.py": "from . import a\n",
    })
    assert import_circles(root) == [["pkg.a", "pkg.b", "pkg.c"]]
