"""annotator quality, adaptive overlap, aggregation per final label, gold items, label issues

Revision ID: 0010_quality
Revises: 0009_browse
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0010_quality'
down_revision = '0009_browse'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('labels_wanted', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('final_by', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('gold_label', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('posterior_label', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('posterior', sa.Float(), nullable=True))
    # dataset_version_item is append-only by trigger; adding a nullable column rewrites no row on
    # PostgreSQL, and SQLite's ADD COLUMN does not fire UPDATE triggers.
    op.add_column('dataset_version_item',
                  sa.Column('aggregation', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
    op.create_table('annotator_quality',
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('n_labels', sa.Integer(), nullable=False),
    sa.Column('n_checked', sa.Integer(), nullable=False),
    sa.Column('accuracy', sa.Float(), nullable=True),
    sa.Column('accuracy_low', sa.Float(), nullable=True),
    sa.Column('accuracy_high', sa.Float(), nullable=True),
    sa.Column('reliability', sa.Float(), nullable=True),
    sa.Column('n_gold', sa.Integer(), nullable=False),
    sa.Column('gold_accuracy', sa.Float(), nullable=True),
    sa.Column('n_adjudicated', sa.Integer(), nullable=False),
    sa.Column('adjudication_agreement', sa.Float(), nullable=True),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('confusion', sa.JSON(), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('paused_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], ),
    sa.PrimaryKeyConstraint('project_id', 'user_id')
    )


def downgrade() -> None:
    op.drop_table('annotator_quality')
    op.drop_column('dataset_version_item', 'aggregation')
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_column('posterior')
        batch_op.drop_column('posterior_label')
        batch_op.drop_column('gold_label')
        batch_op.drop_column('reason')
        batch_op.drop_column('final_by')
        batch_op.drop_column('labels_wanted')
