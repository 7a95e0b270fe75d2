"""worker heartbeat table

Revision ID: 0006_worker_heartbeat
Revises: 0005_item_flags
Create Date: 2026-12-02

Workers register a row and heartbeat it, so a client can tell whether any worker is alive.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0006_worker_heartbeat'
down_revision = '0005_item_flags'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('worker_process',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('host', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('heartbeat_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('worker_process')
