"""Bulk writes of generated items, for benchmarks, stress runs and tests that need a large pool
quickly. Real data goes through the import service, which validates every row."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col

from workbench.db.models import Item

CHUNK_ROWS = 50_000
"""Rows per multi-row INSERT: bounds the memory of a million-item pool."""

GeneratedItem = tuple[str, dict, str, float]
"""(external id, content, split "pool" or "eval", random key in [0, 1))."""


def insert_items(session: Session, project_id: int, items: Iterable[GeneratedItem]) -> int:
    """Insert open, unlabeled items in the caller's transaction; returns how many were written."""
    written = 0
    rows = iter(items)
    while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
        session.execute(
            insert(Item),
            [
                {
                    "project_id": project_id,
                    "external_id": external_id,
                    "content": content,
                    "split": split,
                    "state": "open",
                    "slots_taken": 0,
                    "n_annotations": 0,
                    "random_key": float(key),
                }
                for external_id, content, split, key in chunk
            ],
        )
        written += len(chunk)
    return written


def insert_members(session: Session, project_id: int, members: Iterable[tuple[int, str]]) -> None:
    """Make users members of a project in one statement: (user id, role on the project) pairs;
    those already members are left as they are.
    For operator code that creates its own accounts (simulations, stress runs); the app and the
    CLI go through MemberService, which checks roles and writes the audit log."""
    from sqlalchemy import select

    from workbench.db.models import ProjectMember, utcnow

    now = utcnow()
    present = set(
        session.execute(select(col(ProjectMember.user_id)).where(col(ProjectMember.project_id) == project_id)).scalars()
    )
    rows = [
        {"project_id": project_id, "user_id": u, "role": r, "added_at": now} for u, r in members if u not in present
    ]
    if rows:
        session.execute(insert(ProjectMember), rows)


def insert_rows(session: Session, table: Any, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write plain rows into `table` in the caller's transaction, fast: PostgreSQL COPY (binary
    protocol through psycopg), else multi-row INSERTs of CHUNK_ROWS; returns how many were written.
    The values go as they are: no defaults or column types are applied (pass every column)."""
    from sqlalchemy import Table

    target: Table = table.__table__ if hasattr(table, "__table__") else table
    conn = session.connection()
    written = 0
    if conn.dialect.name == "postgresql":
        names = ", ".join(columns)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(f"COPY {target.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                written += 1
        return written
    it = iter(rows)
    while chunk := list(itertools.islice(it, CHUNK_ROWS)):
        session.execute(insert(target), [dict(zip(columns, row)) for row in chunk])
        written += len(chunk)
    return written
