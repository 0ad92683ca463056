"""model lifecycle: lineage of each model, promotions and refusals with their evidence

Revision ID: 0008_model_lifecycle
Revises: 0007_backtest_exit_reason
Create Date: 2026-12-07 09:55:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sqlmodel.sql.sqltypes  # noqa: F401  (autogenerate names AutoString so)

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = '0008_model_lifecycle'
down_revision: str | Sequence[str] | None = '0007_backtest_exit_reason'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('ml_models', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lineage', sa.JSON(), nullable=True))
    op.create_table('ml_promotions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_ms', BIG, nullable=False),
    sa.Column('champion', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('challenger', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('applied', sa.Boolean(), nullable=False),
    sa.Column('p_value', sa.Float(), nullable=False),
    sa.Column('pairs', BIG, nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ml_promotions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ml_promotions_champion'), ['champion'], unique=False)
        batch_op.create_index(batch_op.f('ix_ml_promotions_challenger'), ['challenger'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ml_promotions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ml_promotions_challenger'))
        batch_op.drop_index(batch_op.f('ix_ml_promotions_champion'))
    op.drop_table('ml_promotions')
    with op.batch_alter_table('ml_models', schema=None) as batch_op:
        batch_op.drop_column('lineage')
