"""security groups, rules, port bindings, address groups, allowed address pairs

Port security also defaults to true in the database (not on SQLite).

Revision ID: 9257b9fe2277
Revises: db57b8dc4f62
Create Date: 2026-12-01 14:28:27
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '9257b9fe2277'
down_revision = 'db57b8dc4f62'
branch_labels = None
depends_on = None


def _port_security_default(default: Any) -> None:
    # SQLite changes a default only by rebuilding the table, which with foreign keys on
    # would cascade into every port's rows; there the models' default applies.
    if op.get_bind().dialect.name == "sqlite":
        return
    for table in ("networks", "ports"):
        op.alter_column(table, "port_security_enabled", existing_type=sa.Boolean(),
                        existing_nullable=False, server_default=default)


def _scope_id_length(length: int) -> None:
    # A security group's member bucket scope ("<group id>:<bucket>") is longer than an id.
    with op.batch_alter_table('changelog', schema=None) as batch_op:
        batch_op.alter_column('scope_id', existing_type=sa.String(length=36 if length > 36
                                                                   else 64),
                              type_=sa.String(length=length), existing_nullable=True)


def upgrade() -> None:
    """Apply this revision."""
    _port_security_default(sa.true())
    _scope_id_length(64)
    op.create_table('addressgroups',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.String(length=20), nullable=False),
    sa.Column('updated_at', sa.String(length=20), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_addressgroups'))
    )
    with op.batch_alter_table('addressgroups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_addressgroups_project_id'), ['project_id'], unique=False)

    op.create_table('securitygroups',
    sa.Column('stateful', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.String(length=20), nullable=False),
    sa.Column('updated_at', sa.String(length=20), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_securitygroups'))
    )
    with op.batch_alter_table('securitygroups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_securitygroups_project_id'), ['project_id'], unique=False)

    op.create_table('addressgroup_addresses',
    sa.Column('address_group_id', sa.String(length=36), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['address_group_id'], ['addressgroups.id'], name=op.f('fk_addressgroup_addresses_address_group_id_addressgroups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('address_group_id', 'address', name=op.f('pk_addressgroup_addresses'))
    )
    op.create_table('default_security_groups',
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('security_group_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['security_group_id'], ['securitygroups.id'], name=op.f('fk_default_security_groups_security_group_id_securitygroups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', name=op.f('pk_default_security_groups')),
    sa.UniqueConstraint('security_group_id', name=op.f('uq_default_security_groups_security_group_id'))
    )
    op.create_table('securitygrouprules',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('security_group_id', sa.String(length=36), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('ethertype', sa.String(length=40), nullable=False),
    sa.Column('protocol', sa.String(length=40), nullable=True),
    sa.Column('port_range_min', sa.Integer(), nullable=True),
    sa.Column('port_range_max', sa.Integer(), nullable=True),
    sa.Column('remote_ip_prefix', sa.String(length=255), nullable=True),
    sa.Column('normalized_cidr', sa.String(length=64), nullable=True),
    sa.Column('remote_group_id', sa.String(length=36), nullable=True),
    sa.Column('remote_address_group_id', sa.String(length=36), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.String(length=20), nullable=False),
    sa.Column('updated_at', sa.String(length=20), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['remote_address_group_id'], ['addressgroups.id'], name=op.f('fk_securitygrouprules_remote_address_group_id_addressgroups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['remote_group_id'], ['securitygroups.id'], name=op.f('fk_securitygrouprules_remote_group_id_securitygroups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['security_group_id'], ['securitygroups.id'], name=op.f('fk_securitygrouprules_security_group_id_securitygroups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_securitygrouprules'))
    )
    with op.batch_alter_table('securitygrouprules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_securitygrouprules_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_securitygrouprules_remote_address_group_id'), ['remote_address_group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_securitygrouprules_remote_group_id'), ['remote_group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_securitygrouprules_security_group_id'), ['security_group_id'], unique=False)

    op.create_table('allowedaddresspairs',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('mac_address', sa.String(length=32), nullable=False),
    sa.Column('ip_address', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_allowedaddresspairs_port_id_ports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('port_id', 'mac_address', 'ip_address', name=op.f('pk_allowedaddresspairs'))
    )
    op.create_table('securitygroupportbindings',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('security_group_id', sa.String(length=36), nullable=False),
    sa.Column('member_bucket', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_securitygroupportbindings_port_id_ports'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['security_group_id'], ['securitygroups.id'], name=op.f('fk_securitygroupportbindings_security_group_id_securitygroups')),
    sa.PrimaryKeyConstraint('port_id', 'security_group_id', name=op.f('pk_securitygroupportbindings'))
    )
    with op.batch_alter_table('securitygroupportbindings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_securitygroupportbindings_security_group_id'), ['security_group_id'], unique=False)
        batch_op.create_index('ix_securitygroupportbindings_group_bucket', ['security_group_id', 'member_bucket'], unique=False)



def downgrade() -> None:
    """Revert this revision (each table's indexes go with it: MariaDB refuses to drop an
    index a foreign key needs)."""
    _port_security_default(None)
    op.execute("DELETE FROM changelog WHERE length(scope_id) > 36")
    _scope_id_length(36)
    op.drop_table('securitygroupportbindings')
    op.drop_table('allowedaddresspairs')
    op.drop_table('securitygrouprules')
    op.drop_table('default_security_groups')
    op.drop_table('addressgroup_addresses')
    op.drop_table('securitygroups')
    op.drop_table('addressgroups')
