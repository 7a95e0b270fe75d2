"""model_run.tracking: where a run was logged in MLflow, or why it was not (issue 16)

Revision ID: 0011_model_run_tracking
Revises: 0010_quality
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0011_model_run_tracking'
down_revision = '0010_quality'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('model_run', sa.Column('tracking', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('model_run', schema=None) as batch_op:
        batch_op.drop_column('tracking')
