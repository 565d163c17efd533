"""subnet pools and address scopes

Revision ID: 5d2b8e71c0a4
Revises: 7a1e4c2d9f30
Create Date: 2026-12-01 23:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '5d2b8e71c0a4'
down_revision = '7a1e4c2d9f30'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('address_scopes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_address_scopes'))
    )
    with op.batch_alter_table('address_scopes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_address_scopes_project_id'), ['project_id'], unique=False)

    op.create_table('subnetpools',
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('default_prefixlen', sa.Integer(), nullable=False),
    sa.Column('min_prefixlen', sa.Integer(), nullable=False),
    sa.Column('max_prefixlen', sa.Integer(), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('default_quota', sa.Integer(), nullable=True),
    sa.Column('address_scope_id', sa.String(length=36), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.String(length=20), nullable=False),
    sa.Column('updated_at', sa.String(length=20), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subnetpools'))
    )
    with op.batch_alter_table('subnetpools', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subnetpools_address_scope_id'), ['address_scope_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subnetpools_project_id'), ['project_id'], unique=False)

    op.create_table('subnetpool_prefixes',
    sa.Column('subnetpool_id', sa.String(length=36), nullable=False),
    sa.Column('cidr', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['subnetpool_id'], ['subnetpools.id'], name=op.f('fk_subnetpool_prefixes_subnetpool_id_subnetpools'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subnetpool_id', 'cidr', name=op.f('pk_subnetpool_prefixes'))
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table('subnetpool_prefixes')
    with op.batch_alter_table('subnetpools', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subnetpools_project_id'))
        batch_op.drop_index(batch_op.f('ix_subnetpools_address_scope_id'))

    op.drop_table('subnetpools')
    with op.batch_alter_table('address_scopes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_address_scopes_project_id'))

    op.drop_table('address_scopes')
