"""ccxt's exchange classes, importing only the exchange asked for.

`import ccxt.pro` runs three package ``__init__`` files that import every exchange ccxt has, sync,
async and websocket (~200 modules, ~0.8 s of CPU): every headless run, desk and test child process
paid it to use one exchange. Python imports a package's ``__init__`` before any module inside it,
so importing ``ccxt.pro.cryptocom`` alone still runs them all.

Here each of the three packages (``ccxt``, ``ccxt.async_support``, ``ccxt.pro``) is entered into
``sys.modules`` from its real spec with only the statements of its ``__init__`` that do not import
an exchange (base classes, errors, precision constants, version), then the one exchange module is
imported as usual and bound on its package as the full ``__init__`` binds it. The classes are the
real ones from the real files. A package entered so completes itself — runs its whole ``__init__``
in the same module object — the first time anything not yet in it is read (``ccxt.kraken``,
``ccxt.exchanges``, ``from ccxt import *``), so code that does ``import ccxt`` afterwards sees the
whole package, as before. Exchanges outside `LEAN` complete the packages at once. The statements
kept are chosen from the ``__init__``'s syntax tree (not its text); ccxt is pinned in pyproject.toml
and tests/engine/test_ccxt_classes.py compares every class with a full import's.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any, Literal

from .ccxt_decimal import keep_decimal_context

Flavour = Literal["sync", "async", "pro"]

# the exchanges TPS19 itself connects to (venue.py: the simulated exchange speaks Crypto.com's
# protocol; Binance is the second supported venue); any other id gets the full import
LEAN = frozenset({"cryptocom", "binance"})

_PACKAGES: dict[Flavour, str] = {"sync": "ccxt", "async": "ccxt.async_support", "pro": "ccxt.pro"}
# what each flavour's exchange module needs bound on the packages above it (ccxt.pro.cryptocom
# subclasses ``ccxt.async_support.cryptocom``, read as an attribute of that package)
_CHAIN: dict[Flavour, tuple[Flavour, ...]] = {"sync": ("sync",), "async": ("async",), "pro": ("async", "pro")}

_lock = threading.RLock()
# packages entered lean and not yet completed: name -> code of their whole __init__
_partial: dict[str, Any] = {}


def exchange_class(exchange_id: str, flavour: Flavour) -> type | None:
    """ccxt's class for ``exchange_id`` (``ccxt.<id>``, ``ccxt.async_support.<id>`` or
    ``ccxt.pro.<id>``), or None if ccxt has none by that name in that flavour."""
    name = _PACKAGES[flavour]
    with _lock:
        if exchange_id in LEAN and (name not in sys.modules or name in _partial):
            try:
                for step in _CHAIN[flavour]:
                    _bind_exchange(_lean_package(_PACKAGES[step]), _PACKAGES[step], exchange_id)
            except Exception:
                # a ccxt whose layout this does not know: the whole import still works
                complete_all()
        elif exchange_id not in LEAN:
            complete_all()
        package = importlib.import_module(name)
        keep_decimal_context()
    cls = getattr(package, exchange_id, None)
    return cls if isinstance(cls, type) else None


def ccxt_base() -> ModuleType:
    """The ``ccxt`` package with at least its base names (errors, ``Exchange``, ``Precise``,
    precision constants): the whole package if it is already imported, else entered lean."""
    with _lock:
        try:
            package = _lean_package("ccxt")
        except Exception:
            complete_all()
            package = importlib.import_module("ccxt")
        keep_decimal_context()
        return package


def complete_all() -> None:
    """Run the whole ``__init__`` of every package entered lean (ccxt's state is then exactly a
    full import's)."""
    with _lock:
        # parents first, and ccxt.pro's __init__ reads ccxt.async_support's classes
        for name in ("ccxt", "ccxt.async_support", "ccxt.pro"):
            _complete(name)


def _lean_package(name: str) -> ModuleType:
    module = sys.modules.get(name)
    if module is not None:
        return module
    parent, _, child = name.rpartition(".")
    if parent:
        _lean_package(parent)
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.origin is None:
        raise ImportError(f"no package {name}")
    source = spec.loader.get_source(name) if hasattr(spec.loader, "get_source") else None
    if source is None:
        raise ImportError(f"no source for {name}")
    tree = ast.parse(source, spec.origin)
    kept = ast.Module(body=[s for s in tree.body if _is_base_statement(s, name)], type_ignores=[])
    module = importlib.util.module_from_spec(spec)
    module.__dict__["__getattr__"] = _completing_getattr(name)
    sys.modules[name] = module
    _partial[name] = compile(tree, spec.origin, "exec")
    try:
        exec(compile(kept, spec.origin, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name], _partial[name]
        raise
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def _is_base_statement(stmt: ast.stmt, package: str) -> bool:
    """An ``__init__`` statement that does not import an exchange: imports from ccxt's base
    modules, and the version."""
    if isinstance(stmt, ast.ImportFrom):
        module = stmt.module or ""
        return stmt.level == 0 and (module.startswith("ccxt.base") or module.startswith("ccxt.async_support.base"))
    if isinstance(stmt, ast.Import):
        return all(a.name.startswith("ccxt.base") for a in stmt.names)
    if isinstance(stmt, ast.Assign):
        return [ast.unparse(t) for t in stmt.targets] == ["__version__"]
    return False


def _bind_exchange(package: ModuleType, package_name: str, exchange_id: str) -> None:
    if isinstance(package.__dict__.get(exchange_id), type):
        return
    module = importlib.import_module(f"{package_name}.{exchange_id}")
    # the full __init__ does `from <package>.<id> import <id>`: the name is the class
    setattr(package, exchange_id, getattr(module, exchange_id))


def _completing_getattr(name: str) -> Any:
    def __getattr__(attr: str) -> Any:
        if attr.startswith("__") and attr != "__all__":
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        with _lock:
            if name in _partial:
                complete_all()
        module = sys.modules[name]
        if attr in module.__dict__:
            return module.__dict__[attr]
        raise AttributeError(f"module {name!r} has no attribute {attr!r}")

    return __getattr__


def _complete(name: str) -> None:
    code = _partial.pop(name, None)
    if code is None:
        return
    module = sys.modules[name]
    module.__dict__.pop("__getattr__", None)
    exec(code, module.__dict__)
