"""changelog scopes: a kind and an id instead of a network id

Revision ID: 3c5d7e9f0a1b
Revises: 9c01c9d7e51f
Create Date: 2026-12-01 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '3c5d7e9f0a1b'
down_revision = '9c01c9d7e51f'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision: every entry about a network keeps it as its scope."""
    with op.batch_alter_table('changelog', schema=None) as batch_op:
        batch_op.drop_index('ix_changelog_network_id')
        batch_op.alter_column('network_id', new_column_name='scope_id',
                              existing_type=sa.String(length=36), existing_nullable=True)
        batch_op.add_column(sa.Column('scope_kind', sa.String(length=32), nullable=True))
    op.execute("UPDATE changelog SET scope_kind = 'network' WHERE scope_id IS NOT NULL")
    with op.batch_alter_table('changelog', schema=None) as batch_op:
        batch_op.create_index('ix_changelog_scope', ['scope_kind', 'scope_id'], unique=False)


def downgrade() -> None:
    """Revert this revision (entries of other scopes lose theirs)."""
    op.execute("UPDATE changelog SET scope_id = NULL WHERE scope_kind != 'network'")
    with op.batch_alter_table('changelog', schema=None) as batch_op:
        batch_op.drop_index('ix_changelog_scope')
        batch_op.drop_column('scope_kind')
        batch_op.alter_column('scope_id', new_column_name='network_id',
                              existing_type=sa.String(length=36), existing_nullable=True)
    with op.batch_alter_table('changelog', schema=None) as batch_op:
        batch_op.create_index('ix_changelog_network_id', ['network_id'], unique=False)
