"""stopping advice: stop-set predictions per model run and each run's stability against the last

Revision ID: 0015_stop_set
Revises: 0014_members
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0015_stop_set'
down_revision = '0014_members'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stop_prediction',
    sa.Column('model_run_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('predicted', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['model_run_id'], ['model_run.id'], ),
    sa.PrimaryKeyConstraint('model_run_id', 'item_id')
    )
    with op.batch_alter_table('model_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stability', sa.JSON(), nullable=False, server_default='{}'))


def downgrade() -> None:
    with op.batch_alter_table('model_run', schema=None) as batch_op:
        batch_op.drop_column('stability')
    op.drop_table('stop_prediction')
