"""Running a project: overlap, strategy, labels (add, retire, rename), settings, archive, delete.

Every change is one transaction with one audit row per change. The rules, in one place:

- **Overlap** applies to items not yet complete: open items without their own target
  (``Item.labels_wanted``, set by the adaptive policy) take the new overlap at their next claim;
  when it goes down, open items that already have enough labels are compared at once (final or
  review). Final, review, ambiguous and excluded items are left as they are.
- **Strategy** is one the project's model can serve (``check_strategy``); the app offers only those.
- **Add** a label: offered at once. Adding a retired label's name brings it back.
- **Retire** a label: its annotations, adjudications and final labels stay, and models still learn
  it; Label and Review stop offering it (submitting it is refused) and it gets no key.
- **Rename** OLD=NEW: the label is one thing with a new name. Its current references (annotations,
  adjudications, final, gold and posterior labels, the label_keys setting) carry NEW from then on,
  so agreement between a label given before and one given after still holds. Frozen records keep
  the name they were made with: dataset versions, model runs' predictions and rankings, guidelines
  versions and the audit log. The label table keeps OLD's row, retired, with ``renamed_to`` = NEW,
  and the audit log records the rename with how many rows now read NEW.
- **Archive**: read-only (every write service refuses, see ``projects.check_writable``), hidden
  from annotators and reviewers; active leases are given back. **Unarchive** undoes it.
- **Delete**: the name typed again, no round queued or running; the project is archived, exported
  whole (``ExportService.everything``) to a zip it names, then every row of it is deleted in one
  transaction (the append-only audit and version rows through the ``project_purge`` permit), and
  its model files are removed. One audit row (with no project) records the deletion and the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import CursorResult, Engine, Result, delete, func, insert, or_, select, text, update
from sqlmodel import Session, SQLModel, col

from workbench.db.models import (
    Adjudication,
    Annotation,
    Item,
    Job,
    Lease,
    ModelRun,
    Project,
    ProjectLabel,
    ProjectPurge,
    utcnow,
)
from workbench.domain import Actor, ItemState, JobKind, JobState, LeaseState, ProjectInfo, Role
from workbench.errors import Conflict, NotFound, WorkbenchError
from workbench.services._auth import requires
from workbench.services._tx import audit, reading, write
from workbench.services.projects import (
    DEFAULT_SETTINGS,
    check_featurizer,
    check_health_settings,
    check_key_settings,
    check_quality_settings,
    check_strategy,
    load_project,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection

# Settings that `update` accepts, with (type, low, high) for the plain numbers.
_NUMBERS: dict[str, tuple[type, float, float]] = {
    "eval_fraction": (float, 0.0, 1.0),
    "random_share": (float, 0.0, 1.0),
    "gold_share": (float, 0.0, 1.0),
    "lease_ttl_s": (int, 30, 86_400),
    "min_dwell_ms": (int, 0, 5000),
    "version_every": (int, 0, 10_000_000),
    "min_labels": (int, 1, 10),
    "max_labels": (int, 1, 10),
    "label_issue_k": (int, 0, 1_000_000),
    "overlap_confidence": (float, 0.5, 0.999),
    "lookahead_reliability": (float, 0.0, 0.999),
    "near_duplicate_threshold": (float, 0.5, 1.0),
    "advisor_min_labels": (int, 0, 10_000_000),
}
_NOT_SETTABLE = {"image_root"}  # set by the first image import; stored paths are relative to it
# The jobs that make a round; a delete waits for them (an alert check is simply deleted with the project).
ROUND_KINDS = (JobKind.RETRAIN, JobKind.RESCORE, JobKind.VERSION)


@dataclass(frozen=True)
class LabelRow:
    """One row of a project's label table, as the Settings page lists it."""

    name: str
    position: int
    retired_at: datetime | None
    renamed_to: str | None

    @property
    def status(self) -> str:
        if self.renamed_to is not None:
            return f"renamed to {self.renamed_to}"
        return "retired" if self.retired_at is not None else "offered"


@dataclass(frozen=True)
class UpdateResult:
    project: ProjectInfo
    changes: tuple[str, ...]  # one line per change made, for the CLI and the page
    resolved: int = 0  # open items compared at once because the overlap went down


@dataclass(frozen=True)
class DeleteResult:
    name: str
    export_path: str
    export_sha256: str
    deleted: dict[str, int] = field(default_factory=dict)  # rows deleted per table
    files_removed: int = 0


def _number(key: str, value: Any) -> None:
    kind, low, high = _NUMBERS[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        word = "a whole number" if kind is int else "a number"
        raise WorkbenchError(f"{key} must be {word} within {low:g}..{high:g}, got {value!r}")
    if not low <= value <= high:
        raise WorkbenchError(f"{key} must be within {low:g}..{high:g}, got {value!r}")


def check_settings(project: ProjectInfo, changes: dict[str, Any], strategy: str | None = None) -> dict[str, Any]:
    """Refuse unknown keys and bad values, in one line naming the key; returns the changes."""
    if not isinstance(changes, dict):
        raise WorkbenchError(f"settings must be a JSON object, got {type(changes).__name__}")
    unknown = sorted(set(changes) - set(DEFAULT_SETTINGS))
    if unknown:
        fixed = [key for key in unknown if key in _NOT_SETTABLE]
        if fixed:
            raise WorkbenchError(f"{fixed[0]} cannot be changed (stored image paths are relative to it)")
        raise WorkbenchError(f"unknown project setting(s): {', '.join(unknown)}; known: {', '.join(DEFAULT_SETTINGS)}")
    for key, value in changes.items():
        if key in _NUMBERS:
            _number(key, value)
    if "model" in changes:
        if not isinstance(changes["model"], dict) or not isinstance(changes["model"].get("type", "logreg"), str):
            raise WorkbenchError('model must be an object with a "type", e.g. {"type": "logreg", "C": 10}')
        check_strategy(strategy or project.strategy, changes["model"])
    if "featurizer" in changes:
        check_featurizer(project.kind, changes["featurizer"])
    if "limits" in changes:
        from workbench.importing.limits import Limits

        try:
            Limits.from_settings(changes["limits"])
        except ValueError as exc:
            raise WorkbenchError(str(exc)) from None
    if "health_at_import" in changes and not isinstance(changes["health_at_import"], bool):
        raise WorkbenchError(f"health_at_import must be true or false, got {changes['health_at_import']!r}")
    if "pii_region" in changes and not (isinstance(changes["pii_region"], str) and len(changes["pii_region"]) == 2):
        raise WorkbenchError(f"pii_region must be a two-letter region code, got {changes['pii_region']!r}")
    cols = changes.get("sensitive_cols", [])
    if not isinstance(cols, list) or not all(isinstance(c, str) and c for c in cols):
        raise WorkbenchError(f"sensitive_cols must be a list of column names, got {cols!r}")
    check_key_settings(project.offered, changes)
    check_health_settings(changes)
    check_quality_settings(project.overlap, {**project.settings, **changes})
    return changes


def servable(model: Any) -> list[str]:
    """The strategies a project with this model setting can run (what the Settings page offers)."""
    import strategies  # lazy: SciPy and the registry

    names = []
    for name in strategies.REGISTRY:
        try:
            check_strategy(name, model)
        except WorkbenchError:
            continue
        names.append(name)
    return names


def _project_row(session: Session, name: str) -> Project:
    project = session.execute(select(Project).where(col(Project.name) == name)).scalar_one_or_none()
    if project is None:
        raise NotFound(f"no project named {name!r}")
    return project


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE matched (Session.execute is typed as returning a Result; DML gives a CursorResult)."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def _label_rows(session: Session, project_id: int) -> dict[str, ProjectLabel]:
    rows = session.execute(select(ProjectLabel).where(col(ProjectLabel.project_id) == project_id)).scalars()
    return {row.name: row for row in rows}


def _clean(label: Any) -> str:
    name = str(label).strip()
    if not name:
        raise WorkbenchError("a label must not be empty")
    if len(name) > 200:
        raise WorkbenchError("a label has at most 200 characters")
    return name


def parse_rename(spec: str) -> tuple[str, str]:
    """OLD=NEW, as the CLI and the page take a rename."""
    old, sep, new = str(spec).partition("=")
    if not sep or not old.strip() or not new.strip():
        raise WorkbenchError(f"a rename is OLD=NEW, got {spec!r}")
    return _clean(old), _clean(new)


class ProjectSettingsService:
    """Admin changes to a running project (see the module docstring for the rules)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @requires(Role.ADMIN)
    def strategies(self, project: str, *, actor: Actor) -> list[str]:
        """The strategies this project's model can serve (current one included)."""
        with reading(self.engine) as session:
            info = load_project(session, project)
        return servable(info.settings.get("model"))

    @requires(Role.ADMIN)
    def labels(self, project: str, *, actor: Actor) -> list[LabelRow]:
        """The whole label table: offered, retired and renamed-away names."""
        with reading(self.engine) as session:
            info = load_project(session, project)
            rows = session.execute(
                select(ProjectLabel)
                .where(col(ProjectLabel.project_id) == info.id)
                .order_by(col(ProjectLabel.position), col(ProjectLabel.renamed_to).is_not(None))
            ).scalars()
            return [LabelRow(r.name, r.position, r.retired_at, r.renamed_to) for r in rows]

    @requires(Role.ADMIN)
    def update(
        self,
        project: str,
        *,
        actor: Actor,
        overlap: int | None = None,
        strategy: str | None = None,
        add_labels: Iterable[str] = (),
        retire_labels: Iterable[str] = (),
        rename_labels: Iterable[str | tuple[str, str]] = (),
        settings: dict[str, Any] | None = None,
    ) -> UpdateResult:
        """Apply every change given, in one transaction (all or nothing): renames, additions,
        retirements, overlap, strategy, then settings."""
        adds = [_clean(label) for label in add_labels]
        retires = [_clean(label) for label in retire_labels]
        renames = [r if isinstance(r, tuple) else parse_rename(r) for r in rename_labels]
        if overlap is not None and (
            isinstance(overlap, bool) or not isinstance(overlap, int) or not 1 <= overlap <= 10
        ):
            raise WorkbenchError(f"overlap must be a whole number from 1 to 10, got {overlap!r}")
        if settings is not None and not isinstance(settings, dict):
            raise WorkbenchError(f"settings must be a JSON object, got {type(settings).__name__}")
        if not (adds or retires or renames or overlap is not None or strategy is not None or settings):
            raise WorkbenchError("nothing to change: give --overlap, --strategy, a label change or --settings")
        actor_id = actor.id

        def work(session: Session) -> UpdateResult:
            row = _project_row(session, project)
            load_project(session, project)  # refuses an archived project
            changes: list[str] = []
            now = utcnow()
            for old, new in renames:
                changes.append(self._rename(session, row, old, new, now, actor_id))
            for label in adds:
                changes.append(self._add(session, row, label, actor_id))
            for label in retires:
                changes.append(self._retire(session, row, label, now, actor_id))
            session.flush()
            resolved = 0
            if overlap is not None and overlap != row.overlap:
                check_quality_settings(overlap, row.settings)
                before, row.overlap = row.overlap, overlap
                session.flush()
                resolved = self._apply_overlap(session, project, before, overlap)
                audit(
                    session,
                    "project.overlap",
                    actor_id=actor_id,
                    project_id=row.id,
                    before=before,
                    after=overlap,
                    resolved=resolved,
                )
                changes.append(
                    f"overlap {before} -> {overlap}"
                    + (f" ({resolved} open items compared at once)" if resolved else "")
                )
            if strategy is not None and strategy != row.strategy:
                model = (settings or {}).get("model", row.settings.get("model"))
                check_strategy(strategy, model)
                old_strategy, row.strategy = row.strategy, strategy
                audit(
                    session,
                    "project.strategy",
                    actor_id=actor_id,
                    project_id=row.id,
                    before=old_strategy,
                    after=strategy,
                )
                changes.append(f"strategy {old_strategy} -> {strategy}")
            row.changed_at = now
            if settings:
                current = load_project(session, project)
                check_settings(current, settings, strategy=row.strategy)
                old_settings = {key: current.settings.get(key) for key in settings}
                row.settings = {**row.settings, **settings}
                audit(
                    session,
                    "project.settings",
                    actor_id=actor_id,
                    project_id=row.id,
                    before=old_settings,
                    after=settings,
                )
                changes += [
                    f"{key}: {json_dump(old_settings[key])} -> {json_dump(value)}" for key, value in settings.items()
                ]
            session.flush()
            return UpdateResult(load_project(session, project), tuple(changes), resolved)

        return write(self.engine, work)

    # -- the label changes (inside update's transaction) -------------------------------------

    @staticmethod
    def _add(session: Session, project: Project, label: str, actor_id: int | None) -> str:
        assert project.id is not None  # a stored row
        rows = _label_rows(session, project.id)
        existing = rows.get(label)
        if existing is not None and existing.renamed_to is not None:
            raise Conflict(f"{label!r} was a name of this project's label now called {existing.renamed_to!r}")
        if existing is not None and existing.retired_at is None:
            raise Conflict(f"label {label!r} is already a label of {project.name!r}")
        if existing is not None:
            existing.retired_at = None
            audit(session, "project.label.unretire", actor_id=actor_id, project_id=project.id, label=label)
            return f"label {label} offered again"
        position = max((r.position for r in rows.values()), default=-1) + 1
        session.add(ProjectLabel(project_id=project.id, name=label, position=position))
        audit(session, "project.label.add", actor_id=actor_id, project_id=project.id, label=label, position=position)
        return f"label {label} added"

    @staticmethod
    def _retire(session: Session, project: Project, label: str, now: datetime, actor_id: int | None) -> str:
        assert project.id is not None  # a stored row
        rows = _label_rows(session, project.id)
        existing = rows.get(label)
        if existing is None or existing.renamed_to is not None:
            raise NotFound(f"{project.name!r} has no label {label!r}")
        if existing.retired_at is not None:
            raise Conflict(f"label {label!r} is already retired")
        offered = [r for r in rows.values() if r.retired_at is None and r.renamed_to is None]
        if len(offered) <= 1:
            raise Conflict(f"{label!r} is the last label offered; add another before retiring it")
        existing.retired_at = now
        keys = dict(project.settings.get("label_keys") or {})
        if keys.pop(label, None) is not None:
            project.settings = {**project.settings, "label_keys": keys}
        counts = {
            "annotations": session.execute(
                select(func.count()).where(col(Annotation.project_id) == project.id, col(Annotation.label) == label)
            ).scalar_one(),
            "final_labels": session.execute(
                select(func.count()).where(col(Item.project_id) == project.id, col(Item.final_label) == label)
            ).scalar_one(),
        }
        audit(session, "project.label.retire", actor_id=actor_id, project_id=project.id, label=label, kept=counts)
        return (
            f"label {label} retired (kept: {counts['annotations']} annotations, {counts['final_labels']} final labels)"
        )

    @staticmethod
    def _rename(session: Session, project: Project, old: str, new: str, now: datetime, actor_id: int | None) -> str:
        if old == new:
            raise WorkbenchError(f"renaming {old!r} to itself changes nothing")
        assert project.id is not None  # a stored row
        rows = _label_rows(session, project.id)
        source = rows.get(old)
        if source is None or source.renamed_to is not None:
            raise NotFound(f"{project.name!r} has no label {old!r}")
        if new in rows:
            taken = rows[new]
            why = "was a name of this project's label" if taken.renamed_to is not None else "is already a label"
            raise Conflict(f"{new!r} {why}; choose another name")
        session.add(
            ProjectLabel(project_id=project.id, name=new, position=source.position, retired_at=source.retired_at)
        )
        session.flush()
        pid = project.id
        rewritten = {
            "annotations": _rowcount(
                session.execute(
                    update(Annotation)
                    .where(col(Annotation.project_id) == pid, col(Annotation.label) == old)
                    .values(label=new)
                )
            ),
            "adjudications": _rowcount(
                session.execute(
                    update(Adjudication)
                    .where(col(Adjudication.project_id) == pid, col(Adjudication.label) == old)
                    .values(label=new)
                )
            ),
            "final_labels": _rowcount(
                session.execute(
                    update(Item)
                    .where(col(Item.project_id) == pid, col(Item.final_label) == old)
                    .values(final_label=new)
                )
            ),
            "gold_labels": _rowcount(
                session.execute(
                    update(Item).where(col(Item.project_id) == pid, col(Item.gold_label) == old).values(gold_label=new)
                )
            ),
            "posterior_labels": _rowcount(
                session.execute(
                    update(Item)
                    .where(col(Item.project_id) == pid, col(Item.posterior_label) == old)
                    .values(posterior_label=new)
                )
            ),
        }
        source.renamed_to = new
        source.retired_at = source.retired_at or now
        keys = dict(project.settings.get("label_keys") or {})
        if old in keys:
            keys[new] = keys.pop(old)
            project.settings = {**project.settings, "label_keys": keys}
        audit(session, "project.label.rename", actor_id=actor_id, project_id=pid, old=old, new=new, rewritten=rewritten)
        return (
            f"label {old} renamed to {new} ({rewritten['annotations']} annotations and "
            f"{rewritten['final_labels']} final labels now read {new}; dataset versions keep {old})"
        )

    @staticmethod
    def _apply_overlap(session: Session, project_name: str, before: int, after: int) -> int:
        """Open items with enough labels for a lowered overlap are compared now; returns how many."""
        from workbench.domain.overlap import OverlapPolicy
        from workbench.services.queue import resolve

        info = load_project(session, project_name)
        if after >= before or info.settings.get("overlap_policy", "fixed") != OverlapPolicy.FIXED:
            return 0
        ids = (
            session.execute(
                select(col(Item.id)).where(
                    col(Item.project_id) == info.id,
                    col(Item.state) == ItemState.OPEN,
                    col(Item.labels_wanted).is_(None),
                    col(Item.gold_label).is_(None),
                    col(Item.n_annotations) >= after,
                )
            )
            .scalars()
            .all()
        )
        for item_id in ids:
            resolve(session, item_id, info)
        return len(ids)

    # -- archive -----------------------------------------------------------------------------

    @requires(Role.ADMIN)
    def archive(self, project: str, *, actor: Actor, why: str = "archived") -> ProjectInfo:
        """Make the project read-only and hide it from annotators and reviewers; its live claims
        are given back."""

        def work(session: Session) -> ProjectInfo:
            row = _project_row(session, project)
            if row.archived_at is not None:
                raise Conflict(f"project {project!r} is already archived")
            now = utcnow()
            released = (
                session.execute(
                    update(Lease)
                    .where(col(Lease.project_id) == row.id, col(Lease.state) == LeaseState.ACTIVE)
                    .values(state=LeaseState.EXPIRED, closed_at=now)
                    .returning(col(Lease.item_id))
                )
                .scalars()
                .all()
            )
            for item_id in released:
                session.execute(
                    update(Item).where(col(Item.id) == item_id).values(slots_taken=col(Item.slots_taken) - 1)
                )
            row.archived_at = row.changed_at = now
            audit(
                session, "project.archive", actor_id=actor.id, project_id=row.id, leases_released=len(released), why=why
            )
            session.flush()
            session.info["writing"] = False  # the archived project may be read back here
            return load_project(session, project)

        return write(self.engine, work)

    @requires(Role.ADMIN)
    def unarchive(self, project: str, *, actor: Actor) -> ProjectInfo:
        """Open an archived project for work again."""

        def work(session: Session) -> ProjectInfo:
            row = _project_row(session, project)
            if row.archived_at is None:
                raise Conflict(f"project {project!r} is not archived")
            row.archived_at, row.changed_at = None, utcnow()
            audit(session, "project.unarchive", actor_id=actor.id, project_id=row.id)
            session.flush()
            return load_project(session, project)

        return write(self.engine, work)

    # -- delete ------------------------------------------------------------------------------

    @staticmethod
    def _busy(session: Session, project_id: int) -> str | None:
        job = session.execute(
            select(col(Job.id), col(Job.kind), col(Job.state))
            .where(
                col(Job.project_id) == project_id,
                col(Job.kind).in_(ROUND_KINDS),
                col(Job.state).in_([JobState.QUEUED, JobState.RUNNING]),
            )
            .limit(1)
        ).first()
        return None if job is None else f"job {job.id} ({job.kind}) is {job.state}"

    @requires(Role.ADMIN)
    def delete(self, project: str, *, confirm: str, actor: Actor, export_to: str | Path | None = None) -> DeleteResult:
        """Delete the project and everything of it, after writing a full export (see module doc)."""
        from workbench.config import workbench_home
        from workbench.services.exports import ExportService

        if confirm != project:
            raise WorkbenchError(f"type the project's name again to delete it: {project!r}")
        with reading(self.engine) as session:
            row = _project_row(session, project)
            assert row.id is not None  # a stored row
            busy = self._busy(session, row.id)
            archived = row.archived_at is not None
        if busy:
            raise Conflict(f"a round is under way in {project!r} ({busy}); delete it when the round has finished")
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in project)
        out = Path(export_to) if export_to else workbench_home() / "exports" / f"{safe}-deleted-{stamp}.zip"
        if out.exists():
            raise Conflict(f"{out} already exists; name another file for the export")
        if not archived:  # nothing changes between the export and the delete
            self.archive(project, actor=actor, why="delete")
        exported = ExportService(self.engine).everything(project, out, actor=actor)

        def work(session: Session) -> tuple[dict[str, int], list[str]]:
            row = _project_row(session, project)
            assert row.id is not None  # a stored row
            busy = self._busy(session, row.id)
            if busy:
                raise Conflict(f"a round started in {project!r} ({busy}); the export is in {out}; nothing deleted")
            artifacts = list(
                session.execute(select(col(ModelRun.artifact_path)).where(col(ModelRun.project_id) == row.id)).scalars()
            )
            counts = _purge(session, row.id)
            audit(
                session,
                "project.delete",
                actor_id=actor.id,
                project=project,
                project_id_was=row.id,
                export=str(out),
                export_sha256=exported.sha256,
                deleted=counts,
            )
            return counts, artifacts

        counts, artifacts = write(self.engine, work)
        removed = 0
        home = workbench_home().resolve()
        for path in artifacts:
            file = Path(path) if Path(path).is_absolute() else home / path
            try:
                if file.resolve().is_relative_to(home) and file.is_file():
                    file.unlink()
                    removed += 1
            except OSError:
                continue  # a model file left behind is swept later (StorageService.sweep_orphans)
        return DeleteResult(project, str(out), exported.sha256, counts, removed)


def _purge(session: Session, project_id: int) -> dict[str, int]:
    """Delete every row of one project, children before parents, found from the schema (a table
    added later with a project_id, or hanging off one that has it, is covered without change)."""
    conn = session.connection()
    conn.execute(insert(ProjectPurge).values(project_id=project_id))
    if conn.dialect.name == "sqlite":
        _forget_search_index(conn)
    counts: dict[str, int] = {}
    skip = {Project.__tablename__, ProjectPurge.__tablename__}
    for table in reversed(SQLModel.metadata.sorted_tables):
        if table.name in skip:
            continue
        if "project_id" in table.c:
            condition = table.c.project_id == project_id
        else:
            parents = [
                fk
                for fk in table.foreign_keys
                if "project_id" in fk.column.table.c and fk.column.table.name not in skip
            ]
            if not parents:
                continue
            # Any parent of the project's makes the row the project's (a version's row may point
            # at no adjudication; foreign_keys is a set, so one picked parent would vary by run).
            condition = or_(
                *(
                    fk.parent.in_(select(fk.column).where(fk.column.table.c.project_id == project_id))
                    for fk in sorted(parents, key=lambda fk: fk.parent.name)
                )
            )
        n = conn.execute(delete(table).where(condition)).rowcount
        if n:
            counts[table.name] = n
    conn.execute(delete(Project).where(col(Project.id) == project_id))
    conn.execute(delete(ProjectPurge).where(col(ProjectPurge.project_id) == project_id))
    return counts


def _forget_search_index(conn: Connection) -> None:
    """SQLite's contentless full-text index cannot drop single rows it no longer has the text of:
    empty it (the browse service rebuilds it from the items at the next search)."""
    exists = conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'item_fts'")).first()
    if exists:
        conn.execute(text("INSERT INTO item_fts(item_fts) VALUES ('delete-all')"))


def json_dump(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)
