"""quarantine: items that cannot be shown or featurized are taken out of the queue and rounds

Revision ID: 0007_quarantine
Revises: 0006_worker_heartbeat
Create Date: 2026-12-02

Adds the item state 'quarantined' (widening ck_item_state) and the quarantine table that says
why, who reported it and the state to return to on release.

SQLite cannot alter a CHECK constraint; rebuilding the item table would copy every row and trip
the foreign keys that point at it. Widening an IN-list makes no stored row invalid, so the table's
stored SQL is edited in place, as SQLite's ALTER TABLE documentation describes for removing or
relaxing constraints (writable_schema, then a schema_version bump so every connection re-reads it).
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0007_quarantine'
down_revision = '0006_worker_heartbeat'
branch_labels = None
depends_on = None

OLD_STATES = "'open', 'review', 'final', 'ambiguous', 'excluded'"
NEW_STATES = OLD_STATES + ", 'quarantined'"


def _set_item_states(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        sql = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'item'").scalar_one()
        if f"state IN ({old})" not in sql:
            raise RuntimeError("unexpected item table definition; cannot change ck_item_state")
        version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
        bind.exec_driver_sql("PRAGMA writable_schema = ON")
        bind.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'item'",
                             (sql.replace(f"state IN ({old})", f"state IN ({new})"),))
        bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")
        return
    op.drop_constraint('ck_item_state', 'item', type_='check')
    op.create_check_constraint('ck_item_state', 'item', f"state IN ({new})")


def upgrade() -> None:
    _set_item_states(OLD_STATES, NEW_STATES)
    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('previous_state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reported_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('released_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.CheckConstraint("source IN ('render', 'featurize', 'admin')", name='ck_quarantine_source'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['reported_by'], ['app_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index('ix_quarantine_project', ['project_id', 'released_at'], unique=False)
        batch_op.create_index('ix_quarantine_item', ['item_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index('ix_quarantine_item')
        batch_op.drop_index('ix_quarantine_project')
    op.drop_table('quarantine')
    op.execute("UPDATE item SET state = 'open' WHERE state = 'quarantined'")
    _set_item_states(NEW_STATES, OLD_STATES)
