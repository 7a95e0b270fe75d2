"""item browser: label and state indexes in id order, and full-text search over item text

Revision ID: 0009_browse
Revises: 0008_rank_eval_predictions
Create Date: 2026-12-02

SQLite: a contentless FTS5 table (rowid = item id) that the browse service fills lazily.
PostgreSQL: a GIN index on the item text's tsvector ('simple' configuration), kept on insert.
Neither is in the SQLModel metadata; tests/test_db_foundation.py knows to skip them.
"""

from alembic import op
import sqlalchemy as sa


revision = '0009_browse'
down_revision = '0008_rank_eval_predictions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.create_index('ix_item_project_label', ['project_id', 'final_label', 'id'], unique=False)
        batch_op.create_index('ix_item_project_state', ['project_id', 'state', 'id'], unique=False)
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("CREATE VIRTUAL TABLE item_fts USING fts5(text, content='', tokenize='unicode61 remove_diacritics 2')")
    else:
        op.execute("CREATE INDEX ix_item_text_tsv ON item USING gin (to_tsvector('simple', content->>'text'))")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("DROP TABLE item_fts")
    else:
        op.execute("DROP INDEX ix_item_text_tsv")
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_index('ix_item_project_state')
        batch_op.drop_index('ix_item_project_label')
