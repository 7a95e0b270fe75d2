"""project settings: archive, retired and renamed labels, and the purge permit of project delete

Revision ID: 0013_project_settings
Revises: 0012_alerts
Create Date: 2026-12-02

The append-only triggers of audit_log, dataset_version and dataset_version_item are replaced by
ones that still refuse every UPDATE, and refuse a DELETE unless the row belongs to a project that
has a row in project_purge. Only `ProjectService.delete` writes that row, and removes it again in
the same transaction that deletes the project.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0013_project_settings'
down_revision = '0012_alerts'
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("audit_log", "dataset_version", "dataset_version_item")

# The project a row of each append-only table belongs to (SQLite trigger bodies see OLD).
_SQLITE_PROJECT = {
    "audit_log": "OLD.project_id",
    "dataset_version": "OLD.project_id",
    "dataset_version_item": "(SELECT project_id FROM dataset_version WHERE id = OLD.version_id)",
}


def upgrade() -> None:
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('archived_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    with op.batch_alter_table('project_label', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retired_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('renamed_to', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
    op.create_table('project_purge', sa.Column('project_id', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('project_id'))
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER {table}_no_delete")
            op.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                f"WHEN NOT EXISTS (SELECT 1 FROM project_purge WHERE project_id = {_SQLITE_PROJECT[table]}) "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION workbench_refuse_change() RETURNS trigger AS $$ "
        "DECLARE pid integer; BEGIN "
        "IF TG_OP = 'DELETE' THEN "
        "  IF TG_TABLE_NAME = 'dataset_version_item' THEN "
        "    SELECT project_id INTO pid FROM dataset_version WHERE id = OLD.version_id; "
        "  ELSE pid := OLD.project_id; END IF; "
        "  IF EXISTS (SELECT 1 FROM project_purge WHERE project_id = pid) THEN RETURN OLD; END IF; "
        "END IF; "
        "RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER {table}_no_delete")
            op.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    else:
        op.execute(
            "CREATE OR REPLACE FUNCTION workbench_refuse_change() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql"
        )
    op.drop_table('project_purge')
    with op.batch_alter_table('project_label', schema=None) as batch_op:
        batch_op.drop_column('renamed_to')
        batch_op.drop_column('retired_at')
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_column('changed_at')
        batch_op.drop_column('archived_at')
