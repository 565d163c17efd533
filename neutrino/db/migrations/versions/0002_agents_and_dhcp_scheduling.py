"""agents and dhcp scheduling

Revision ID: 9c01c9d7e51f
Revises: b61507185b8f
Create Date: 2026-11-21 00:01:16.827375
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '9c01c9d7e51f'
down_revision = 'b61507185b8f'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('agents',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('agent_type', sa.String(length=255), nullable=False),
    sa.Column('binary', sa.String(length=255), nullable=False),
    sa.Column('topic', sa.String(length=255), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('configurations', sa.Text(), nullable=False),
    sa.Column('resources_synced', sa.Boolean(), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('heartbeat_timestamp', sa.Float(), nullable=False),
    sa.Column('applied_revision', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agents')),
    sa.UniqueConstraint('agent_type', 'host', name=op.f('uq_agents_agent_type_host'))
    )
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agents_heartbeat_timestamp'), ['heartbeat_timestamp'], unique=False)
        batch_op.create_index(batch_op.f('ix_agents_host'), ['host'], unique=False)

    op.create_table('changelog',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.String(length=36), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_changelog'))
    )
    with op.batch_alter_table('changelog', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_changelog_network_id'), ['network_id'], unique=False)

    op.create_table('leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=255), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_leases'))
    )
    op.create_table('dhcp_agent_bindings',
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('agent_id', sa.String(length=36), nullable=False),
    sa.Column('port_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_dhcp_agent_bindings_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_dhcp_agent_bindings_network_id_networks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_dhcp_agent_bindings_port_id_ports'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('network_id', 'agent_id', name=op.f('pk_dhcp_agent_bindings')),
    sa.UniqueConstraint('port_id', name=op.f('uq_dhcp_agent_bindings_port_id'))
    )
    with op.batch_alter_table('dhcp_agent_bindings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dhcp_agent_bindings_agent_id'), ['agent_id'], unique=False)

    with op.batch_alter_table('ports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('l2_up', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('dhcp_ready', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))



def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('ports', schema=None) as batch_op:
        batch_op.drop_column('dhcp_ready')
        batch_op.drop_column('l2_up')
    with op.batch_alter_table('dhcp_agent_bindings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dhcp_agent_bindings_agent_id'))

    op.drop_table('dhcp_agent_bindings')
    op.drop_table('leases')
    with op.batch_alter_table('changelog', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_changelog_network_id'))

    op.drop_table('changelog')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agents_host'))
        batch_op.drop_index(batch_op.f('ix_agents_heartbeat_timestamp'))

    op.drop_table('agents')
