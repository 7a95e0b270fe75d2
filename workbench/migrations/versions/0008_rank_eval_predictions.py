"""eval predictions per model run

Revision ID: 0008_rank_eval_predictions
Revises: 0007_quarantine
Create Date: 2026-12-02

Each model run stores its predicted label for every eval-split item, written in the same
transaction as the run, so two runs are compared from stored predictions (never by loading models
in the app process).
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0008_rank_eval_predictions'
down_revision = '0007_quarantine'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('eval_prediction',
    sa.Column('model_run_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('predicted', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['model_run_id'], ['model_run.id'], ),
    sa.PrimaryKeyConstraint('model_run_id', 'item_id')
    )


def downgrade() -> None:
    op.drop_table('eval_prediction')
