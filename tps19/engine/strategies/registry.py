"""Strategy registry: name -> class, with parameter descriptions for `tps19 strategies`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ...numbers import NumberError, parse_decimal, to_float
from .base import ParamError, Strategy

_REGISTRY: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Add a strategy class beside the built-in ones (tests, scripts)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtins(everything: bool = True) -> None:
    """The strategies TPS19 ships, listed here (the registry imports them; they never import it)."""
    from .builtin import Bollinger, DonchianBreakout, RsiReversion, SmaCross

    for cls in (SmaCross, RsiReversion, DonchianBreakout, Bollinger):
        _REGISTRY.setdefault(cls.name, cls)
    if everything:
        # the `ml` strategy (a trained model, tps19/engine/ml) brings the model registry and its
        # database layer: loaded only when it is asked for or all strategies are listed, so a
        # backtest of `sma_cross` starts without them
        from ..ml.strategy import MLStrategy

        _REGISTRY.setdefault(MLStrategy.name, MLStrategy)


def names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def get(name: str) -> type[Strategy]:
    _load_builtins(everything=False)
    if name not in _REGISTRY:
        _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ParamError(f"unknown strategy {name!r} (known: {', '.join(sorted(_REGISTRY))})") from None


def check_number(key: str, value: Any) -> None:
    """Refuse a parameter value that is a number no strategy can use: NaN, infinity, 1e999999
    (pydantic reads "inf" as a valid float, and a length of 1e20 bars overflows deep inside)."""
    if isinstance(value, bool):
        return
    try:
        if isinstance(value, str):
            t = value.strip()
            try:
                Decimal(t)
            except (InvalidOperation, ValueError):
                return  # not a number at all: the parameter's model says what it wants
            parse_decimal(t, key, max_decimals=None)
        elif isinstance(value, (int, float, Decimal)):
            to_float(value, key)
    except NumberError as err:
        raise ParamError(f"bad parameter {key}: {err.problem}") from None


def parse_kv(pairs: Iterable[str]) -> dict[str, str]:
    """['fast=5', 'slow=20'] -> {'fast': '5', 'slow': '20'} (values are validated by the model)."""
    out: dict[str, str] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not value.strip():
            raise ParamError(f"bad --param {item!r}: expected key=value")
        check_number(key, value)
        out[key] = value.strip()
    return out


def create(name: str, params: Mapping[str, Any] | Iterable[str] | None = None, *, db: Any = None) -> Strategy:
    """``db``: the database in use, handed to a strategy that reads it (``uses_database``, e.g. the
    `ml` strategy's model registry) unless a ``db`` parameter was given."""
    cls = get(name)
    if params is not None and not isinstance(params, Mapping):
        params = parse_kv(params)
    for key, value in (params or {}).items():
        check_number(key, value)
    data = dict(params or {})
    if db is not None and getattr(cls, "uses_database", False):
        data.setdefault("db", str(db))
    return cls(data)


def describe() -> list[dict[str, Any]]:
    """Each strategy with its parameters: name, type, default, description."""
    out = []
    for n in names():
        cls = _REGISTRY[n]
        fields = [
            {
                "name": spec.name,
                "type": getattr(spec.annotation, "__name__", str(spec.annotation)),
                "default": spec.default,
                "required": spec.required,
                "description": spec.description,
            }
            for spec in cls.Params.specs()
        ]
        out.append({"name": n, "description": cls.description, "params": fields})
    return out
