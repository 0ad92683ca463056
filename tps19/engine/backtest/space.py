"""A search space for ``optimize --search tpe``, written in the grid's own syntax.

``--grid`` items mean, for a sampler:

* ``key=a:b:step`` -- integers from a to b (inclusive) by step when a, b and step are integers,
  otherwise floats from a to b on multiples of step from a;
* ``key=a:b`` -- every integer from a to b when both are integers, otherwise any float in [a, b];
* ``key=x,y,z`` -- one of those choices (numbers or true/false).

No optuna here: the space is checked (and its size known) before the study and its imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..strategies import ParamError, get
from .optimize import parse_grid


@dataclass(frozen=True)
class Dimension:
    """One parameter's range: ``kind`` is "int", "float" (``step`` None: continuous) or "choice"."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def size(self) -> float:
        """How many values it holds (``math.inf`` for a continuous range)."""
        if self.kind == "choice":
            return len(self.choices)
        if self.step is None:
            return math.inf if self.high > self.low else 1
        return math.floor((self.high - self.low) / self.step + 1e-9) + 1

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.step is None:
            return f"{self.kind} in [{self.low:g}, {self.high:g}]"
        return f"{self.kind} {self.low:g}..{self.high:g} step {self.step:g}"


def parse_space(strategy: str, items: list[str]) -> dict[str, Dimension]:
    """The dimensions of ``--grid`` items for ``strategy``; ParamError on bad syntax or unknown keys."""
    values = parse_grid(items)  # the grid's checks and messages (syntax, numbers, size)
    unknown = set(values) - set(get(strategy).Params.names())
    if unknown:
        raise ParamError(f"unknown parameter(s) for {strategy!r}: {', '.join(sorted(unknown))}")
    space: dict[str, Dimension] = {}
    for item in items:
        key, _, spec = item.partition("=")
        key = key.strip().replace("-", "_")
        if ":" not in spec:
            space[key] = Dimension(key, "choice", choices=tuple(dict.fromkeys(values[key])))
            continue
        parts = [p.strip() for p in spec.split(":")]
        ints = all(p.lstrip("-").isdigit() for p in parts)
        low, high = float(parts[0]), float(parts[1])
        if len(parts) == 3:
            step = float(parts[2])
            # the grid's last value: high rounded down onto the steps (what the sampler can reach)
            high = float(values[key][-1])
            space[key] = Dimension(key, "int" if ints else "float", low, high, step)
        elif ints:
            space[key] = Dimension(key, "int", low, high, 1.0)
        else:
            space[key] = Dimension(key, "float", low, high, None)
    return space


def space_size(space: dict[str, Dimension]) -> float:
    """How many parameter sets the space holds (``math.inf`` with a continuous range)."""
    return math.prod(d.size for d in space.values()) if space else 1


def check_trials(space: dict[str, Dimension], trials: int) -> None:
    """Refuse a study that asks for more distinct sets than a discrete space holds (said before the
    bars are loaded or a progress bar drawn)."""
    size = space_size(space)
    if trials > size:
        raise ParamError(f"--trials {trials} is more than the {int(size)} parameter sets of this space: "
                         "search it all with the grid (no --search tpe), or widen the ranges")
