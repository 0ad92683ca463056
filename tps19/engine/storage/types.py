"""Column types: money is stored as exact decimal text, never as a binary float."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Integer, MetaData, String
from sqlalchemy.types import TypeDecorator


class DecimalText(TypeDecorator[Decimal]):
    """A Decimal stored as its canonical string (SQLite has no exact decimal type)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            if isinstance(value, float):
                raise TypeError("money must be Decimal, not float")
            value = Decimal(value)
        return format(value, "f")

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)



# SQLite's INTEGER is 64-bit, PostgreSQL's 32: epoch-ms timestamps (1.7e12) would not fit.
BigInt = BigInteger().with_variant(Integer(), "sqlite")


def widen_integers(metadata: MetaData) -> None:
    """Every plain Integer column becomes BIGINT on PostgreSQL (still INTEGER on SQLite), so a
    model (anyone's: an ``int`` field is an Integer) means the same on both backends. The
    autoincrement key stays SERIAL. Idempotent; run once every model module is imported."""
    for table in metadata.tables.values():
        auto = table.autoincrement_column
        for column in table.columns:
            if type(column.type) is Integer and column is not auto:
                column.type = BigInt
