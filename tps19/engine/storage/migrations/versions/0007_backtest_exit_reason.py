"""backtest trades: exit reason

Revision ID: 0007_backtest_exit_reason
Revises: 0006_protective_orders
Create Date: 2026-12-07 09:50:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sqlmodel.sql.sqltypes  # noqa: F401  (autogenerate names AutoString so)


revision: str = '0007_backtest_exit_reason'
down_revision: str | Sequence[str] | None = '0006_protective_orders'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # why each stored round trip ended (signal, stop_loss, take_profit, trailing_stop, breaker,
    # end); trades stored before this revision have none (NULL)
    with op.batch_alter_table('backtest_trades', schema=None) as batch_op:
        batch_op.add_column(sa.Column('exit_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('backtest_trades', schema=None) as batch_op:
        batch_op.drop_column('exit_reason')
