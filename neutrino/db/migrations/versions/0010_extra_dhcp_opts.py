"""extra dhcp opts: DHCP options of single ports

Revision ID: 2e9d7a4c1b58
Revises: 8c41f2e6b7d5
Create Date: 2026-12-02 00:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '2e9d7a4c1b58'
down_revision = '8c41f2e6b7d5'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('extradhcpopts',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('opt_name', sa.String(length=64), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('opt_value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_extradhcpopts_port_id_ports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('port_id', 'opt_name', 'ip_version', name=op.f('pk_extradhcpopts'))
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table('extradhcpopts')
