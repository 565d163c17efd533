"""HA routers: VRIDs, HA networks per project, and the VRRP state of each binding

Revision ID: 7b3e5f9a2d61
Revises: 2e9d7a4c1b58
Create Date: 2026-12-02 03:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '7b3e5f9a2d61'
down_revision = '2e9d7a4c1b58'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('routers') as batch:
        batch.add_column(sa.Column('ha_vr_id', sa.Integer(), nullable=True))
    with op.batch_alter_table('router_l3_agent_bindings') as batch:
        batch.add_column(sa.Column('ha_state', sa.String(length=16), nullable=False,
                                   server_default='standby'))
    op.create_table('ha_router_networks',
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_ha_router_networks_network_id_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', name=op.f('pk_ha_router_networks')),
    sa.UniqueConstraint('network_id', name=op.f('uq_ha_router_networks_network_id'))
    )
    op.create_table('ha_router_vrid_allocations',
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('vr_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_ha_router_vrid_allocations_network_id_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('network_id', 'vr_id', name=op.f('pk_ha_router_vrid_allocations'))
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table('ha_router_vrid_allocations')
    op.drop_table('ha_router_networks')
    with op.batch_alter_table('router_l3_agent_bindings') as batch:
        batch.drop_column('ha_state')
    with op.batch_alter_table('routers') as batch:
        batch.drop_column('ha_vr_id')
