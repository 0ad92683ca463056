"""Strategy parameters: frozen dataclasses, validated with pydantic's rules and messages.

A strategy's ``Params`` subclasses :class:`StrategyParams` (it becomes a frozen, keyword-only
dataclass on its own) and declares each field with :func:`param`::

    class SmaCrossParams(StrategyParams):
        fast: int = param(10, ge=1, description="fast SMA length (bars)")

Why not a pydantic model: importing pydantic and building a model's validator cost ~60 ms of CPU
at every start of a short backtest (~a fifth of the whole process). :func:`validated` accepts
the plain values a command line or a script gives (an ``int``, ``"20"``, ``"2.5"``, ``"true"``)
itself, only where pydantic would accept them and give the same value; anything else (a bad
value, an unknown key, ``"1_000"``, ``5.0`` for an int) is handed to a pydantic model built from
the same fields, so what is accepted, the values and every error message are pydantic's, as
they were when the parameters were pydantic models. tests/backtest/test_strategy_params.py
checks the first path against the second.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, dataclass_transform, overload

T = TypeVar("T")
P = TypeVar("P", bound="StrategyParams")

CONSTRAINTS = ("ge", "gt", "le", "lt", "min_length")
_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,14})")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?")
# the strings pydantic reads as a bool, compared in lower case (its documented set)
_BOOL = {"1": True, "on": True, "t": True, "true": True, "y": True, "yes": True,
         "0": False, "off": False, "f": False, "false": False, "n": False, "no": False}
_SAFE_INT = 2**53  # beyond it (an int for a float field, a huge length) pydantic decides


class ParamError(ValueError):
    """A bad strategy name or parameter, worded as one line."""


@overload
def param(default: T, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
          lt: float | None = None, min_length: int | None = None, description: str = "") -> T: ...
@overload
def param(*, ge: float | None = None, gt: float | None = None, le: float | None = None,
          lt: float | None = None, min_length: int | None = None, description: str = "") -> Any: ...
def param(default: Any = dataclasses.MISSING, *, ge: float | None = None, gt: float | None = None,
          le: float | None = None, lt: float | None = None, min_length: int | None = None,
          description: str = "") -> Any:
    """A parameter field: its default (none: required), bounds as pydantic's ``Field`` takes them."""
    limits = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt), ("min_length", min_length))
              if v is not None}
    return dataclasses.field(default=default, metadata={"limits": limits, "description": description})


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One declared parameter, as `tps19 strategies` lists it."""

    name: str
    annotation: Any
    default: Any
    required: bool
    description: str
    limits: Mapping[str, Any]


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(param,))
@dataclasses.dataclass(frozen=True, kw_only=True)
class StrategyParams:
    """Typed parameters; every built-in adds its own fields with defaults (unknown keys refused)."""

    allow_short: bool = param(False, description="allow short positions (target -1..1)")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)

    @classmethod
    def specs(cls) -> list[ParamSpec]:
        hints = typing.get_type_hints(cls)
        return [ParamSpec(f.name, hints[f.name], None if f.default is dataclasses.MISSING else f.default,
                          f.default is dataclasses.MISSING, f.metadata.get("description", ""),
                          f.metadata.get("limits", {}))
                for f in dataclasses.fields(cls)]

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self: P, **changes: Any) -> P:
        """A copy with ``changes`` (not validated: the strategy built from it validates)."""
        return dataclasses.replace(self, **changes)


def validated(cls: type[P], data: Mapping[str, Any], strategy: str) -> P:
    """``cls`` from ``data``; ParamError (one line naming ``strategy``) when pydantic would refuse it."""
    plain = _plain(cls, data)
    if plain is not None:
        return cls(**plain)
    from pydantic import ValidationError

    try:
        model = _pydantic_model(cls)(**data)
    except ValidationError as err:
        raise ParamError(_one_line(strategy, err)) from None
    return cls(**{name: getattr(model, name) for name in cls.names()})


def _plain(cls: type[StrategyParams], data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The validated values when every given value is one pydantic surely accepts as this one;
    None when in any doubt (pydantic then decides and words the refusal)."""
    specs = _specs(cls)
    if not set(data) <= specs.keys():
        return None
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        if name not in data:
            if spec.required:
                return None
            continue  # the default, not validated (as pydantic does)
        value = _plain_value(spec.annotation, data[name])
        if value is _DOUBT or not _within(value, spec.limits):
            return None
        out[name] = value
    return out


_DOUBT = object()


def _plain_value(kind: Any, v: Any) -> Any:
    t = type(v)
    if kind is bool:
        if t is bool:
            return v
        if t is str:
            return _BOOL.get(v.lower(), _DOUBT)
        return _DOUBT
    if kind is int:
        if t is int and -_SAFE_INT < v < _SAFE_INT:
            return v
        if t is str and _INT.fullmatch(v):
            return int(v)
        return _DOUBT
    if kind is float:
        if t is float and math.isfinite(v):
            return v
        if t is int and -_SAFE_INT < v < _SAFE_INT:
            return float(v)
        if t is str and _FLOAT.fullmatch(v):
            return float(v)  # correctly rounded, as pydantic's parser
        return _DOUBT
    if kind is str or kind == str | None:
        return v if t is str or (v is None and kind is not str) else _DOUBT
    return _DOUBT


def _within(v: Any, limits: Mapping[str, Any]) -> bool:
    if v is None:  # an optional parameter left out: bounds apply to a value
        return True
    for key, bound in limits.items():
        ok = (v >= bound if key == "ge" else v > bound if key == "gt" else v <= bound if key == "le"
              else v < bound if key == "lt" else len(v) >= bound)
        if not ok:
            return False
    return True


_SPECS: dict[type[StrategyParams], dict[str, ParamSpec]] = {}
_MODELS: dict[type[StrategyParams], Any] = {}


def _specs(cls: type[StrategyParams]) -> dict[str, ParamSpec]:
    if cls not in _SPECS:
        _SPECS[cls] = {s.name: s for s in cls.specs()}
    return _SPECS[cls]


def _pydantic_model(cls: type[StrategyParams]) -> Any:
    """The pydantic model the parameters were before: the same fields, bounds and refusals."""
    if cls not in _MODELS:
        from pydantic import ConfigDict, Field, create_model

        fields: dict[str, Any] = {}
        for s in _specs(cls).values():
            kw: dict[str, Any] = {"default": ... if s.required else s.default, "description": s.description or None}
            fields[s.name] = (s.annotation, Field(**kw, **s.limits))
        _MODELS[cls] = create_model(cls.__name__, __config__=ConfigDict(extra="forbid", frozen=True), **fields)
    return _MODELS[cls]


def _one_line(name: str, err: Any) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e.get("loc", ())) or "params"
        msg = e.get("msg", "invalid")
        if e.get("type") == "extra_forbidden":
            msg = "unknown parameter"
        parts.append(f"{loc}: {msg}")
    return f"bad parameter for strategy {name!r}: " + "; ".join(parts)
