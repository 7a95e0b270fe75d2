"""The double-labeling queue: claim (a leased slot), renew, submit, skip, undo.

Every item ends with exactly `overlap` human annotations from distinct annotators. A claim is a
lease on one slot (1..overlap) of one item; the schema keeps a slot and an (item, annotator) pair
unique among active leases and among annotations, so a race surfaces as a retried IntegrityError,
never as a third label. SQLite serialises claims with BEGIN IMMEDIATE; PostgreSQL uses
FOR UPDATE SKIP LOCKED so concurrent claimers pass over each other's candidates.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Engine,
    Row,
    Select,
    SQLColumnExpression,
    String,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import aliased
from sqlalchemy.orm.util import AliasedClass
from sqlmodel import Session, col

from workbench.db.models import (
    Adjudication,
    Annotation,
    AnnotatorQuality,
    Item,
    ItemPrediction,
    Lease,
    ModelRun,
    Project,
    RankEntry,
    utcnow,
)
from workbench.domain import (
    Actor,
    AnnotationSource,
    AnnotatorStats,
    ClaimedItem,
    ClaimReason,
    GuidelinesInfo,
    ItemState,
    LabelView,
    LeaseState,
    Progress,
    ProjectInfo,
    RecentLabel,
    Role,
    Split,
    SubmitResult,
)
from workbench.domain.overlap import GivenLabel, ModelView, Next, OverlapPolicy, OverlapSettings, decide
from workbench.errors import Conflict, NotFound, WorkbenchError
from workbench.services._auth import requires
from workbench.services._tx import audit, audit_rows, reading, write
from workbench.services.guidelines import current_guidelines, current_version_of
from workbench.services.members import check_member, member_role_column, refuse_unless
from workbench.services.projects import load_project, unoffered

# A lease by these states means the annotator has had the item: never serve it to them again.
_HAD_IT = (LeaseState.ACTIVE, LeaseState.SUBMITTED, LeaseState.SKIPPED)

# The hot path's statements are built once: constructing SQLAlchemy expressions per call cost
# more CPU than SQLite spent executing them. Values come in as bind parameters.
_P = bindparam


def _lapsed(lease: type[Lease] | AliasedClass[Lease]) -> ColumnElement[bool]:
    return and_(
        col(lease.state) == LeaseState.ACTIVE,
        col(lease.expires_at) < _P("now"),
        col(lease.project_id) == _P("b_project_id"),
    )


_EXPIRE = (
    update(Lease)
    .where(_lapsed(Lease))
    .values(state=LeaseState.EXPIRED, closed_at=_P("now"))
    .returning(col(Lease.id), col(Lease.item_id))
)
# PostgreSQL: every claim sweeps, and a plain UPDATE of the lapsed leases made each claimer wait
# for the row locks of the one sweeping before it (until it committed its whole claim), so claims
# queued one behind another. Locking the lapsed leases with SKIP LOCKED first lets a claimer pass
# over those another transaction is sweeping or submitting; the next claim's sweep catches any left.
_LAPSING = aliased(Lease, name="lapsing")
_EXPIRE_SKIPPING = (
    update(Lease)
    .where(col(Lease.id).in_(select(col(_LAPSING.id)).where(_lapsed(_LAPSING)).with_for_update(skip_locked=True)))
    .values(state=LeaseState.EXPIRED, closed_at=_P("now"))
    .returning(col(Lease.id), col(Lease.item_id))
)
_FREE_SLOT = update(Item).where(col(Item.id) == _P("item_id")).values(slots_taken=col(Item.slots_taken) - 1)
_CLOSE = (
    update(Lease)
    .where(col(Lease.id) == _P("lease_id"), col(Lease.state) == LeaseState.ACTIVE)
    .values(state=_P("b_state"), closed_at=_P("now"), skip_reason=_P("b_skip_reason"))
)
_LEASE_COLUMNS = (
    col(Lease.id),
    col(Lease.project_id),
    col(Lease.item_id),
    col(Lease.annotator_id),
    col(Lease.slot),
    col(Lease.state),
    col(Lease.reason),
    col(Lease.strategy),
    col(Lease.score),
    col(Lease.model_run_id),
    col(Lease.claimed_at),
    col(Lease.expires_at),
)
_HELD = (
    select(*_LEASE_COLUMNS)
    .where(
        col(Lease.project_id) == _P("project_id"),
        col(Lease.annotator_id) == _P("actor_id"),
        col(Lease.state) == LeaseState.ACTIVE,
    )
    .limit(1)
)
_LEASE_FOR_UPDATE = select(*_LEASE_COLUMNS).where(col(Lease.id) == _P("lease_id")).with_for_update()
_SET_EXPIRY = update(Lease).where(col(Lease.id) == _P("lease_id")).values(expires_at=_P("b_expires_at"))
_OPEN = and_(col(Item.project_id) == _P("project_id"), col(Item.state) == ItemState.OPEN)
_NOT_MINE = and_(
    ~exists().where(
        col(Lease.item_id) == col(Item.id), col(Lease.annotator_id) == _P("actor_id"), col(Lease.state).in_(_HAD_IT)
    ),
    ~exists().where(col(Annotation.item_id) == col(Item.id), col(Annotation.annotator_id) == _P("actor_id")),
)


# The pick conditions: which items an annotator may claim next, each pick one statement that stops
# at its first row. Written once here; the claim runs them in the order _order draws for it.
# Each row carries what the page shows, so the claimed item needs no read of its own.
def _pick_of(
    where: ColumnElement[bool],
    order: tuple[SQLColumnExpression[Any], ...],
    reason: ClaimReason,
    strategy: str | None = None,
) -> Select[Any]:
    return (
        select(
            col(Item.id).label("id"),
            literal(reason.value, String).label("reason"),
            literal(strategy, String).label("strategy") if strategy else null().label("strategy"),
            null().label("score"),
            null().label("model_run_id"),
            col(Item.external_id),
            col(Item.split),
            col(Item.content),
        )
        .where(where)
        .order_by(*order)
        .limit(1)
    )


def _fresh(split: Split, before: bool) -> ColumnElement[bool]:
    """A new item (no slot taken) of one split, at or after the drawn random key, or before it."""
    start = col(Item.random_key) < _P("start") if before else col(Item.random_key) >= _P("start")
    return and_(_OPEN, col(Item.slots_taken) == 0, col(Item.split) == split, _NOT_MINE, start)


def _gold(before: bool) -> ColumnElement[bool]:
    """Gold items (a known answer) are final from the start and served to any annotator who has
    not had them, at the project's gold_share of claims; they look like any other item."""
    start = col(Item.random_key) < _P("start") if before else col(Item.random_key) >= _P("start")
    return and_(col(Item.project_id) == _P("project_id"), col(Item.gold_label).is_not(None), _NOT_MINE, start)


_BY_KEY = (col(Item.random_key),)
_PICKS: dict[str, Select[Any]] = {
    "gold_from": _pick_of(_gold(False), _BY_KEY, ClaimReason.GOLD),
    "gold_before": _pick_of(_gold(True), _BY_KEY, ClaimReason.GOLD),
    "partial": _pick_of(
        and_(
            _OPEN,
            col(Item.slots_taken) >= 1,
            col(Item.slots_taken) < func.coalesce(col(Item.labels_wanted), _P("overlap")),
            _NOT_MINE,
        ),
        (col(Item.slots_taken).desc(), col(Item.random_key)),
        ClaimReason.PARTIAL,
    ),
    "eval_from": _pick_of(_fresh(Split.EVAL, False), _BY_KEY, ClaimReason.EVAL),
    "eval_before": _pick_of(_fresh(Split.EVAL, True), _BY_KEY, ClaimReason.EVAL),
    "control_from": _pick_of(_fresh(Split.POOL, False), _BY_KEY, ClaimReason.CONTROL, "random"),
    "control_before": _pick_of(_fresh(Split.POOL, True), _BY_KEY, ClaimReason.CONTROL, "random"),
    "ranked": select(
        col(RankEntry.item_id).label("id"),
        literal(ClaimReason.RANKED.value, String).label("reason"),
        col(RankEntry.strategy),
        col(RankEntry.score),
        col(RankEntry.model_run_id),
        col(Item.external_id),
        col(Item.split),
        col(Item.content),
    )
    .join(Item, col(Item.id) == col(RankEntry.item_id))
    .where(
        col(RankEntry.project_id) == _P("project_id"),
        col(Item.state) == ItemState.OPEN,
        col(Item.slots_taken) == 0,
        _NOT_MINE,
    )
    .order_by(col(RankEntry.position))
    .limit(1),
    "pool_from": _pick_of(_fresh(Split.POOL, False), _BY_KEY, ClaimReason.RANDOM),
    "pool_before": _pick_of(_fresh(Split.POOL, True), _BY_KEY, ClaimReason.RANDOM),
}
# PostgreSQL runs the picks one statement each, in order, until one finds a row: FOR UPDATE SKIP
# LOCKED, which lets concurrent claimers pass over each other's candidates, is not allowed with
# UNION. Before an annotator is told nothing is left, a second pass waits for locked candidates.
_SKIPPING = {name: q.with_for_update(skip_locked=True, of=Item) for name, q in _PICKS.items()}
_WAITING = {name: q.with_for_update(of=Item) for name, q in _PICKS.items()}
# SQLite serialises writers anyway: the picks in the drawn order are the branches of one UNION ALL
# (each a subquery, so it may keep its ORDER BY and LIMIT), one statement per claim.
_BRANCHES = {name: select(q.subquery()) for name, q in _PICKS.items()}
_UNIONS: dict[tuple[str, ...], CompoundSelect] = {}


def _candidates(names: tuple[str, ...]) -> CompoundSelect:
    """The UNION ALL of the named picks (built once per order)."""
    found = _UNIONS.get(names)
    if found is None:
        found = _UNIONS[names] = union_all(*(_BRANCHES[name] for name in names)).limit(1)
    return found


# Items others hold that this annotator could still get: counted from the live leases, which are
# few, so it stays cheap on a large pool. An alias, so _NOT_MINE's subqueries do not correlate to it.
_OTHERS = aliased(Lease)
_HELD_BY_OTHERS = (
    select(func.count(func.distinct(col(_OTHERS.item_id))))
    .join(Item, col(Item.id) == col(_OTHERS.item_id))
    .where(
        col(_OTHERS.project_id) == _P("project_id"),
        col(_OTHERS.state) == LeaseState.ACTIVE,
        col(_OTHERS.annotator_id) != _P("actor_id"),
        _OPEN,
        _NOT_MINE,
    )
)
_TAKEN_SLOTS: CompoundSelect = union_all(
    select(col(Lease.slot)).where(col(Lease.item_id) == _P("item_id"), col(Lease.state) == LeaseState.ACTIVE),
    select(col(Annotation.slot)).where(
        col(Annotation.item_id) == _P("item_id"), col(Annotation.source) == AnnotationSource.HUMAN
    ),
)
_TAKE_SLOT = (
    update(Item)
    .where(col(Item.id) == _P("item_id"), col(Item.slots_taken) < func.coalesce(col(Item.labels_wanted), _P("overlap")))
    .values(slots_taken=col(Item.slots_taken) + 1)
)
_INSERT_LEASE = insert(Lease).returning(col(Lease.id))
_ITEM_VIEW = select(col(Item.id), col(Item.external_id), col(Item.split), col(Item.content)).where(
    col(Item.id) == _P("item_id")
)
_PROJECT_NAME = select(col(Project.name)).where(col(Project.id) == _P("project_id"))
_STORED = select(col(Annotation.id)).where(col(Annotation.lease_id) == _P("lease_id"))
# The annotation records the guidelines version current at the time of the label, in the same statement.
_INSERT_ANNOTATION = (
    insert(Annotation)
    .values(guidelines_version=current_version_of(_P("b_gl_project_id")))
    .returning(col(Annotation.id))
)
_SUBMITTED = (
    update(Lease).where(col(Lease.id) == _P("lease_id")).values(state=LeaseState.SUBMITTED, closed_at=_P("now"))
)
_COUNT_ANNOTATION = update(Item).where(col(Item.id) == _P("item_id")).values(n_annotations=col(Item.n_annotations) + 1)
_HUMAN_LABELS = (
    select(
        col(Annotation.annotator_id),
        col(Annotation.label),
        col(AnnotatorQuality.reliability),
        col(AnnotatorQuality.paused),
    )
    .outerjoin(
        AnnotatorQuality,
        and_(
            col(AnnotatorQuality.user_id) == col(Annotation.annotator_id),
            col(AnnotatorQuality.project_id) == col(Annotation.project_id),
        ),
    )
    .where(col(Annotation.item_id) == _P("item_id"), col(Annotation.source) == AnnotationSource.HUMAN)
    .order_by(col(Annotation.slot))
)
_ITEM_SPLIT = select(col(Item.split)).where(col(Item.id) == _P("item_id"))
# Adaptive overlap's model prior: the latest round's prediction of the item and that run's metrics.
_ITEM_MODEL = (
    select(col(ItemPrediction.predicted), col(ItemPrediction.confidence), col(ModelRun.metrics))
    .join(ModelRun, col(ModelRun.id) == col(ItemPrediction.model_run_id))
    .where(col(ItemPrediction.item_id) == _P("item_id"))
)
_RESOLVE = (
    update(Item)
    .where(col(Item.id) == _P("item_id"))
    .values(
        state=_P("b_state"),
        final_label=_P("b_final_label"),
        labels_wanted=_P("b_wanted"),
        final_by=_P("b_final_by"),
        reason=_P("b_reason"),
    )
)
_TAKE_GOLD_SLOT = update(Item).where(col(Item.id) == _P("item_id")).values(slots_taken=col(Item.slots_taken) + 1)
_PAUSED = select(col(AnnotatorQuality.paused), col(AnnotatorQuality.reliability)).where(
    col(AnnotatorQuality.project_id) == _P("project_id"), col(AnnotatorQuality.user_id) == _P("actor_id")
)
# A submit's one read: the lease, its item, and whether the annotator is paused in the project.
_SUBMIT_VIEW = (
    select(
        *_LEASE_COLUMNS,
        col(Item.state).label("item_state"),
        col(Item.n_annotations),
        col(Item.external_id),
        col(Item.labels_wanted),
        col(Item.gold_label),
        col(Item.split),
        col(AnnotatorQuality.paused),
        member_role_column(col(Lease.project_id), col(Lease.annotator_id)),
        col(Project.archived_at).label("project_archived_at"),
        col(Project.changed_at).label("project_changed_at"),
    )
    .join(Item, col(Item.id) == col(Lease.item_id))
    .join(Project, col(Project.id) == col(Lease.project_id))
    .outerjoin(
        AnnotatorQuality,
        and_(
            col(AnnotatorQuality.user_id) == col(Lease.annotator_id),
            col(AnnotatorQuality.project_id) == col(Lease.project_id),
        ),
    )
    .where(col(Lease.id) == _P("lease_id"))
    .with_for_update(of=(Lease, Item))
)


def _stored(key: int | None) -> int:
    """A primary key read back from the database: SQLModel types it optional (None until a row is
    stored), the column is never null."""
    if key is None:
        raise AssertionError("a stored row without a primary key")
    return key


# The hot path sweeps lapsed leases at most this often per project (a plain claim always does).
SWEEP_EVERY_S = 5.0


def expire_stale_leases(session: Session, project_id: int, now: datetime, later: list[dict] | None = None) -> int:
    """Mark lapsed leases expired and give their slots back to the queue.

    One conditional UPDATE ... RETURNING. On PostgreSQL it passes over leases another transaction
    holds locked (a concurrent sweep or submit): those are that transaction's to settle, and a
    lease still lapsed afterwards is expired by the next sweep.
    """
    conn = session.connection()
    sweep = _EXPIRE_SKIPPING if conn.dialect.name == "postgresql" else _EXPIRE
    stale = conn.execute(sweep, {"now": now, "b_project_id": project_id}).all()
    for lease_id, item_id in stale:
        conn.execute(_FREE_SLOT, {"item_id": item_id})
        audit(session, "lease.expired", project_id=project_id, item_id=item_id, lease_id=lease_id, later=later)
    return len(stale)


def _release(
    session: Session, lease_id: int, item_id: int, state: LeaseState, now: datetime, skip_reason: str | None = None
) -> bool:
    """Close an active lease and free its slot; False if it was no longer active."""
    conn = session.connection()
    closed = conn.execute(
        _CLOSE, {"lease_id": lease_id, "b_state": state, "now": now, "b_skip_reason": skip_reason}
    ).rowcount
    if closed:
        conn.execute(_FREE_SLOT, {"item_id": item_id})
    return bool(closed)


_ACTIVE_OF_USER = (
    select(col(Lease.id), col(Lease.item_id), col(Lease.project_id))
    .where(col(Lease.annotator_id) == _P("user_id"), col(Lease.state) == LeaseState.ACTIVE)
    .with_for_update()
)


def release_user_leases(session: Session, user_id: int, now: datetime, *, why: str, actor_id: int | None = None) -> int:
    """Give every active lease of one user back to the queue at once (sign-out, leaving the Label
    page, a disabled account), not only when their time lapses. Returns how many were released."""
    released = 0
    for lease_id, item_id, project_id in session.connection().execute(_ACTIVE_OF_USER, {"user_id": user_id}).all():
        if _release(session, _stored(lease_id), item_id, LeaseState.EXPIRED, now):
            released += 1
            audit(
                session,
                "lease.released",
                actor_id=actor_id,
                project_id=project_id,
                item_id=item_id,
                lease_id=lease_id,
                why=why,
            )
    return released


def resolve(
    session: Session, item_id: int, project: ProjectInfo, split: str | None = None, later: list[dict] | None = None
) -> ItemState:
    """After a label: ask the overlap policy (workbench.domain.overlap.decide, the same function
    `workbench simulate` calls) whether the item is final, needs another label, or goes to review.
    Paused annotators' labels do not count; each decision's reason is stored on the item."""
    conn = session.connection()
    rows = conn.execute(_HUMAN_LABELS, {"item_id": item_id}).all()
    settings = OverlapSettings.from_project(project.overlap, project.settings)
    counting = [GivenLabel(str(a), label, reliability) for a, label, reliability, paused in rows if not paused]
    if split is None:
        split = conn.execute(_ITEM_SPLIT, {"item_id": item_id}).scalar_one()
    model = None
    if settings.policy == OverlapPolicy.ADAPTIVE and split != "eval" and project.settings.get("model_prior", True):
        model = _model_view(conn.execute(_ITEM_MODEL, {"item_id": item_id}).first(), project.labels)
    decision = decide(counting, settings=settings, label_set=project.labels, split=split, model=model)
    paused_labels = len(rows) - len(counting)
    if decision.next == Next.MORE:
        if settings.policy == OverlapPolicy.FIXED and not paused_labels:
            return ItemState.OPEN  # the hot path: nothing to record until the item is complete
        conn.execute(
            _RESOLVE,
            {
                "item_id": item_id,
                "b_state": ItemState.OPEN,
                "b_final_label": None,
                "b_wanted": decision.labels_wanted + paused_labels,
                "b_final_by": None,
                "b_reason": decision.reason,
            },
        )
        return ItemState.OPEN
    state, final_label = (ItemState.FINAL, decision.label) if decision.next == Next.FINAL else (ItemState.REVIEW, None)
    final_by = None
    if state == ItemState.FINAL:
        final_by = "agreement" if len({g.label for g in counting}) == 1 else "adaptive_posterior"
    conn.execute(
        _RESOLVE,
        {
            "item_id": item_id,
            "b_state": state,
            "b_final_label": final_label,
            "b_wanted": len(rows),
            "b_final_by": final_by,
            "b_reason": decision.reason,
        },
    )
    audit(
        session,
        "item.resolved",
        project_id=project.id,
        item_id=item_id,
        state=state,
        final_label=final_label,
        reason=decision.reason,
        later=later,
    )
    return state


def _model_view(row: Row[*tuple[Any, ...]] | None, labels: Sequence[str]) -> ModelView | None:
    """The latest model's view of an item for the overlap policy: its predicted label at the stored
    probability, the rest spread evenly over the other labels (only the largest class probability
    is stored), trusted at the lower end of the run's eval-accuracy interval, so a model whose
    accuracy is not measurably above chance gets no weight. None: no prediction, or no eval."""
    if row is None:
        return None
    predicted, confidence, metrics = row
    interval = (metrics or {}).get("accuracy_ci95")
    trusted = interval[0] if interval else (metrics or {}).get("accuracy")
    if trusted is None or predicted not in labels or len(labels) < 2:
        return None
    rest = (1.0 - float(confidence)) / (len(labels) - 1)
    proba = {label: (float(confidence) if label == predicted else rest) for label in labels}
    return ModelView(proba, float(trusted))


def _first_want(project: ProjectInfo) -> int:
    """How many labels an item wants before its first label (fixed: the overlap; adaptive: the
    minimum, raised by the policy after each label)."""
    settings = OverlapSettings.from_project(project.overlap, project.settings)
    return project.overlap if settings.policy == OverlapPolicy.FIXED else settings.min_labels


def _needs_more_for_sure(project: ProjectInfo, n_labels: int) -> bool:
    """Fixed overlap with fewer human labels than it asks for: the policy can only say "more"."""
    settings = OverlapSettings.from_project(project.overlap, project.settings)
    return settings.policy == OverlapPolicy.FIXED and n_labels < settings.overlap


def prefers_fresh(project: ProjectInfo, reliability: float | None) -> bool:
    """Adaptive overlap's preference for reliable annotators: one whose estimated reliability
    reaches the project's confidence can settle a new item with one label, so they are served new
    items first and the items that need another label are left to the others (they get them when
    nothing new is left). Everyone else gets partly labeled items first, as under fixed overlap."""
    settings = OverlapSettings.from_project(project.overlap, project.settings)
    return (
        settings.policy == OverlapPolicy.ADAPTIVE
        and bool(project.settings.get("prefer_reliable", True))
        and reliability is not None
        and reliability >= settings.confidence
    )


# The project (labels, overlap, settings) is cached for this long between reads. A write first
# reads the project's id, archived_at and changed_at (one unique-index look-up) and reloads it when
# either moved, so a claim or a label never acts on a changed or archived project.
PROJECT_CACHE_S = 5.0
_STAMP = select(col(Project.id), col(Project.archived_at), col(Project.changed_at)).where(
    col(Project.name) == _P("name")
)


class QueueService:
    def __init__(self, engine: Engine, rng: random.Random | None = None) -> None:
        self.engine = engine
        self.rng = rng or random.Random()
        self._projects: dict[str, tuple[float, ProjectInfo, tuple | None]] = {}
        self._project_names: dict[int, str] = {}
        self._swept: dict[int, float] = {}  # project id -> when the hot path last swept lapsed leases
        # Guidelines change rarely; the label page shows an edit within PROJECT_CACHE_S (each
        # annotation records the version current in the database, not this copy).
        self._guidelines: dict[int, tuple[float, GuidelinesInfo | None]] = {}

    def _project(self, session: Session, name: str, stamp: tuple | None = None) -> ProjectInfo:
        """The project, from the cache unless it lapsed or (inside a write) its stamp moved.
        `stamp` is (id, archived_at, changed_at) when the caller has already read it."""
        cached = self._projects.get(name)
        if session.info.get("writing"):
            if stamp is None:
                stamp = tuple(session.connection().execute(_STAMP, {"name": name}).first() or ())
            if stamp and stamp[1] is None:  # not archived: audit() need not look again
                session.info.setdefault("writable", set()).add(stamp[0])
        if cached is None or cached[0] < time.monotonic() or (stamp is not None and stamp != cached[2]):
            # load_project refuses an archived project inside a write
            cached = (time.monotonic() + PROJECT_CACHE_S, load_project(session, name), stamp)
            self._projects[name] = cached
        return cached[1]

    def _project_by_id(self, session: Session, project_id: int, stamp: tuple | None = None) -> ProjectInfo:
        name = self._project_names.get(project_id)
        if name is None:  # project names never change
            name = self._project_names[project_id] = (
                session.connection().execute(_PROJECT_NAME, {"project_id": project_id}).scalar_one()
            )
        return self._project(session, name, stamp)

    # -- claim ------------------------------------------------------------------------------
    @requires(Role.ANNOTATOR)
    def claim(self, project: str, *, actor: Actor) -> ClaimedItem | None:
        """The next item for this annotator, or None when nothing is available to them now.

        Order: an item whose other slots are already taken (so pairs complete), else an eval item
        at random with probability eval_fraction, else a random pool item with probability
        random_share (the control arm), else the best remaining item of the latest ranking, else
        any open item at random. An annotator with a live lease gets that lease back.
        """
        found = self.claim_or_wait(project, actor=actor)
        return found if isinstance(found, ClaimedItem) else None

    @requires(Role.ANNOTATOR)
    def claim_or_wait(self, project: str, *, actor: Actor) -> ClaimedItem | int:
        """Like :meth:`claim`, but when nothing is available, how many items other annotators hold
        that this one could still get (each returns if skipped or left to lapse). Decided in the
        claim's own transaction, so 0 means the annotator is done: no item can come back to them.
        """
        draws = self._draws()

        def work(session: Session) -> ClaimedItem | int:
            later: list[dict] = []
            info = self._project(session, project)
            check_member(session, actor, info)  # (submit_and_claim: checked on the lease's project)
            found = self._claim(session, info, actor, draws, later=later)
            audit_rows(session, later)
            return found

        return write(self.engine, work)

    def _draws(self) -> tuple[float, ...]:
        return (self.rng.random(), self.rng.random(), self.rng.random(), self.rng.random())

    def _sweep_due(self, project_id: int) -> bool:
        """Whether the hot path should sweep lapsed leases now (at most every SWEEP_EVERY_S)."""
        now = time.monotonic()
        if now - self._swept.get(project_id, -SWEEP_EVERY_S) < SWEEP_EVERY_S:
            return False
        self._swept[project_id] = now
        return True

    def _claim(
        self,
        session: Session,
        project: ProjectInfo,
        actor: Actor,
        draws: tuple[float, ...],
        *,
        paused: bool | None = None,
        sweep: bool = True,
        later: list[dict] | None = None,
    ) -> ClaimedItem | int:
        """The claim inside the caller's transaction. `paused` given means the caller has just
        closed this annotator's live lease in the project (a submit), so there is none to hand back."""
        conn = session.connection()
        now = utcnow()
        if sweep:
            expire_stale_leases(session, project.id, now, later)
            self._swept[project.id] = time.monotonic()
        expires_at = now + timedelta(seconds=project.settings["lease_ttl_s"])
        after_submit = paused is not None
        reliability = None
        if not after_submit or project.settings.get("overlap_policy") == OverlapPolicy.ADAPTIVE:
            standing = conn.execute(_PAUSED, {"project_id": project.id, "actor_id": actor.id}).first()
            if not after_submit:
                paused = bool(standing is not None and standing.paused)
            reliability = standing.reliability if standing is not None else None
        if paused:
            return 0  # paused in this project: nothing for them, now or later
        prefer_fresh = prefers_fresh(project, reliability)
        if not after_submit:
            held = conn.execute(_HELD, {"project_id": project.id, "actor_id": actor.id}).first()
            if held is not None:
                conn.execute(_SET_EXPIRY, {"lease_id": held.id, "b_expires_at": expires_at})
                return self._claimed(session, project, held._asdict() | {"expires_at": expires_at})
        postgres = session.get_bind().dialect.name == "postgresql"
        order = self._order(project, draws, prefer_fresh)
        params = {"project_id": project.id, "actor_id": actor.id, "start": draws[2], "overlap": _first_want(project)}
        if postgres:
            item = self._pick(conn, order, _SKIPPING, params) or self._pick(conn, order, _WAITING, params)
        else:
            item = conn.execute(_candidates(order), params).first()
        if item is None:
            waiting = conn.execute(_HELD_BY_OTHERS, {"project_id": project.id, "actor_id": actor.id}).scalar_one()
            if waiting or not postgres:  # SQLite's write transaction saw one unchanging state
                return waiting
            # PostgreSQL reads each statement's own snapshot: a lease released between the pick
            # and the count is in neither, so look once more before saying "done".
            item = self._pick(conn, order, _WAITING, params)
            if item is None:
                return 0
        item_id = item.id
        reason = ClaimReason(item.reason)
        gold = reason == ClaimReason.GOLD
        if gold:  # recorded and shown as a random pick: nothing tells an annotator it is gold
            reason = ClaimReason.RANDOM
        taken = set(conn.execute(_TAKEN_SLOTS, {"item_id": item_id}).scalars())
        first_want = _first_want(project)
        capacity = max(OverlapSettings.from_project(project.overlap, project.settings).capacity, len(taken) + 1)
        free = set(range(1, capacity + 1)) - taken
        took = conn.execute(_TAKE_GOLD_SLOT if gold else _TAKE_SLOT, {"item_id": item_id, "overlap": first_want})
        if not free or took.rowcount != 1:
            raise Conflict("the queue changed under this claim; try again")
        lease = {
            "project_id": project.id,
            "item_id": item_id,
            "annotator_id": actor.id,
            "slot": min(free),
            "state": LeaseState.ACTIVE,
            "reason": reason,
            "strategy": item.strategy,
            "score": item.score,
            "model_run_id": item.model_run_id,
            "claimed_at": now,
            "expires_at": expires_at,
            "closed_at": None,
            "skip_reason": None,
        }
        lease["id"] = conn.execute(_INSERT_LEASE, lease).scalar_one()
        audit(
            session,
            "lease.claim",
            actor_id=actor.id,
            project_id=project.id,
            item_id=item_id,
            later=later,
            lease_id=lease["id"],
            slot=lease["slot"],
            reason=lease["reason"],
            strategy=lease["strategy"],
            score=lease["score"],
            model_run_id=lease["model_run_id"],
        )
        return self._claimed(session, project, lease, item)

    @staticmethod
    def _order(project: ProjectInfo, draws: tuple[float, ...], prefer_fresh: bool = False) -> tuple[str, ...]:
        """The names of the picks in the order a claim tries them (one UNION ALL on SQLite, one
        statement each on PostgreSQL); partly labeled items last for an annotator who prefers new
        ones (see prefers_fresh). An empty control arm means no fresh pool item, so the pool is
        not tried again after the ranking."""
        names: list[str] = []
        if len(draws) > 3 and draws[3] < float(project.settings.get("gold_share") or 0.0):
            names += ["gold_from", "gold_before"]
        if not prefer_fresh:
            names.append("partial")
        if draws[0] < project.settings["eval_fraction"]:
            names += ["eval_from", "eval_before"]
        control = draws[1] < project.settings["random_share"]
        if control:  # the same candidates as the fallback below: an empty control arm means no fresh pool item
            names += ["control_from", "control_before"]
        names.append("ranked")
        if not control:
            names += ["pool_from", "pool_before"]
        if "eval_from" not in names:
            names += ["eval_from", "eval_before"]
        if prefer_fresh:
            names.append("partial")
        return tuple(names)

    @staticmethod
    def _pick(
        conn: Connection, order: tuple[str, ...], picks: dict[str, Select[Any]], params: dict[str, Any]
    ) -> Row[Any] | None:
        """PostgreSQL: the first row of the picks in `order`, one statement each."""
        for name in order:
            found = conn.execute(picks[name], params).first()
            if found is not None:
                return found
        return None

    @staticmethod
    def _claimed(
        session: Session, project: ProjectInfo, lease: dict[str, Any], item: Row[Any] | None = None
    ) -> ClaimedItem:
        if item is None:
            item = session.connection().execute(_ITEM_VIEW, {"item_id": lease["item_id"]}).one()
        return ClaimedItem(
            lease_id=lease["id"],
            item_id=item.id,
            external_id=item.external_id,
            split=Split(item.split),
            content=dict(item.content),
            labels=project.offered,
            slot=lease["slot"],
            reason=ClaimReason(lease["reason"]),
            strategy=lease["strategy"],
            score=lease["score"],
            model_run_id=lease["model_run_id"],
            expires_at=lease["expires_at"],
        )

    # -- lease upkeep ----------------------------------------------------------------------
    def _live_lease(self, session: Session, lease_id: int, actor: Actor) -> tuple[Row[*tuple[Any, ...]], ProjectInfo]:
        lease = session.connection().execute(_LEASE_FOR_UPDATE, {"lease_id": lease_id}).first()
        if lease is None or lease.annotator_id != actor.id:
            raise NotFound(f"{actor.name} holds no claim {lease_id}")
        project = self._project_by_id(session, lease.project_id)
        check_member(session, actor, project)
        return lease, project

    @requires(Role.ANNOTATOR)
    def renew(self, lease_id: int, *, actor: Actor) -> datetime:
        """Extend a live lease by the project's TTL (called while the annotator is active)."""

        def work(session: Session) -> datetime:
            lease, project = self._live_lease(session, lease_id, actor)
            now = utcnow()
            if lease.state != LeaseState.ACTIVE or lease.expires_at < now:
                raise Conflict("this claim has lapsed; ask for the next item")
            expires_at = now + timedelta(seconds=project.settings["lease_ttl_s"])
            session.connection().execute(_SET_EXPIRY, {"lease_id": lease_id, "b_expires_at": expires_at})
            return expires_at

        return write(self.engine, work)

    # -- submit / skip / undo --------------------------------------------------------------
    @requires(Role.ANNOTATOR)
    def submit(self, lease_id: int, label: str, *, actor: Actor, duration_ms: int | None = None) -> SubmitResult:
        """Store the annotator's label for a claimed slot. Idempotent per lease."""
        return write(self.engine, lambda session: self._submit(session, lease_id, label, actor, duration_ms)[0])

    def _submit(
        self,
        session: Session,
        lease_id: int,
        label: str,
        actor: Actor,
        duration_ms: int | None,
        later: list[dict] | None = None,
    ) -> tuple[SubmitResult, ProjectInfo, bool]:
        """The submit inside the caller's transaction; also says whether the annotator is paused."""
        conn = session.connection()
        lease = conn.execute(_SUBMIT_VIEW, {"lease_id": lease_id}).first()
        if lease is None or lease.annotator_id != actor.id:
            raise NotFound(f"{actor.name} holds no claim {lease_id}")
        stamp = (lease.project_id, lease.project_archived_at, lease.project_changed_at)
        project = self._project_by_id(session, lease.project_id, stamp)
        refuse_unless(actor, project, lease.member_role)
        paused = bool(lease.paused)
        if lease.state != LeaseState.ACTIVE:  # an active lease has no label yet (undo reactivates it empty)
            stored = conn.execute(_STORED, {"lease_id": lease.id}).scalar_one_or_none()
            if stored is not None:
                return SubmitResult(stored, ItemState(lease.item_state), duplicate=True), project, paused
        if label not in project.offered:
            raise WorkbenchError(unoffered(label, project))
        now = utcnow()
        if lease.state != LeaseState.ACTIVE or lease.expires_at < now:
            raise Conflict(
                f"this claim is {'expired' if lease.state == LeaseState.ACTIVE else lease.state}; ask for the next item"
            )
        wanted = lease.labels_wanted if lease.labels_wanted is not None else _first_want(project)
        if lease.gold_label is None and (lease.item_state != ItemState.OPEN or lease.n_annotations >= wanted):
            raise Conflict(f"item {lease.external_id!r} already has all its labels")
        elapsed = int((now - lease.claimed_at).total_seconds() * 1000)
        annotation_id = conn.execute(
            _INSERT_ANNOTATION,
            {
                "project_id": project.id,
                "item_id": lease.item_id,
                "annotator_id": actor.id,
                "source": AnnotationSource.HUMAN,
                "slot": lease.slot,
                "lease_id": lease.id,
                "label": label,
                "created_at": now,
                "duration_ms": duration_ms if duration_ms is not None else elapsed,
                "b_gl_project_id": project.id,
            },
        ).scalar_one()
        conn.execute(_SUBMITTED, {"lease_id": lease.id, "now": now})
        conn.execute(_COUNT_ANNOTATION, {"item_id": lease.item_id})
        audit(
            session,
            "annotation.submit",
            actor_id=actor.id,
            project_id=project.id,
            item_id=lease.item_id,
            later=later,
            annotation_id=annotation_id,
            lease_id=lease.id,
            slot=lease.slot,
        )
        if lease.gold_label is not None:  # a gold item keeps its known answer; its labels only measure annotators
            state = ItemState(lease.item_state)
        elif _needs_more_for_sure(project, lease.n_annotations + 1) and not paused:
            state = ItemState.OPEN  # fixed overlap not reached: nothing to compare or record yet
        else:
            state = resolve(session, lease.item_id, project, split=lease.split, later=later)
        return SubmitResult(_stored(annotation_id), state, duplicate=False), project, paused

    @requires(Role.ANNOTATOR)
    def submit_and_claim(
        self, lease_id: int, label: str, *, actor: Actor, duration_ms: int | None = None
    ) -> tuple[SubmitResult, ClaimedItem | int]:
        """Store the label and claim the next item (as :meth:`claim_or_wait`) in one transaction:
        the label page's hot path, one round trip to the database per answer."""
        draws = self._draws()

        def work(session: Session) -> tuple[SubmitResult, ClaimedItem | int]:
            later: list[dict] = []
            result, project, paused = self._submit(session, lease_id, label, actor, duration_ms, later)
            sweep = self._sweep_due(project.id)
            found = self._claim(session, project, actor, draws, paused=paused, sweep=sweep, later=later)
            audit_rows(session, later)
            return result, found

        return write(self.engine, work)

    @requires(Role.ANNOTATOR)
    def release_leases(self, *, actor: Actor, why: str = "left the Label page") -> int:
        """Give back every item this user holds (they left the Label page or signed out)."""
        user_id = actor.id
        if user_id is None:
            return 0  # the local operator holds no leases
        return write(
            self.engine, lambda session: release_user_leases(session, user_id, utcnow(), why=why, actor_id=user_id)
        )

    @requires(Role.ANNOTATOR)
    def skip(self, lease_id: int, reason: str, *, actor: Actor) -> None:
        """Give the item back without a label; it is not offered to this annotator again."""
        if not reason.strip():
            raise WorkbenchError("a skip needs a reason")

        def work(session: Session) -> None:
            lease, project = self._live_lease(session, lease_id, actor)
            if lease.state != LeaseState.ACTIVE:
                raise Conflict(f"this claim is already {lease.state}")
            _release(session, lease.id, lease.item_id, LeaseState.SKIPPED, utcnow(), reason.strip())
            audit(
                session,
                "lease.skip",
                actor_id=actor.id,
                project_id=project.id,
                item_id=lease.item_id,
                lease_id=lease.id,
                reason=reason.strip(),
            )

        write(self.engine, work)

    @requires(Role.ANNOTATOR)
    def undo_last(self, project_name: str, *, actor: Actor) -> ClaimedItem:
        """Take back this annotator's last label and hand its item back to them under the same slot.

        Allowed until a reviewer has acted on the item, also when this label completed the item:
        the item then reopens, leaves review (it went there by this comparison) and loses the final
        label the agreement made. Any other live claim of theirs in the project is released."""

        def work(session: Session) -> ClaimedItem:
            project = load_project(session, project_name)
            check_member(session, actor, project)
            now = utcnow()
            annotation = session.execute(
                select(Annotation)
                .where(col(Annotation.project_id) == project.id, col(Annotation.annotator_id) == actor.id)
                .order_by(col(Annotation.created_at).desc(), col(Annotation.id).desc())
                .limit(1)
            ).scalar_one_or_none()
            if annotation is None:
                raise Conflict("nothing to undo")
            item = self._changeable_item(session, annotation)
            for other in session.execute(
                select(Lease).where(
                    col(Lease.project_id) == project.id,
                    col(Lease.annotator_id) == actor.id,
                    col(Lease.state) == LeaseState.ACTIVE,
                )
            ).scalars():
                _release(session, other.id, other.item_id, LeaseState.EXPIRED, now)
            lease = session.get_one(Lease, annotation.lease_id)  # a human label always has its lease
            session.execute(delete(Annotation).where(col(Annotation.id) == annotation.id))
            lease.state, lease.closed_at = LeaseState.ACTIVE, None
            lease.expires_at = now + timedelta(seconds=project.settings["lease_ttl_s"])
            previous_state, previous_label = ItemState(item.state), item.final_label
            item.n_annotations -= 1
            if item.gold_label is None:  # a gold item keeps its known answer
                item.state, item.final_label, item.final_by = ItemState.OPEN, None, None
            audit(
                session,
                "annotation.undo",
                actor_id=actor.id,
                project_id=project.id,
                item_id=item.id,
                lease_id=lease.id,
                label=annotation.label,
                previous_state=previous_state,
                previous_final_label=previous_label,
            )
            session.flush()
            return self._claimed(session, project, lease.model_dump())

        return write(self.engine, work)

    @staticmethod
    def _changeable_item(session: Session, annotation: Annotation) -> Item:
        """The item of one of the actor's annotations, locked, if no reviewer has acted on it."""
        item = session.execute(select(Item).where(col(Item.id) == annotation.item_id).with_for_update()).scalar_one()
        reviewed = session.execute(select(func.count()).where(col(Adjudication.item_id) == item.id)).scalar_one()
        if reviewed or item.state in (ItemState.AMBIGUOUS, ItemState.EXCLUDED):
            raise Conflict(
                f"a reviewer has already acted on item {item.external_id!r}; your label can no longer be changed"
            )
        return item

    @requires(Role.ANNOTATOR)
    def change_label(self, annotation_id: int, label: str, *, actor: Actor) -> RecentLabel:
        """Change one of the actor's own labels while no reviewer has acted on its item.

        A complete item is compared again at once: its labels agree (final) or not (review)."""

        def work(session: Session) -> RecentLabel:
            annotation = session.get(Annotation, annotation_id)
            if annotation is None or annotation.annotator_id != actor.id or actor.id is None:
                raise NotFound(f"{actor.name} has no label {annotation_id}")
            project = self._project_by_id(session, annotation.project_id)
            check_member(session, actor, project)
            if label not in project.offered:
                raise WorkbenchError(unoffered(label, project))
            item = self._changeable_item(session, annotation)
            before = annotation.label
            if before != label:
                annotation.label = label
                session.flush()
                audit(
                    session,
                    "annotation.change",
                    actor_id=actor.id,
                    project_id=project.id,
                    item_id=item.id,
                    annotation_id=annotation.id,
                    label_before=before,
                    label=label,
                )
                if item.state != ItemState.OPEN and item.gold_label is None:
                    resolve(session, annotation.item_id, project)
            return RecentLabel(annotation_id, item.external_id, label, annotation.created_at, True)

        return write(self.engine, work)

    @requires(Role.ANNOTATOR)
    def recent_labels(self, project: ProjectInfo, *, actor: Actor, limit: int = 50) -> list[RecentLabel]:
        """The actor's own last `limit` labels in this project, newest first, each saying whether it
        may still be changed. Never anyone else's answer, nor the item's outcome."""
        reviewed = exists().where(col(Adjudication.item_id) == col(Annotation.item_id))
        with reading(self.engine) as session:
            check_member(session, actor, project)
            rows = session.execute(
                select(
                    col(Annotation.id),
                    col(Item.external_id),
                    col(Annotation.label),
                    col(Annotation.created_at),
                    ~reviewed & col(Item.state).not_in([ItemState.AMBIGUOUS, ItemState.EXCLUDED]),
                )
                .join(Item, col(Item.id) == col(Annotation.item_id))
                .where(col(Annotation.project_id) == project.id, col(Annotation.annotator_id) == actor.id)
                .order_by(col(Annotation.created_at).desc(), col(Annotation.id).desc())
                .limit(limit)
            ).all()
        return [RecentLabel(i, e, label, at, bool(ok)) for i, e, label, at, ok in rows]

    # -- what an annotator may see ---------------------------------------------------------
    @requires(Role.ANNOTATOR)
    def label_view(self, project: ProjectInfo, *, actor: Actor) -> LabelView:
        """What the label page shows besides the item, in one read: the annotator's own counts, the
        project's item counts by split and state (no labels), and the current guidelines."""
        with reading(self.engine, snapshot=False) as session:  # three independent reads
            stats = self._stats(session, project, actor)
            counts = item_counts(session, project.id)
            cached = self._guidelines.get(project.id)
            if cached is None or cached[0] < time.monotonic():
                cached = (time.monotonic() + PROJECT_CACHE_S, current_guidelines(session, project.id))
                self._guidelines[project.id] = cached
        return LabelView(stats, counts, cached[1])

    def _stats(self, session: Session, project: ProjectInfo, actor: Actor) -> AnnotatorStats:
        """The actor's counts, and their membership read in the same statement (refused if none)."""
        project_id = project.id
        midnight = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        mine = and_(col(Annotation.project_id) == project_id, col(Annotation.annotator_id) == actor.id)
        total, today, skips, role = session.execute(
            select(
                select(func.count()).where(mine).scalar_subquery(),
                select(func.count()).where(mine, col(Annotation.created_at) >= midnight).scalar_subquery(),
                select(func.count())
                .where(
                    col(Lease.project_id) == project_id,
                    col(Lease.annotator_id) == actor.id,
                    col(Lease.state) == LeaseState.SKIPPED,
                )
                .scalar_subquery(),
                member_role_column(literal(project_id), literal(actor.id)),
            )
        ).one()
        refuse_unless(actor, project, role)
        return AnnotatorStats(labels_today=today, labels_total=total, skips_total=skips)

    @requires(Role.ANNOTATOR)
    def my_stats(self, project: ProjectInfo | str, *, actor: Actor) -> AnnotatorStats:
        """The annotator's own counts (never anyone else's labels), in one statement."""
        with reading(self.engine) as session:
            project = project if isinstance(project, ProjectInfo) else self._project(session, project)
            return self._stats(session, project, actor)


def item_counts(session: Session, project_id: int) -> Progress:
    """Items by split and state (what any role may see), grouped in the order of the queue index."""
    rows = session.execute(
        select(col(Item.state), col(Item.slots_taken), col(Item.split), func.count())
        .where(col(Item.project_id) == project_id)
        .group_by(col(Item.state), col(Item.slots_taken), col(Item.split))
    ).all()
    counts = {split.value: {state.value: 0 for state in ItemState} for split in Split}
    for state, _, split, n in rows:
        counts[split][state] += n
    return Progress(counts)
