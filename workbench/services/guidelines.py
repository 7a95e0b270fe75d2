"""Guidelines: per-project labeling instructions (Markdown) and a short note per label, versioned.

Every edit adds a version; nothing is overwritten. Each annotation records the version that was
current when it was made, so the overview can tell which labels predate the current text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, ScalarSelect, func, select
from sqlmodel import Session, col

from workbench.db.models import Annotation, Guidelines, User, utcnow
from workbench.domain import Actor, AnnotationSource, GuidelinesInfo, GuidelinesUsage, ProjectInfo, Role
from workbench.errors import WorkbenchError
from workbench.services._auth import requires
from workbench.services._tx import audit, reading, write
from workbench.services.members import check_member, load_member_project
from workbench.services.projects import load_project

MAX_TEXT = 100_000
MAX_NOTE = 300


def current_version_of(project_id: Any) -> ScalarSelect[int | None]:
    """The project's current guidelines version as a scalar subquery (NULL when it has none)."""
    return select(func.max(col(Guidelines.version))).where(col(Guidelines.project_id) == project_id).scalar_subquery()


def _info(row: Guidelines, author: str | None) -> GuidelinesInfo:
    return GuidelinesInfo(
        project_id=row.project_id,
        version=row.version,
        text=row.text,
        label_notes=dict(row.label_notes),
        author=author,
        created_at=row.created_at,
    )


def clean_notes(labels: tuple[str, ...], notes: dict[str, Any] | None) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for label, note in (notes or {}).items():
        if label not in labels:
            raise WorkbenchError(f"a label note names {label!r}, which is not a label of this project")
        text = str(note or "").strip()
        if len(text) > MAX_NOTE:
            raise WorkbenchError(f"the note for {label!r} is longer than {MAX_NOTE} characters")
        if text:
            cleaned[label] = text
    return cleaned


def current_guidelines(session: Session, project_id: int) -> GuidelinesInfo | None:
    """The project's current guidelines inside the caller's session (None: it has none)."""
    row = session.execute(
        select(Guidelines, col(User.name))
        .outerjoin(User, col(User.id) == Guidelines.created_by)
        .where(col(Guidelines.project_id) == project_id)
        .order_by(col(Guidelines.version).desc())
        .limit(1)
    ).first()
    return None if row is None else _info(*row)


class GuidelinesService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @requires(Role.ANNOTATOR)
    def current(self, project: ProjectInfo, *, actor: Actor) -> GuidelinesInfo | None:
        """The project's current guidelines, or None when it has none yet (any role may read)."""
        with reading(self.engine) as session:
            check_member(session, actor, project)
            return current_guidelines(session, project.id)

    @requires(Role.REVIEWER)
    def history(self, project_name: str, *, actor: Actor) -> list[GuidelinesInfo]:
        """Every version, newest first."""
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            rows = session.execute(
                select(Guidelines, col(User.name))
                .outerjoin(User, col(User.id) == Guidelines.created_by)
                .where(col(Guidelines.project_id) == project.id)
                .order_by(col(Guidelines.version).desc())
            ).all()
        return [_info(*row) for row in rows]

    @requires(Role.ADMIN)
    def update(
        self, project_name: str, text: str, *, actor: Actor, label_notes: dict[str, Any] | None = None
    ) -> GuidelinesInfo:
        """Save a new version of the guidelines (admins). Notes not given are kept from the last version."""
        text = (text or "").replace("\r\n", "\n").strip()
        if len(text) > MAX_TEXT:
            raise WorkbenchError(f"guidelines are limited to {MAX_TEXT} characters")

        def work(session: Session) -> GuidelinesInfo:
            project = load_project(session, project_name)
            last = session.execute(
                select(Guidelines)
                .where(col(Guidelines.project_id) == project.id)
                .order_by(col(Guidelines.version).desc())
                .limit(1)
            ).scalar_one_or_none()
            notes = clean_notes(
                project.labels, label_notes if label_notes is not None else (last.label_notes if last else {})
            )
            if last is not None and last.text == text and dict(last.label_notes) == notes:
                raise WorkbenchError(f"nothing changed: version {last.version} already has this text and these notes")
            row = Guidelines(
                project_id=project.id,
                version=(last.version if last else 0) + 1,
                text=text,
                label_notes=notes,
                created_by=actor.id,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            audit(
                session,
                "guidelines.update",
                actor_id=actor.id,
                project_id=project.id,
                version=row.version,
                chars=len(text),
                labels_with_notes=sorted(notes),
            )
            return _info(row, None if actor.is_operator else actor.name)

        return write(self.engine, work)

    @requires(Role.REVIEWER)
    def usage(self, project_name: str, *, actor: Actor) -> GuidelinesUsage:
        """How many human labels were made under the current version, and how many predate it."""
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            current = session.execute(
                select(func.max(col(Guidelines.version))).where(col(Guidelines.project_id) == project.id)
            ).scalar_one()
            rows = session.execute(
                select(col(Annotation.guidelines_version), func.count())
                .where(col(Annotation.project_id) == project.id, col(Annotation.source) == AnnotationSource.HUMAN)
                .group_by(col(Annotation.guidelines_version))
            ).all()
        by_version = {version: n for version, n in rows}
        under = by_version.get(current, 0) if current is not None else 0
        return GuidelinesUsage(
            current_version=current,
            labels_under_current=under,
            labels_before_current=sum(by_version.values()) - under,
            by_version=by_version,
        )
