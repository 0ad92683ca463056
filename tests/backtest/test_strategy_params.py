"""Strategy parameters accept, convert and refuse exactly what they did as pydantic models.

The oracles below are the models the built-ins declared before parameters became dataclasses
(tps19/engine/strategies/params.py): every input either gives the same values of the same types,
or the same one-line refusal.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tps19.engine.ml.strategy import MLParams
from tps19.engine.strategies import ParamError, StrategyParams, create
from tps19.engine.strategies.builtin import BollingerParams, DonchianParams, RsiParams, SmaCrossParams
from tps19.engine.strategies.params import _one_line, _plain, param, validated


class _Old(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    allow_short: bool = False


class OldSma(_Old):
    fast: int = Field(10, ge=1)
    slow: int = Field(20, ge=2)


class OldRsi(_Old):
    period: int = Field(14, ge=2)
    lower: float = Field(30.0, gt=0, lt=100)
    upper: float = Field(70.0, gt=0, lt=100)
    exit: float = Field(50.0, gt=0, lt=100)


class OldDonchian(_Old):
    entry: int = Field(20, ge=1)
    exit: int = Field(10, ge=1)


class OldBollinger(_Old):
    period: int = Field(20, ge=2)
    k: float = Field(2.0, gt=0)


class OldML(_Old):
    model: str = Field(..., min_length=1)
    enter: float = Field(0.55, gt=0, lt=1)
    exit: float = Field(0.5, gt=0, lt=1)
    db: str | None = None


PAIRS: list[tuple[type[StrategyParams], type[BaseModel]]] = [
    (SmaCrossParams, OldSma), (RsiParams, OldRsi), (DonchianParams, OldDonchian), (BollingerParams, OldBollinger),
    (MLParams, OldML)]

# what a command line, a grid or a script hands over: numbers as text in every spelling, numbers,
# bools, words, nothing
VALUES = ["0", "1", "2", "5", "14", "-3", "05", "+5", " 5", "5 ", "1_0", "2.5", "5.0", "5.", ".5", "-0.5", "1e3",
          "1E-2", "99.999999999999999", "100", "0.0", "-0", "inf", "-inf", "nan", "x", "", "true", "False", "YES",
          "no", "On", "off", "t", "F", "y", "N", "2", " true", "model-7", "ä", 0, 1, 2, 5, -1, 100, 2**60, 0.5, 5.0,
          2.5, -0.0, 1e300, math.inf, math.nan, True, False, None, [], {"a": 1}]


def _old(model: type[BaseModel], data: dict, name: str = "s") -> tuple:
    try:
        return ("ok", model(**data).model_dump())
    except ValidationError as err:
        return ("refused", _one_line(name, err))


def _new(cls: type[StrategyParams], data: dict, name: str = "s") -> tuple:
    try:
        return ("ok", validated(cls, data, name).as_dict())
    except ParamError as err:
        return ("refused", str(err))


def _same(a: tuple, b: tuple) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "refused":
        return a[1] == b[1]
    # equal values of equal types (NaN equal to itself: pydantic lets a NaN float through)
    return a[1].keys() == b[1].keys() and all(
        type(x) is type(y) and (x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y)))
        for x, y in zip(a[1].values(), b[1].values(), strict=True))


@pytest.mark.parametrize("cls,old", PAIRS, ids=lambda c: c.__name__)
def test_each_value_of_each_parameter_is_taken_as_pydantic_took_it(cls, old):
    base = {"model": "m1"} if cls is MLParams else {}
    for field in cls.names():
        for v in VALUES:
            data = base | {field: v}
            assert _same(_new(cls, data), _old(old, data)), (field, v)
    for data in ({}, {"nope": 1}, base | {"nope": 1, cls.names()[-1]: "x"}, base | {"allow_short": "maybe", "x": 2}):
        assert _same(_new(cls, data), _old(old, data)), data


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.sampled_from(PAIRS), st.dictionaries(
    st.sampled_from(["allow_short", "fast", "slow", "period", "lower", "upper", "exit", "entry", "k", "model", "db",
                     "extra"]),
    st.one_of(st.integers(-10**20, 10**20), st.floats(), st.booleans(), st.none(), st.text(max_size=8),
              st.from_regex(r"\A[ +-]?[0-9_]{0,6}(\.[0-9]{0,4})?([eE][+-]?[0-9]{1,3})?\Z"),
              st.sampled_from([s for s in VALUES if isinstance(s, str)])),
    max_size=4))
def test_any_mix_of_values_is_taken_or_refused_as_pydantic_did(pair, data):
    cls, old = pair
    assert _same(_new(cls, data), _old(old, data))


def test_plain_values_need_no_pydantic_model():
    """The values commands give are validated without building a pydantic model (the point of
    the dataclasses: a backtest's start); a refusal still reads as pydantic's."""
    assert _plain(SmaCrossParams, {"fast": "8", "slow": 21, "allow_short": "true"}) == {
        "fast": 8, "slow": 21, "allow_short": True}
    assert _plain(RsiParams, {"lower": "25.5", "upper": 75, "period": "7"}) == {"lower": 25.5, "upper": 75.0, "period": 7}
    assert _plain(MLParams, {"model": "m1", "db": None}) == {"model": "m1", "db": None}
    for data in ({"fast": "0"}, {"fast": "1_0"}, {"fast": 5.0}, {"bogus": 1}):
        assert _plain(SmaCrossParams, data) is None
    with pytest.raises(ParamError, match=r"^bad parameter for strategy 'sma_cross': fast: Input should be greater than "
                                         r"or equal to 1; zz: unknown parameter$"):
        create("sma_cross", ["fast=0", "zz=3"])


def test_parameters_are_frozen_keyword_dataclasses_a_strategy_can_declare():
    class WindowParams(StrategyParams):
        window: int = param(5, ge=2, description="bars")
        label: str = param(min_length=1)

    p = validated(WindowParams, {"window": "9", "label": "a"}, "w")
    assert p == WindowParams(window=9, label="a") and p.as_dict() == {"allow_short": False, "window": 9, "label": "a"}
    assert repr(p).endswith("WindowParams(allow_short=False, window=9, label='a')")
    assert p.replace(window=3).window == 3 and p.window == 9
    with pytest.raises(AttributeError):
        p.window = 4  # type: ignore[misc]
    with pytest.raises(ParamError, match="label: Field required"):
        validated(WindowParams, {}, "w")
    spec = {s.name: s for s in WindowParams.specs()}
    assert (spec["window"].annotation, spec["window"].default, spec["window"].required) == (int, 5, False)
    assert spec["label"].required and spec["allow_short"].description == "allow short positions (target -1..1)"
