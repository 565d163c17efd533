"""HA routers: when each binding's VRRP state last changed

Revision ID: 4c8a1d6e9f27
Revises: 7b3e5f9a2d61
Create Date: 2026-12-02 18:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '4c8a1d6e9f27'
down_revision = '7b3e5f9a2d61'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('router_l3_agent_bindings') as batch:
        batch.add_column(sa.Column('ha_state_changed_at', sa.Float(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('router_l3_agent_bindings') as batch:
        batch.drop_column('ha_state_changed_at')
