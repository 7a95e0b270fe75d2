"""guidelines: versioned per-project labeling guidelines; annotations record the version

Revision ID: 0003
Revises: 0002_sessions
Create Date: 2026-12-02

Each edit of a project's guidelines adds a row (version 1, 2, ...); nothing is overwritten, so an
annotation's `guidelines_version` always names the text it was made under.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0003'
down_revision = '0002_sessions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('guidelines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('label_notes', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.CheckConstraint('version >= 1', name='ck_guidelines_version'),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'version', name='uq_guidelines_version')
    )
    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('guidelines_version', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.drop_column('guidelines_version')
    op.drop_table('guidelines')
