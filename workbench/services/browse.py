"""The item browser (reviewers and admins): filter, search, sort and page a project's items, export
exactly what is filtered, and read one item's whole history.

Text search uses SQLite's FTS5 (a contentless index filled lazily: items imported since the last
search are indexed by the next search, so imports stay as fast as before) and PostgreSQL's full
text search on an expression index over the item text (kept by the database on insert).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, and_, exists, func, select, text
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session, col

from workbench.db.models import (
    Adjudication,
    Annotation,
    AuditLog,
    EvalPrediction,
    Item,
    ItemFlag,
    ItemPrediction,
    Lease,
    ModelRun,
    ProjectLabel,
    StopPrediction,
    User,
)
from workbench.domain import Actor, AnnotationSource, ItemState, Role, Split
from workbench.errors import NotFound, WorkbenchError
from workbench.services._auth import require_role, requires
from workbench.services._tx import reading, write
from workbench.services.members import load_member_project

PAGE_SIZE = 50
COUNT_CAP = 10_000  # beyond this many matches the count is reported as "more than"
EXPORT_CAP = 1_000_000
# A prediction filter matching at most this many items is resolved from the (project, predicted,
# confidence) index first (a range scan, then the matching ids in order); a denser one walks the
# (project, predicted, item, confidence) index in id order and stops after the page.
SPARSE_PREDICTIONS = 20_000


class BrowseState(StrEnum):
    """What the browser filters on: the item states, plus 'partly labeled' (open, with at least one
    human label but not all)."""

    OPEN = "open"
    PARTLY_LABELED = "partly_labeled"
    FINAL = "final"
    REVIEW = "review"
    AMBIGUOUS = "ambiguous"
    EXCLUDED = "excluded"
    QUARANTINED = "quarantined"


class SortKey(StrEnum):
    ID = "id"  # import order
    EXTERNAL_ID = "external_id"
    STATE = "state"
    LABELS = "labels"  # number of human labels


@dataclass(frozen=True)
class BrowseFilter:
    state: BrowseState | None = None
    split: Split | None = None
    final_label: str | None = None
    annotator: str | None = None  # user name: items this user labeled
    disagreement: bool = False  # human labels that differ
    skip_reason: str | None = None  # "" for any skip
    flag: str | None = None  # a data health flag kind
    search: str | None = None  # words, all of which must occur in the text
    # The latest model run's prediction: its label, and its confidence (the largest class
    # probability) within [confidence_min, confidence_max]; either bound may be left open.
    predicted_label: str | None = None
    confidence_min: float | None = None
    confidence_max: float | None = None
    sort: SortKey = SortKey.ID
    descending: bool = False

    @property
    def on_prediction(self) -> bool:
        return bool(self.predicted_label) or self.confidence_min is not None or self.confidence_max is not None

    @property
    def on_item(self) -> bool:
        """Whether anything but the prediction is filtered on."""
        return bool(
            self.state is not None
            or self.split is not None
            or self.final_label
            or self.annotator
            or self.disagreement
            or self.skip_reason is not None
            or self.flag
            or self.search
        )


@dataclass(frozen=True)
class ItemRow:
    item_id: int
    external_id: str
    split: Split
    state: ItemState
    final_label: str | None
    n_labels: int
    preview: str  # the start of the text, or the image path / first features
    predicted_label: str | None = None  # the latest model run's prediction (None: not scored)
    confidence: float | None = None


@dataclass(frozen=True)
class BrowsePage:
    rows: tuple[ItemRow, ...]
    offset: int
    total: int  # matches, up to COUNT_CAP
    more_than_total: bool  # True when there are more than COUNT_CAP matches


@dataclass(frozen=True)
class AnnotationEvent:
    annotator: str | None  # None for an imported prelabel
    source: AnnotationSource
    label: str
    at: datetime
    duration_ms: int | None


@dataclass(frozen=True)
class LeaseEvent:
    annotator: str
    state: str
    reason: str  # why the item was served
    claimed_at: datetime
    closed_at: datetime | None
    skip_reason: str | None


@dataclass(frozen=True)
class AdjudicationEvent:
    reviewer: str
    decision: str
    label: str | None
    reason: str
    previous_state: str
    previous_label: str | None
    at: datetime


@dataclass(frozen=True)
class AuditEvent:
    action: str
    actor: str | None
    at: datetime
    details: dict[str, Any]


class PredictionSource(StrEnum):
    """Where a model run's prediction of an item is kept."""

    LATEST = "latest"  # the latest run's prediction of every scored item, with its confidence
    EVAL = "eval"  # every run's predictions of the eval split
    STOP = "stop"  # every run's predictions of the stop set


@dataclass(frozen=True)
class PredictionEvent:
    model_run_id: int
    at: datetime  # when the run was made
    source: PredictionSource
    label: str
    confidence: float | None  # kept for the latest run only


@dataclass(frozen=True)
class ItemDetail:
    item_id: int
    external_id: str
    split: Split
    state: ItemState
    final_label: str | None
    content: dict[str, Any]
    annotations: tuple[AnnotationEvent, ...]
    leases: tuple[LeaseEvent, ...]
    adjudications: tuple[AdjudicationEvent, ...]
    flags: tuple[tuple[str, str], ...]  # (kind, reason)
    audit: tuple[AuditEvent, ...]
    predictions: tuple[PredictionEvent, ...] = ()  # newest run first


def _words(query: str) -> list[str]:
    return [w for w in re.findall(r"\w+", query.lower()) if w][:20]


def _preview(content: dict[str, Any]) -> str:
    if "text" in content:
        value = str(content["text"])
    elif "image" in content:
        value = str(content["image"])
    else:
        value = ", ".join(f"{k}={v}" for k, v in list((content.get("features") or {}).items())[:6])
    return value if len(value) <= 160 else value[:157] + "…"


def _sqlite_fts_catch_up(engine: Engine) -> None:
    """Index the texts of items added since the last search (one INSERT … SELECT)."""

    def work(session: Session) -> None:
        conn = session.connection()
        last = conn.execute(text("SELECT coalesce(max(rowid), 0) FROM item_fts")).scalar_one()
        newest = conn.execute(text("SELECT coalesce(max(id), 0) FROM item")).scalar_one()
        if newest > last:
            conn.execute(
                text(
                    "INSERT INTO item_fts(rowid, text) SELECT id, json_extract(content, '$.text') "
                    "FROM item WHERE id > :last AND json_extract(content, '$.text') IS NOT NULL"
                ),
                {"last": last},
            )
            if conn.execute(text("SELECT coalesce(max(rowid), 0) FROM item_fts")).scalar_one() < newest:
                # The newest items have no text (another kind of project): an empty marker row
                # keeps the next catch-up from scanning them again. It matches no search.
                conn.execute(text("INSERT INTO item_fts(rowid, text) VALUES (:newest, '')"), {"newest": newest})

    write(engine, work)


def _prediction_conditions(
    session: Session, project_id: int, f: BrowseFilter, *, walk: str | None = None
) -> list[ColumnElement[bool]]:
    """The prediction filter's conditions. On SQLite, `walk` keeps the planner on one plan by
    spelling the other columns so no index serves them: "id" (walk the id-ordered prediction
    index: the confidence range is checked on it), "item" (walk an item index in the sort's order:
    each item's prediction is read by its key)."""
    project: Any = col(ItemPrediction.project_id)
    predicted: Any = col(ItemPrediction.predicted)
    confidence: Any = col(ItemPrediction.confidence)
    if walk is not None:
        confidence = confidence + 0
    if walk == "item":
        project, predicted = project + 0, func.coalesce(predicted, "")
    conditions: list[ColumnElement[bool]] = [project == project_id]
    if f.predicted_label:
        conditions.append(predicted == f.predicted_label)
    else:  # every label: the (project, predicted, confidence) index then serves the range per label
        names = session.execute(select(col(ProjectLabel.name)).where(col(ProjectLabel.project_id) == project_id))
        conditions.append(predicted.in_(list(names.scalars())))
    if f.confidence_min is not None:
        conditions.append(confidence >= float(f.confidence_min))
    if f.confidence_max is not None:
        conditions.append(confidence <= float(f.confidence_max))
    return conditions


def _count_predictions(session: Session, conditions: list[ColumnElement[bool]], cap: int) -> int:
    """How many latest predictions match, counting no further than cap + 1."""
    matching = select(col(ItemPrediction.confidence)).where(*conditions).limit(cap + 1).subquery()
    return int(session.execute(select(func.count()).select_from(matching)).scalar_one())


class BrowseService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _query(
        self,
        session: Session,
        project_id: int,
        f: BrowseFilter,
        *,
        predictions: bool = False,
        few_matches: bool = False,
    ) -> Select:
        """The matching items in order; with `predictions`, each row also carries the latest
        prediction (an outer join unless the filter needs one). `few_matches` (at most COUNT_CAP,
        counted): on PostgreSQL, a text search then sorts its matches from the text index rather
        than walking the primary key and computing every item's tsvector until the page fills."""
        dialect = session.get_bind().dialect.name
        on_prediction = sparse = False
        if f.on_prediction:
            wanted = _prediction_conditions(session, project_id, f)
            sparse = _count_predictions(session, wanted, SPARSE_PREDICTIONS) <= SPARSE_PREDICTIONS
            on_prediction = not sparse  # dense: driven from the prediction index, in id order
        # Paging in id order without a sort: by the (project, state, id) or (project, label, id)
        # index when one of those is filtered on, else along the primary key (on SQLite,
        # `project_id + 0` keeps the planner from picking a project index and sorting every item).
        by_id = (
            SortKey(f.sort) == SortKey.ID
            and f.state is None
            and not f.final_label
            and not f.search
            and not on_prediction
            and dialect == "sqlite"
        )  # PostgreSQL's planner finds the key walk itself
        item_id, project = col(Item.id), col(Item.project_id)
        # Over a dense prediction filter, SQLite must not drive from an item index either.
        walk = None
        if on_prediction and dialect == "sqlite":
            walk = "id" if SortKey(f.sort) == SortKey.ID else "item"
            wanted = _prediction_conditions(session, project_id, f, walk=walk)
        unindexed = by_id or walk == "id"
        conditions: list[ColumnElement[bool]] = [(project + 0 if unindexed else project) == project_id]
        if f.state == BrowseState.PARTLY_LABELED:
            conditions += [col(Item.state) == ItemState.OPEN.value, col(Item.n_annotations) > 0]
        elif f.state is not None:
            conditions.append(col(Item.state) == ItemState(f.state.value).value)
        if f.split is not None:
            conditions.append(col(Item.split) == Split(f.split).value)
        if f.final_label:
            conditions.append(col(Item.final_label) == f.final_label)
        human = col(Annotation.source) == AnnotationSource.HUMAN.value
        if f.annotator:
            user_id = session.execute(select(col(User.id)).where(col(User.name) == f.annotator)).scalar_one_or_none()
            if user_id is None:
                raise NotFound(f"no user named {f.annotator!r}")
            conditions.append(
                exists().where(col(Annotation.item_id) == item_id, col(Annotation.annotator_id) == user_id, human)
            )
        if f.disagreement:
            conditions.append(
                item_id.in_(
                    select(col(Annotation.item_id))
                    .where(col(Annotation.project_id) == project_id, human)
                    .group_by(col(Annotation.item_id))
                    .having(func.count(func.distinct(col(Annotation.label))) > 1)
                )
            )
        if f.skip_reason is not None:
            skipped = [col(Lease.item_id) == item_id, col(Lease.state) == "skipped"]
            if f.skip_reason:
                skipped.append(col(Lease.skip_reason) == f.skip_reason)
            conditions.append(exists().where(*skipped))
        if f.flag:
            conditions.append(exists().where(col(ItemFlag.item_id) == item_id, col(ItemFlag.kind) == f.flag))
        predicted_id = col(ItemPrediction.item_id)
        if sparse:  # the few matching ids, from the confidence range
            conditions.append(item_id.in_(select(predicted_id).where(*wanted)))
        elif on_prediction:  # walked in item order along the (project, predicted, item, confidence) index
            conditions += wanted
        columns: list[Any] = [
            item_id,
            col(Item.external_id),
            col(Item.split),
            col(Item.state),
            col(Item.final_label),
            col(Item.n_annotations),
            col(Item.content),
        ]
        if predictions or on_prediction:
            columns += [col(ItemPrediction.predicted), col(ItemPrediction.confidence)]
        query = select(*columns)
        if on_prediction:
            query = query.select_from(ItemPrediction).join(Item, item_id == predicted_id)
        elif predictions:
            query = query.outerjoin(ItemPrediction, predicted_id == item_id)
        query = query.where(and_(*conditions))
        words = _words(f.search or "")
        if f.search is not None and f.search.strip() and not words:
            raise WorkbenchError("search for at least one word (letters or digits)")
        if words:
            if dialect == "sqlite":
                match = " ".join(f'"{w}"' for w in words)
                query = query.where(
                    item_id.in_(text("SELECT rowid FROM item_fts WHERE item_fts MATCH :match").bindparams(match=match))
                )
            else:
                # Spelled as the index expression (constants, not parameters) so the planner uses it.
                query = query.where(
                    text(
                        "to_tsvector('simple', item.content->>'text') @@ plainto_tsquery('simple', :words)"
                    ).bindparams(words=" ".join(words))
                )
        # In id order over a prediction filter, order by the prediction's item id (the same value):
        # the index walk then gives the order and the first page stops early.
        key_column = predicted_id if on_prediction else item_id
        order: Any = {
            SortKey.ID: key_column,
            SortKey.EXTERNAL_ID: col(Item.external_id),
            SortKey.STATE: col(Item.state),
            SortKey.LABELS: col(Item.n_annotations),
        }[SortKey(f.sort)]
        if few_matches and words and dialect != "sqlite" and order is item_id:
            order = item_id + 0  # not the key's order: the planner takes the text index, then sorts
        ordered = order.desc() if f.descending else order.asc()
        if order is key_column or SortKey(f.sort) == SortKey.ID:
            return query.order_by(ordered)
        return query.order_by(ordered, item_id.desc() if f.descending else item_id.asc())

    @requires(Role.REVIEWER)
    def page(
        self,
        project_name: str,
        *,
        actor: Actor,
        filters: BrowseFilter = BrowseFilter(),
        offset: int = 0,
        limit: int = PAGE_SIZE,
    ) -> BrowsePage:
        """One page of the items that match, with the number of matches (capped)."""
        limit = max(1, min(int(limit), 500))
        offset = max(0, int(offset))
        if filters.search and self.engine.dialect.name == "sqlite":
            _sqlite_fts_catch_up(self.engine)
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            query = self._query(session, project.id, filters)
            # Counted first: the count (capped) picks the plan of a text search on PostgreSQL.
            if filters.on_prediction and not filters.on_item:
                # Every prediction is of an item of the project: count on the prediction index alone.
                wanted = _prediction_conditions(session, project.id, filters)
                capped = _count_predictions(session, wanted, COUNT_CAP)
            else:
                capped = session.execute(
                    select(func.count()).select_from(
                        query.order_by(None).with_only_columns(col(Item.id)).limit(COUNT_CAP + 1).subquery()
                    )
                ).scalar_one()
            if filters.search and capped <= COUNT_CAP and self.engine.dialect.name != "sqlite":
                query = self._query(session, project.id, filters, few_matches=True)
            rows = session.execute(query.offset(offset).limit(limit)).all()
            if rows and "predicted" in rows[0]._fields:
                predicted = {r.id: (r.predicted, r.confidence) for r in rows}
            else:  # the page's latest predictions, by primary key
                predicted = {
                    i: (label, confidence)
                    for i, label, confidence in session.execute(
                        select(
                            col(ItemPrediction.item_id), col(ItemPrediction.predicted), col(ItemPrediction.confidence)
                        ).where(col(ItemPrediction.item_id).in_([r.id for r in rows]))
                    ).all()
                }
        return BrowsePage(
            tuple(
                ItemRow(
                    r.id,
                    r.external_id,
                    Split(r.split),
                    ItemState(r.state),
                    r.final_label,
                    r.n_annotations,
                    _preview(r.content),
                    *predicted.get(r.id, (None, None)),
                )
                for r in rows
            ),
            offset,
            min(capped, COUNT_CAP),
            capped > COUNT_CAP,
        )

    @requires(Role.REVIEWER)
    def export_csv(self, project_name: str, *, actor: Actor, filters: BrowseFilter = BrowseFilter()) -> bytes:
        """Every item that matches (up to EXPORT_CAP), as CSV; values that a spreadsheet would run as a
        formula are prefixed with a quote."""
        from workbench.services.exports import neutralise

        require_role(actor, Role.REVIEWER)
        if filters.search and self.engine.dialect.name == "sqlite":
            _sqlite_fts_catch_up(self.engine)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id", "split", "state", "final_label", "n_labels", "preview", "predicted_label", "confidence"])
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            result = session.execute(self._query(session, project.id, filters, predictions=True).limit(EXPORT_CAP))
            for r in result:
                writer.writerow(
                    [
                        neutralise(v)
                        for v in (
                            r.external_id,
                            r.split,
                            r.state,
                            r.final_label or "",
                            r.n_annotations,
                            _preview(r.content),
                            r.predicted or "",
                            "" if r.confidence is None else f"{r.confidence:.4f}",
                        )
                    ]
                )
        return out.getvalue().encode("utf-8")

    @requires(Role.REVIEWER)
    def detail(self, project_name: str, external_id: str, *, actor: Actor) -> ItemDetail:
        """One item with everything that happened to it (reviewers and admins only: it shows every
        annotator's answer)."""
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            item = session.execute(
                select(Item).where(col(Item.project_id) == project.id, col(Item.external_id) == external_id)
            ).scalar_one_or_none()
            if item is None or item.id is None:
                raise NotFound(f"no item {external_id!r} in {project.name!r}")
            names: dict[int, str] = {
                int(i): str(n) for i, n in session.execute(select(col(User.id), col(User.name))).all()
            }
            annotations = (
                session.execute(
                    select(Annotation)
                    .where(col(Annotation.item_id) == item.id)
                    .order_by(col(Annotation.created_at), col(Annotation.id))
                )
                .scalars()
                .all()
            )
            leases = (
                session.execute(
                    select(Lease).where(col(Lease.item_id) == item.id).order_by(col(Lease.claimed_at), col(Lease.id))
                )
                .scalars()
                .all()
            )
            adjudications = (
                session.execute(
                    select(Adjudication)
                    .where(col(Adjudication.item_id) == item.id)
                    .order_by(col(Adjudication.created_at), col(Adjudication.id))
                )
                .scalars()
                .all()
            )
            flags = session.execute(
                select(col(ItemFlag.kind), col(ItemFlag.reason))
                .where(col(ItemFlag.item_id) == item.id)
                .order_by(col(ItemFlag.kind))
            ).all()
            audit = (
                session.execute(
                    select(AuditLog)
                    .where(col(AuditLog.project_id) == project.id, col(AuditLog.item_id) == item.id)
                    .order_by(col(AuditLog.at), col(AuditLog.id))
                )
                .scalars()
                .all()
            )
            predictions = _predictions(session, item.id)
        return ItemDetail(
            item.id,
            item.external_id,
            Split(item.split),
            ItemState(item.state),
            item.final_label,
            dict(item.content),
            tuple(
                AnnotationEvent(
                    names.get(a.annotator_id) if a.annotator_id else None,
                    AnnotationSource(a.source),
                    a.label,
                    a.created_at,
                    a.duration_ms,
                )
                for a in annotations
            ),
            tuple(
                LeaseEvent(
                    names.get(lease.annotator_id, "?"),
                    lease.state,
                    lease.reason,
                    lease.claimed_at,
                    lease.closed_at,
                    lease.skip_reason,
                )
                for lease in leases
            ),
            tuple(
                AdjudicationEvent(
                    names.get(a.reviewer_id, "?"),
                    a.decision,
                    a.label,
                    a.reason,
                    a.previous_state,
                    a.previous_label,
                    a.created_at,
                )
                for a in adjudications
            ),
            tuple((kind, reason) for kind, reason in flags),
            tuple(
                AuditEvent(e.action, names.get(e.actor_id) if e.actor_id else None, e.at, dict(e.details))
                for e in audit
            ),
            predictions,
        )


def _predictions(session: Session, item_id: int) -> tuple[PredictionEvent, ...]:
    """Every model run's prediction of one item, newest run first: the latest run's (with its
    confidence), and each run's eval-split and stop-set predictions."""
    events: list[PredictionEvent] = []
    sources: tuple[tuple[PredictionSource, Any], ...] = (
        (PredictionSource.LATEST, ItemPrediction),
        (PredictionSource.EVAL, EvalPrediction),
        (PredictionSource.STOP, StopPrediction),
    )
    for source, table in sources:
        confidence = col(table.confidence) if table is ItemPrediction else None
        query = (
            select(col(table.model_run_id), col(ModelRun.created_at), col(table.predicted))
            .add_columns(*([confidence] if confidence is not None else []))
            .join(ModelRun, col(ModelRun.id) == col(table.model_run_id))
            .where(col(table.item_id) == item_id)
        )
        for row in session.execute(query).all():
            events.append(
                PredictionEvent(int(row[0]), row[1], source, str(row[2]), float(row[3]) if len(row) > 3 else None)
            )
    order = {PredictionSource.LATEST: 0, PredictionSource.EVAL: 1, PredictionSource.STOP: 2}
    return tuple(sorted(events, key=lambda e: (-e.model_run_id, order[e.source])))
