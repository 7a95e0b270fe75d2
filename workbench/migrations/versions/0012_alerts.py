"""alert rules, their state (fire once until cleared), deliveries and every delivery attempt

Revision ID: 0012_alerts
Revises: 0011_model_run_tracking
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0012_alerts'
down_revision = '0011_model_run_tracking'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('webhook_env', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('email_to', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('agreement', 'accuracy_drop', 'drift', 'annotator', 'review_age')",
                       name='ck_alert_rule_kind'),
    sa.CheckConstraint('webhook_env IS NOT NULL OR email_to IS NOT NULL', name='ck_alert_rule_channel'),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_alert_rule_project', 'alert_rule', ['project_id', 'enabled'], unique=False)
    op.create_table('alert_state',
    sa.Column('rule_id', sa.Integer(), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('fired_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('cleared_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('checked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['rule_id'], ['alert_rule.id'], ),
    sa.PrimaryKeyConstraint('rule_id', 'subject')
    )
    op.create_table('alert_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_result', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('delivered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'sent', 'failed')", name='ck_alert_delivery_state'),
    sa.CheckConstraint("channel IN ('webhook', 'email')", name='ck_alert_delivery_channel'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.ForeignKeyConstraint(['rule_id'], ['alert_rule.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_alert_delivery_due', 'alert_delivery', ['state', 'next_attempt_at'], unique=False)
    op.create_index('ix_alert_delivery_project', 'alert_delivery', ['project_id', 'id'], unique=False)
    op.create_table('alert_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('result', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('duration_ms', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['alert_delivery.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('delivery_id', 'number', name='uq_alert_attempt_number')
    )


def downgrade() -> None:
    op.drop_table('alert_attempt')
    op.drop_index('ix_alert_delivery_project', table_name='alert_delivery')
    op.drop_index('ix_alert_delivery_due', table_name='alert_delivery')
    op.drop_table('alert_delivery')
    op.drop_table('alert_state')
    op.drop_index('ix_alert_rule_project', table_name='alert_rule')
    op.drop_table('alert_rule')
