"""initial schema

Revision ID: b61507185b8f
Revises:
Create Date: 2026-11-20 23:21:36.931570
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'b61507185b8f'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('networks',
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('external', sa.Boolean(), nullable=False),
    sa.Column('mtu', sa.Integer(), nullable=False),
    sa.Column('network_type', sa.String(length=32), nullable=False),
    sa.Column('physical_network', sa.String(length=64), nullable=True),
    sa.Column('segmentation_id', sa.Integer(), nullable=True),
    sa.Column('availability_zone_hints', sa.Text(), nullable=False),
    sa.Column('port_security_enabled', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.String(length=20), nullable=False),
    sa.Column('updated_at', sa.String(length=20), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_networks'))
    )
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_networks_project_id'), ['project_id'], unique=False)

    op.create_table('tags',
    sa.Column('resource_id', sa.String(length=36), nullable=False),
    sa.Column('tag', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('resource_id', 'tag', name=op.f('pk_tags'))
    )
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tags_tag'), ['tag'], unique=False)

    op.create_table('ports',
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('mac_address', sa.String(length=32), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('device_id', sa.String(length=255), nullable=False),
    sa.Column('device_owner', sa.String(length=255), nullable=False),
    sa.Column('binding_host_id', sa.String(length=255), nullable=False),
    sa.Column('binding_vif_type', sa.String(length=64), nullable=False),
    sa.Column('binding_vnic_type', sa.String(length=64), nullable=False),
    sa.Column('binding_vif_details', sa.Text(), nullable=False),
    sa.Column('binding_profile', sa.Text(), nullable=False),
    sa.Column('port_security_enabled', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.String(length=20), nullable=False),
    sa.Column('updated_at', sa.String(length=20), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_ports_network_id_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ports')),
    sa.UniqueConstraint('network_id', 'mac_address', name=op.f('uq_ports_network_id_mac_address'))
    )
    with op.batch_alter_table('ports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ports_binding_host_id'), ['binding_host_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ports_device_id'), ['device_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ports_device_owner'), ['device_owner'], unique=False)
        batch_op.create_index(batch_op.f('ix_ports_network_id'), ['network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ports_project_id'), ['project_id'], unique=False)

    op.create_table('segment_allocations',
    sa.Column('network_type', sa.String(length=32), nullable=False),
    sa.Column('physical_network', sa.String(length=64), nullable=False),
    sa.Column('segmentation_id', sa.Integer(), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_segment_allocations_network_id_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('network_type', 'physical_network', 'segmentation_id', name=op.f('pk_segment_allocations'))
    )
    with op.batch_alter_table('segment_allocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_segment_allocations_network_id'), ['network_id'], unique=False)

    op.create_table('subnets',
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('cidr', sa.String(length=64), nullable=False),
    sa.Column('gateway_ip', sa.String(length=64), nullable=True),
    sa.Column('enable_dhcp', sa.Boolean(), nullable=False),
    sa.Column('ipv6_ra_mode', sa.String(length=16), nullable=True),
    sa.Column('ipv6_address_mode', sa.String(length=16), nullable=True),
    sa.Column('allocation_pools', sa.Text(), nullable=False),
    sa.Column('dns_nameservers', sa.Text(), nullable=False),
    sa.Column('host_routes', sa.Text(), nullable=False),
    sa.Column('service_types', sa.Text(), nullable=False),
    sa.Column('subnetpool_id', sa.String(length=36), nullable=True),
    sa.Column('segment_id', sa.String(length=36), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.String(length=20), nullable=False),
    sa.Column('updated_at', sa.String(length=20), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_subnets_network_id_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subnets'))
    )
    with op.batch_alter_table('subnets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subnets_network_id'), ['network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subnets_project_id'), ['project_id'], unique=False)

    op.create_table('ipallocations',
    sa.Column('subnet_id', sa.String(length=36), nullable=False),
    sa.Column('ip_address', sa.String(length=64), nullable=False),
    sa.Column('ip_key', sa.String(length=32), nullable=False),
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_ipallocations_port_id_ports'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subnet_id'], ['subnets.id'], name=op.f('fk_ipallocations_subnet_id_subnets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subnet_id', 'ip_address', name=op.f('pk_ipallocations'))
    )
    with op.batch_alter_table('ipallocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ipallocations_network_id'), ['network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ipallocations_port_id'), ['port_id'], unique=False)
        batch_op.create_index('ix_ipallocations_subnet_key', ['subnet_id', 'ip_key'], unique=True)



def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('ipallocations', schema=None) as batch_op:
        batch_op.drop_index('ix_ipallocations_subnet_key')
        batch_op.drop_index(batch_op.f('ix_ipallocations_port_id'))
        batch_op.drop_index(batch_op.f('ix_ipallocations_network_id'))

    op.drop_table('ipallocations')
    with op.batch_alter_table('subnets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subnets_project_id'))
        batch_op.drop_index(batch_op.f('ix_subnets_network_id'))

    op.drop_table('subnets')
    with op.batch_alter_table('segment_allocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_segment_allocations_network_id'))

    op.drop_table('segment_allocations')
    with op.batch_alter_table('ports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ports_project_id'))
        batch_op.drop_index(batch_op.f('ix_ports_network_id'))
        batch_op.drop_index(batch_op.f('ix_ports_device_owner'))
        batch_op.drop_index(batch_op.f('ix_ports_device_id'))
        batch_op.drop_index(batch_op.f('ix_ports_binding_host_id'))

    op.drop_table('ports')
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tags_tag'))

    op.drop_table('tags')
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_networks_project_id'))

    op.drop_table('networks')
