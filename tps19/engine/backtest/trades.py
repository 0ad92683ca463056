"""A backtest's fills and trades, kept as columns (numpy arrays, one row per fill or trade).

A million-bar run makes tens of thousands of trades: the metrics, the JSON output and the
database read the columns directly; ``Fill``/``Trade`` objects are made only for the rows a
caller iterates over or indexes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from ..protection import EXIT_REASONS


@dataclass
class Fill:
    bar: int
    ts: int
    side: str  # buy | sell
    units: float
    price: float
    fee: float
    reason: str = "signal"  # a closing fill's exit reason (protection.EXIT_REASONS); FillTable rows: signal


@dataclass
class Trade:
    side: str  # long | short
    entry_bar: int
    entry_ts: int
    entry_price: float  # average fill price of the increases
    units: float  # largest absolute position held
    exit_bar: int | None = None
    exit_ts: int | None = None
    exit_price: float | None = None  # average fill price of the reductions (open trades: the last close)
    pnl: float = 0.0  # net of fees (open trades: marked at the last close)
    return_pct: float = 0.0  # pnl / entry cost
    fees: float = 0.0
    open: bool = False
    exit_reason: str = "signal"  # protection.EXIT_REASONS: signal, stop_loss, take_profit, trailing_stop, breaker, end
    # bookkeeping of the step-by-step simulator
    _in_units: float = 0.0
    _in_value: float = 0.0
    _out_units: float = 0.0
    _out_value: float = 0.0
    _cash_flow: float = 0.0

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


_I8, _I64, _F8 = np.dtype(np.int8), np.dtype(np.int64), np.dtype(np.float64)


class _Columns:
    """A sequence of rows whose columns are the (dataclass) fields: ``_row(i)`` makes row i."""

    def _row(self, i: int) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(getattr(self, fields(self)[0].name))  # type: ignore[arg-type]

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._row(j) for j in range(*i.indices(len(self)))]
        return self._row(i)

    def __iter__(self) -> Iterator[Any]:
        return (self._row(j) for j in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Columns | list | tuple):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def concat(cls, parts: Sequence[Any]) -> Any:
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts] or [np.zeros(0)])  # type: ignore[call-arg,arg-type]
                     for f in fields(cls)))  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class FillTable(_Columns, Sequence[Fill]):
    """Fills in time order; ``side`` is +1 buy, -1 sell."""

    bar: np.ndarray
    ts: np.ndarray
    side: np.ndarray
    units: np.ndarray
    price: np.ndarray
    fee: np.ndarray

    def _row(self, i: int) -> Fill:
        return Fill(int(self.bar[i]), int(self.ts[i]), "buy" if self.side[i] > 0 else "sell",
                    float(self.units[i]), float(self.price[i]), float(self.fee[i]))

    @classmethod
    def from_fills(cls, fills: Sequence[Fill]) -> FillTable:
        return cls(np.array([f.bar for f in fills], dtype=_I64), np.array([f.ts for f in fills], dtype=_I64),
                   np.array([1 if f.side == "buy" else -1 for f in fills], dtype=_I8),
                   np.array([f.units for f in fills], dtype=_F8), np.array([f.price for f in fills], dtype=_F8),
                   np.array([f.fee for f in fills], dtype=_F8))


@dataclass(frozen=True, eq=False)
class TradeTable(_Columns, Sequence[Trade]):
    """Round trips in entry order; ``side`` is +1 long, -1 short. An open trade (the last one at
    most) has ``exit_bar`` and ``exit_ts`` -1 and its ``exit_price`` is the last close it is
    marked at."""

    side: np.ndarray
    entry_bar: np.ndarray
    entry_ts: np.ndarray
    entry_price: np.ndarray
    units: np.ndarray
    exit_bar: np.ndarray
    exit_ts: np.ndarray
    exit_price: np.ndarray
    pnl: np.ndarray
    return_pct: np.ndarray
    fees: np.ndarray
    open: np.ndarray
    exit_reason: np.ndarray  # int8 code into protection.EXIT_REASONS (an open trade: "end")

    def _row(self, i: int) -> Trade:
        is_open = bool(self.open[i])
        return Trade(
            side="long" if self.side[i] > 0 else "short", entry_bar=int(self.entry_bar[i]),
            entry_ts=int(self.entry_ts[i]), entry_price=float(self.entry_price[i]), units=float(self.units[i]),
            exit_bar=None if is_open else int(self.exit_bar[i]), exit_ts=None if is_open else int(self.exit_ts[i]),
            exit_price=float(self.exit_price[i]), pnl=float(self.pnl[i]), return_pct=float(self.return_pct[i]),
            fees=float(self.fees[i]), open=is_open, exit_reason=EXIT_REASONS[int(self.exit_reason[i])],
        )

    @property
    def closed(self) -> np.ndarray:
        """Mask of the closed trades (the ones trade statistics count)."""
        return ~self.open

    @classmethod
    def from_trades(cls, trades: Sequence[Trade]) -> TradeTable:
        def col(name: str, dtype: np.dtype[Any]) -> np.ndarray:
            return np.array([getattr(t, name) for t in trades], dtype=dtype)

        return cls(
            np.array([1 if t.side == "long" else -1 for t in trades], dtype=_I8), col("entry_bar", _I64),
            col("entry_ts", _I64), col("entry_price", _F8), col("units", _F8),
            np.array([-1 if t.exit_bar is None else t.exit_bar for t in trades], dtype=_I64),
            np.array([-1 if t.exit_ts is None else t.exit_ts for t in trades], dtype=_I64),
            np.array([np.nan if t.exit_price is None else t.exit_price for t in trades], dtype=_F8),
            col("pnl", _F8), col("return_pct", _F8), col("fees", _F8), np.array([t.open for t in trades], dtype=bool),
            np.array([EXIT_REASONS.index(t.exit_reason) for t in trades], dtype=_I8),
        )

    def reason_counts(self) -> dict[str, int]:
        """Closed trades per exit reason (every reason listed, 0 where none)."""
        counts = np.bincount(self.exit_reason[~self.open].astype(np.int64), minlength=len(EXIT_REASONS))
        return {r: int(c) for r, c in zip(EXIT_REASONS, counts.tolist(), strict=False) if r != "end"}
