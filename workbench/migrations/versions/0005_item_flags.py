"""item flags from the data health check

Revision ID: 0005_item_flags
Revises: 0003
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0005_item_flags'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('item_flag',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('item_id', 'kind', name='uq_item_flag_kind')
    )
    with op.batch_alter_table('item_flag', schema=None) as batch_op:
        batch_op.create_index('ix_item_flag_project_kind', ['project_id', 'kind'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('item_flag', schema=None) as batch_op:
        batch_op.drop_index('ix_item_flag_project_kind')
    op.drop_table('item_flag')
