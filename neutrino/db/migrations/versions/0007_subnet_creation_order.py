"""subnets: the order they were made in, finer than created_at's second

Revision ID: 7a1e4c2d9f30
Revises: 3c6f0d2a9b41
Create Date: 2026-12-01 20:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '7a1e4c2d9f30'
down_revision = '3c6f0d2a9b41'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('subnets') as batch:
        batch.add_column(sa.Column('created_order', sa.BigInteger(), server_default='0',
                                   nullable=False))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('subnets') as batch:
        batch.drop_column('created_order')
