"""`workbench stress`: N annotator processes drain a queue while misbehaving; then every
double-labeling invariant is checked from the database.

Each process claims, thinks briefly, and submits; sometimes it skips, abandons a claim (walks away
until the lease lapses), or submits twice. Latencies are measured around the service calls, so
they include waiting for SQLite's write lock or PostgreSQL row locks.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select
from sqlmodel import Session, col

from workbench.db.bulk import insert_items, insert_members
from workbench.db.engine import make_engine
from workbench.db.models import Annotation, AnnotatorQuality, Item, Lease, User
from workbench.domain import Actor, LeaseState, Role
from workbench.domain.overlap import GivenLabel, Next, OverlapSettings, decide
from workbench.errors import WorkbenchError
from workbench.services import Workbench
from workbench.services.queue import QueueService

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier

LABELS = ["yes", "no"]
STARTUP_TIMEOUT_S = 600.0  # 32 processes importing the workbench on 2 loaded cores can take minutes


@dataclass
class Behaviour:
    think_ms: tuple[float, float] = (2.0, 10.0)
    p_skip: float = 0.03
    p_abandon: float = 0.01
    p_double_submit: float = 0.1
    lease_ttl_s: float = 1.0
    max_submits: int | None = None  # per annotator; None: until the queue is empty


@dataclass
class AnnotatorLog:
    name: str
    claim_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    acknowledged: list[tuple[int, int, str]] = field(default_factory=list)  # (annotation, item, label)
    skips: int = 0
    abandons: int = 0
    double_submits: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _annotator(url: str, project: str, actor: Actor, seed: int, behaviour: Behaviour, out: str, start: Barrier) -> None:
    engine = make_engine(url, migrate=False)
    queue = QueueService(engine, random.Random(seed))
    rng = random.Random(seed + 1)
    log = AnnotatorLog(actor.name)
    queue.my_stats(project, actor=actor)  # connect and warm up before the clock starts
    start.wait()
    try:
        while behaviour.max_submits is None or len(log.acknowledged) < behaviour.max_submits:
            started = time.perf_counter()
            try:
                lease = queue.claim_or_wait(project, actor=actor)
            except WorkbenchError as exc:
                log.refusals[type(exc).__name__] = log.refusals.get(type(exc).__name__, 0) + 1
                continue
            log.claim_ms.append((time.perf_counter() - started) * 1000)
            if lease == 0:
                break  # nothing left for this annotator, now or later
            if isinstance(lease, int):  # others hold what is left; it may come back
                time.sleep(max(behaviour.think_ms[1], 20.0) / 1000)
                continue
            time.sleep(rng.uniform(*behaviour.think_ms) / 1000)
            roll = rng.random()
            if roll < behaviour.p_abandon:
                log.abandons += 1
                time.sleep(behaviour.lease_ttl_s * 1.2)  # walk away until the lease lapses
                continue
            try:
                if roll < behaviour.p_abandon + behaviour.p_skip:
                    queue.skip(lease.lease_id, "stress: skipped", actor=actor)
                    log.skips += 1
                    continue
                # Each item has a "true" label that most annotators give, so both outcomes occur.
                truth = LABELS[lease.item_id % 2]
                label = truth if rng.random() < 0.8 else LABELS[1 - lease.item_id % 2]
                started = time.perf_counter()
                result = queue.submit(lease.lease_id, label, actor=actor)
                log.submit_ms.append((time.perf_counter() - started) * 1000)
                log.acknowledged.append((result.annotation_id, lease.item_id, label))
                if rng.random() < behaviour.p_double_submit:
                    again = queue.submit(lease.lease_id, label, actor=actor)
                    log.double_submits += 1
                    if again.annotation_id != result.annotation_id or not again.duplicate:
                        log.errors.append(f"double submit stored a second annotation for lease {lease.lease_id}")
            except WorkbenchError as exc:
                log.refusals[type(exc).__name__] = log.refusals.get(type(exc).__name__, 0) + 1
    except Exception as exc:  # every unexpected error is a finding of the run
        log.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        engine.dispose()
        Path(out).write_text(json.dumps(asdict(log)))


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    arr = np.asarray(values)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "p99": float(np.percentile(arr, 99)),
        "max": float(arr.max()),
    }


def seed_project(
    wb: Workbench,
    n_items: int,
    n_annotators: int,
    lease_ttl_s: float,
    overlap_policy: str = "fixed",
    min_labels: int = 1,
    max_labels: int = 3,
) -> tuple[str, list[Actor]]:
    """A fresh project with n_items pool items and n_annotators annotators. With the adaptive
    policy, the annotators get fixed estimated reliabilities from 0.6 to 0.98, so items end with
    one, two or max_labels labels."""
    name = f"stress-{uuid.uuid4().hex[:8]}"
    project = wb.projects.create(
        name,
        "text",
        LABELS,
        settings={
            "eval_fraction": 0.0,
            "random_share": 0.05,
            "lease_ttl_s": lease_ttl_s,
            "overlap_policy": overlap_policy,
            "min_labels": min_labels,
            "max_labels": max_labels,
            "featurizer": {"method": "tfidf"},
        },
        actor=Actor.operator(),
    )
    rng = np.random.default_rng(0)
    keys = rng.random(n_items)
    with Session(wb.engine) as session, session.begin():
        insert_items(
            session, project.id, ((f"s{i}", {"text": f"stress item {i}"}, "pool", keys[i]) for i in range(n_items))
        )
        # Stress annotators never sign in, so they get an unusable password hash.
        users = [User(name=f"{name}-a{i}", role=Role.ANNOTATOR, password_hash="!") for i in range(n_annotators)]
        session.add_all(users)
        session.flush()
        user_ids: list[int] = []
        for u in users:
            assert u.id is not None  # the flush assigned it
            user_ids.append(u.id)
        insert_members(session, project.id, [(uid, Role.ANNOTATOR.value) for uid in user_ids])
        actors = [Actor(id=u.id, name=u.name, role=Role.ANNOTATOR) for u in users]
        if overlap_policy != "fixed":
            session.add_all(
                AnnotatorQuality(
                    project_id=project.id,
                    user_id=uid,
                    confusion={},
                    reliability=0.6 + 0.38 * i / max(n_annotators - 1, 1),
                )
                for i, uid in enumerate(user_ids)
            )
    return name, actors


def check_invariants(wb: Workbench, project_name: str, logs: list[dict], *, drained: bool = True) -> dict[str, object]:
    """Every double-labeling invariant, read back from the database. With drained=False (the
    annotators stopped after a fixed number of submits) items may be left unlabeled."""
    project = wb.projects.get(project_name, actor=Actor.operator())
    with Session(wb.engine) as session:
        items = session.execute(
            select(
                col(Item.id), col(Item.state), col(Item.final_label), col(Item.slots_taken), col(Item.n_annotations)
            ).where(col(Item.project_id) == project.id)
        ).all()
        annotations = session.execute(
            select(
                col(Annotation.id), col(Annotation.item_id), col(Annotation.annotator_id), col(Annotation.label)
            ).where(col(Annotation.project_id) == project.id)
        ).all()
        active = session.execute(
            select(col(Lease.item_id), func.count())
            .where(col(Lease.project_id) == project.id, col(Lease.state) == LeaseState.ACTIVE)
            .group_by(col(Lease.item_id))
        ).all()
        had = session.execute(
            select(col(Lease.item_id), func.count(func.distinct(col(Lease.annotator_id))))
            .where(
                col(Lease.project_id) == project.id,
                col(Lease.state).in_([LeaseState.SKIPPED, LeaseState.SUBMITTED]),
            )
            .group_by(col(Lease.item_id))
        ).all()
        n_annotators = session.execute(
            select(func.count(func.distinct(col(Lease.annotator_id)))).where(col(Lease.project_id) == project.id)
        ).scalar_one()
        reliability: dict[int, float | None] = {
            user_id: value
            for user_id, value in session.execute(
                select(col(AnnotatorQuality.user_id), col(AnnotatorQuality.reliability)).where(
                    col(AnnotatorQuality.project_id) == project.id
                )
            )
        }
        slots: dict[int, int] = {}
        for annotation_id, slot in session.execute(
            select(col(Annotation.id), col(Annotation.slot)).where(col(Annotation.project_id) == project.id)
        ):
            assert annotation_id is not None and slot is not None  # stress labels are all human: each has a slot
            slots[annotation_id] = slot
    settings = OverlapSettings.from_project(project.overlap, project.settings)
    by_item: dict[int, list] = {}
    for row in annotations:
        by_item.setdefault(row.item_id, []).append(row)
    active_by_item = dict(active)
    had_by_item = dict(had)
    stored = {row.id: (row.item_id, row.label) for row in annotations}
    acknowledged = [tuple(a) for log in logs for a in log["acknowledged"]]

    wrong_count, not_distinct, unresolved, bad_state, bad_counters = [], [], [], [], []
    for item in items:
        rows = sorted(by_item.get(item.id, []), key=lambda r: slots[r.id])
        if len(rows) > settings.capacity:
            wrong_count.append(item.id)
        if len({r.annotator_id for r in rows}) != len(rows):
            not_distinct.append(item.id)
        # Replay the overlap policy on the item's labels in slot order: every shorter prefix must
        # have asked for more, and the full set must explain the item's state and final label.
        given = [GivenLabel(str(r.annotator_id), r.label, reliability.get(r.annotator_id)) for r in rows]
        steps = [decide(given[:n], settings=settings, label_set=LABELS) for n in range(1, len(given) + 1)]
        if any(step.next != Next.MORE for step in steps[:-1]):
            bad_state.append(item.id)  # it got a label after it was settled
        last = steps[-1] if steps else None
        if last is None or last.next == Next.MORE:
            if item.state != "open":
                bad_state.append(item.id)
            if drained and had_by_item.get(item.id, 0) < n_annotators:
                unresolved.append(item.id)  # someone could still have labeled it
        else:
            expected = ("final", last.label) if last.next == Next.FINAL else ("review", None)
            if (item.state, item.final_label) != expected:
                bad_state.append(item.id)
        if item.n_annotations != len(rows) or item.slots_taken != len(rows) + active_by_item.get(item.id, 0):
            bad_counters.append(item.id)
    lost = [a for a in acknowledged if stored.get(a[0]) != (a[1], a[2])]
    locked = [e for log in logs for e in log["errors"] if "locked" in e.lower()]
    other_errors = [e for log in logs for e in log["errors"] if "locked" not in e.lower()]
    checks: dict[str, object] = {
        "items": len(items),
        "overlap_policy": settings.policy.value,
        "items_complete": sum(1 for i in items if i.state != "open"),
        "labels_per_item": {
            str(n): sum(1 for i in items if len(by_item.get(i.id, [])) == n) for n in range(1, settings.capacity + 1)
        },
        "items_with_too_many_annotations": len(wrong_count),
        "items_with_repeated_annotator": len(not_distinct),
        "items_left_incomplete_but_labelable": len(unresolved),
        "items_in_wrong_state": len(bad_state),
        "items_with_wrong_counters": len(bad_counters),
        "acknowledged_submits": len(acknowledged),
        "lost_submits": len(lost),
        "database_locked_errors": len(locked),
        "other_errors": other_errors[:20],
        "disagreements": sum(1 for i in items if i.state == "review"),
    }
    checks["ok"] = not (
        wrong_count or not_distinct or unresolved or bad_state or bad_counters or lost or locked or other_errors
    )
    return checks


def run_stress(
    *,
    annotators: int,
    items: int,
    database_url: str | None = None,
    behaviour: Behaviour | None = None,
    seed: int = 0,
    overlap_policy: str = "fixed",
    min_labels: int = 1,
    max_labels: int = 3,
) -> dict:
    """Seed a project, run the annotator processes, check the invariants; returns the report."""
    behaviour = behaviour or Behaviour()
    scratch = Path(tempfile.mkdtemp(prefix="workbench-stress-"))
    url = database_url or f"sqlite:///{scratch / 'stress.db'}"
    wb = Workbench(make_engine(url))
    project, actors = seed_project(wb, items, annotators, behaviour.lease_ttl_s, overlap_policy, min_labels, max_labels)
    context = mp.get_context("spawn")
    outs = [scratch / f"annotator-{i}.json" for i in range(annotators)]
    start = context.Barrier(annotators + 1)
    processes = [
        context.Process(target=_annotator, args=(url, project, actor, seed * 1000 + i, behaviour, str(out), start))
        for i, (actor, out) in enumerate(zip(actors, outs))
    ]
    for process in processes:
        process.start()
    try:  # every annotator has started and connected: the clock starts now
        start.wait(timeout=STARTUP_TIMEOUT_S)
    except threading.BrokenBarrierError:
        for process in processes:
            process.kill()
        raise RuntimeError(
            f"the annotator processes did not all start within {STARTUP_TIMEOUT_S} s "
            f"(exit codes {[p.exitcode for p in processes]})"
        ) from None
    started = time.perf_counter()
    for process in processes:
        process.join()
    wall = time.perf_counter() - started
    logs: list[dict[str, Any]] = [
        json.loads(out.read_text())
        if out.exists()
        else {
            "name": "?",
            "claim_ms": [],
            "submit_ms": [],
            "acknowledged": [],
            "errors": ["process died"],
            "skips": 0,
            "abandons": 0,
            "double_submits": 0,
            "refusals": {},
        }
        for out in outs
    ]
    claims = [x for log in logs for x in log["claim_ms"]]
    submits = [x for log in logs for x in log["submit_ms"]]
    report = {
        "database": wb.engine.dialect.name,
        "annotators": annotators,
        "items": items,
        "behaviour": asdict(behaviour),
        "wall_s": wall,
        "submits_per_s": len(submits) / wall if wall else 0.0,
        "claim_ms": _percentiles(claims),
        "submit_ms": _percentiles(submits),
        "claims": len(claims),
        "skips": sum(log["skips"] for log in logs),
        "abandons": sum(log["abandons"] for log in logs),
        "double_submits": sum(log["double_submits"] for log in logs),
        "refusals": {
            k: sum(log["refusals"].get(k, 0) for log in logs) for k in {k for log in logs for k in log["refusals"]}
        },
        "invariants": check_invariants(wb, project, logs, drained=behaviour.max_submits is None),
    }
    wb.engine.dispose()
    return report
