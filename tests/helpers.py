"""Small builders shared by service tests (a project with items, users, raw inserts)."""

from __future__ import annotations

import random

from sqlmodel import Session

from workbench.db.bulk import insert_items
from workbench.db.models import Item
from workbench.domain import Actor


def add_items(engine, project_id: int, n: int, *, eval_every: int = 0, seed: int = 0, start: int = 0) -> None:
    """Insert n text items quickly (every `eval_every`-th in the eval split)."""
    rng = random.Random(seed)
    with Session(engine) as session, session.begin():
        insert_items(
            session,
            project_id,
            (
                (
                    f"item-{start + i}",
                    {"text": f"text number {start + i}"},
                    "eval" if eval_every and i % eval_every == 0 else "pool",
                    rng.random(),
                )
                for i in range(n)
            ),
        )


def annotators(wb, n: int, role: str = "annotator", prefix: str = "ann"):
    return [
        wb.users.add(f"{prefix}{i}", role, "password-123", actor=Actor.operator())
        and wb.users.authenticate(f"{prefix}{i}", "password-123")
        for i in range(n)
    ]


def read_sms(path) -> list[tuple[str, str]]:
    """(label, text) rows of the SMS Spam Collection (split on the first tab only)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            label, text = line.rstrip("\n").split("\t", 1)
            rows.append((label, text))
    return rows


def add_text_items(engine, project_id: int, texts: list[str], *, eval_fraction: float = 0.2, seed: int = 0) -> None:
    rng = random.Random(seed)
    with Session(engine) as session, session.begin():
        insert_items(
            session,
            project_id,
            (
                (f"t{i}", {"text": text}, "eval" if rng.random() < eval_fraction else "pool", rng.random())
                for i, text in enumerate(texts)
            ),
        )


def set_final_labels(engine, project_id: int, labels_by_external_id: dict[str, str]) -> None:
    """Test shortcut: mark items final with a label, as if two annotators had agreed."""
    from sqlalchemy import update

    with Session(engine) as session, session.begin():
        for external_id, label in labels_by_external_id.items():
            session.execute(
                update(Item)
                .where(Item.project_id == project_id, Item.external_id == external_id)
                .values(state="final", final_label=label, n_annotations=2, slots_taken=2)
            )
