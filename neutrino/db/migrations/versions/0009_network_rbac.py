"""network rbac: grants of networks to projects; shared and external networks get their
`*` grants

Revision ID: 8c41f2e6b7d5
Revises: 5d2b8e71c0a4
Create Date: 2026-12-02 00:10:00
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = '8c41f2e6b7d5'
down_revision = '5d2b8e71c0a4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('networkrbacs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('object_type', sa.String(length=64), nullable=False),
    sa.Column('object_id', sa.String(length=36), nullable=False),
    sa.Column('target_project', sa.String(length=255), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['object_id'], ['networks.id'], name=op.f('fk_networkrbacs_object_id_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_networkrbacs')),
    sa.UniqueConstraint('object_id', 'target_project', 'action', name=op.f('uq_networkrbacs_object_id_target_project_action'))
    )
    with op.batch_alter_table('networkrbacs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_networkrbacs_object_id'), ['object_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_networkrbacs_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_networkrbacs_target_project'), ['target_project'], unique=False)
    # What `shared` and `router:external` meant before: granted to every project.
    networks = sa.table('networks', sa.column('id'), sa.column('project_id'),
                        sa.column('shared'), sa.column('external'))
    rbacs = sa.table('networkrbacs', sa.column('id'), sa.column('project_id'),
                     sa.column('object_type'), sa.column('object_id'),
                     sa.column('target_project'), sa.column('action'))
    conn = op.get_bind()
    grants = []
    for net_id, project, shared, external in conn.execute(sa.select(
            networks.c.id, networks.c.project_id, networks.c.shared, networks.c.external)):
        for wanted, action in ((shared, 'access_as_shared'), (external, 'access_as_external')):
            if wanted:
                grants.append({'id': str(uuid.uuid4()), 'project_id': project,
                               'object_type': 'network', 'object_id': net_id,
                               'target_project': '*', 'action': action})
    if grants:
        op.bulk_insert(rbacs, grants)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('networkrbacs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_networkrbacs_target_project'))
        batch_op.drop_index(batch_op.f('ix_networkrbacs_project_id'))
        batch_op.drop_index(batch_op.f('ix_networkrbacs_object_id'))

    op.drop_table('networkrbacs')
