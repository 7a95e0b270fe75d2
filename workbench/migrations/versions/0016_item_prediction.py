"""latest predictions: each scored item's predicted label and confidence, and prediction drift per run

Revision ID: 0016_item_prediction
Revises: 0015_stop_set
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0016_item_prediction'
down_revision = '0015_stop_set'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('item_prediction',
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('model_run_id', sa.Integer(), nullable=False),
    sa.Column('predicted', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['model_run_id'], ['model_run.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('item_id')
    )
    with op.batch_alter_table('item_prediction', schema=None) as batch_op:
        batch_op.create_index('ix_item_prediction_filter', ['project_id', 'predicted', 'item_id', 'confidence'], unique=False)
        batch_op.create_index('ix_item_prediction_confidence', ['project_id', 'predicted', 'confidence'], unique=False)
    with op.batch_alter_table('model_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prediction_drift', sa.JSON(), nullable=False, server_default='{}'))


def downgrade() -> None:
    with op.batch_alter_table('model_run', schema=None) as batch_op:
        batch_op.drop_column('prediction_drift')
    with op.batch_alter_table('item_prediction', schema=None) as batch_op:
        batch_op.drop_index('ix_item_prediction_confidence')
        batch_op.drop_index('ix_item_prediction_filter')
    op.drop_table('item_prediction')
