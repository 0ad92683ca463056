"""The layering rule, checked on the source: the engine knows a ccxt venue at some URLs, never the
simulator that may be serving them, nor the screen that may be drawing it; widgets draw state and
never talk to a venue. Imports are read with ``ast`` so lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "tps19"

FORBIDDEN = {
    "engine": ("tps19.simex", "textual", "tps19.screens", "tps19.widgets"),
    # The desk screen and its panes post messages to the app and draw what they are given: they
    # never import the app (that cycle made the app and the screen one unit).
    "screens": ("tps19.app",),
    "widgets": ("ccxt", "tps19.app", "tps19.screens"),
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
    probe.write_text("import ccxt\ndef f():\n    from ..simex import SimExchange\n    from .. import widgets\n"
                     "    import textual.app\n", encoding="utf-8")
    names = [name for _, name in imported_modules(probe, "tps19.engine.probe")]
    assert names == ["ccxt", "tps19.simex", "tps19.simex.SimExchange", "tps19", "tps19.widgets", "textual.app"]
