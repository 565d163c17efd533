"""quotas: per-project limits and the rows creates lock while they count

Revision ID: 3c6f0d2a9b41
Revises: 9257b9fe2277
Create Date: 2026-12-01 18:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '3c6f0d2a9b41'
down_revision = '9257b9fe2277'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('quotas',
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('resource', sa.String(length=64), nullable=False),
    sa.Column('limit', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'resource', name=op.f('pk_quotas'))
    )
    op.create_table('quota_locks',
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('resource', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'resource', name=op.f('pk_quota_locks'))
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table('quota_locks')
    op.drop_table('quotas')
