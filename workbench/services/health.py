"""Data health: the report of a batch (duplicates, leakage, outliers, profile, personal data), the
flags it leaves on items, and drift between a batch or version and the latest version."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Engine, delete, insert, select
from sqlmodel import Session, col

from workbench.db.models import DatasetVersion, DatasetVersionItem, Item, ItemFlag, utcnow
from workbench.domain import Actor, ProjectInfo, ProjectKind, Role
from workbench.errors import NotFound, WorkbenchError
from workbench.health.drift import PredictionDrift
from workbench.health.report import Flag, FlagKind, HealthReport, ItemRecord, build_report
from workbench.health.subgroups import SubgroupReport
from workbench.services._auth import require_role, requires
from workbench.services._tx import audit, reading, write
from workbench.services.members import load_member_project

if TYPE_CHECKING:
    from workbench.health.drift import DriftReport

DEFAULT_NEAR_DUPLICATE_THRESHOLD = 0.9


def _records(session: Session, project: ProjectInfo, new_ids: set[int] | None) -> list[ItemRecord]:
    rows = session.execute(
        select(col(Item.id), col(Item.external_id), col(Item.split), col(Item.content))
        .where(col(Item.project_id) == project.id)
        .order_by(col(Item.id))
    ).all()
    if new_ids is None:
        latest = session.execute(
            select(col(DatasetVersion.id))
            .where(col(DatasetVersion.project_id) == project.id)
            .order_by(col(DatasetVersion.number).desc())
            .limit(1)
        ).scalar_one_or_none()
        versioned = (
            set(
                session.execute(
                    select(col(DatasetVersionItem.item_id)).where(col(DatasetVersionItem.version_id) == latest)
                ).scalars()
            )
            if latest
            else set()
        )
        new_ids = {row.id for row in rows if row.id not in versioned} if versioned else {row.id for row in rows}
    return [ItemRecord(row.id, row.external_id, row.split, row.content, row.id in new_ids) for row in rows]


def _version_items(session: Session, project: ProjectInfo, number: int) -> list[dict[str, Any]]:
    version = session.execute(
        select(DatasetVersion).where(col(DatasetVersion.project_id) == project.id, col(DatasetVersion.number) == number)
    ).scalar_one_or_none()
    if version is None:
        raise NotFound(f"project {project.name!r} has no version {number}")
    return list(
        session.execute(
            select(col(Item.content))
            .join(DatasetVersionItem, col(DatasetVersionItem.item_id) == col(Item.id))
            .where(col(DatasetVersionItem.version_id) == version.id)
            .order_by(col(Item.id))
        ).scalars()
    )


def health_settings(project: ProjectInfo) -> dict[str, Any]:
    """The project's health check settings, as keyword arguments of the checks."""
    settings = project.settings
    return {
        "threshold": float(settings.get("near_duplicate_threshold", DEFAULT_NEAR_DUPLICATE_THRESHOLD)),
        "image_root": Path(settings["image_root"]) if settings.get("image_root") else None,
        "pii": str(settings.get("pii", "flag" if project.kind == ProjectKind.TEXT else "off")) != "off",
        "pii_region": str(settings.get("pii_region") or "US"),
    }


def write_flags(
    session: Session,
    project_id: int,
    flags: Sequence[Flag],
    actor: Actor,
    *,
    batch: int,
    replace: set[int] | None = None,
) -> None:
    """Store flags, one per (item, kind), the first reason winning (the report lists every pair),
    after removing the earlier flags of the `replace` items and of every flagged item; audited."""
    unique: dict[tuple[int, str], Flag] = {}
    for flag in flags:
        unique.setdefault((flag.item_id, flag.kind.value), flag)
    if replace is not None:
        ids = sorted(replace | {item_id for item_id, _ in unique})
        for start in range(0, len(ids), 1000):
            session.execute(
                delete(ItemFlag).where(
                    col(ItemFlag.project_id) == project_id, col(ItemFlag.item_id).in_(ids[start : start + 1000])
                )
            )
    now = utcnow()
    rows = [
        {"project_id": project_id, "item_id": f.item_id, "kind": f.kind.value, "reason": f.reason, "created_at": now}
        for f in unique.values()
    ]
    for start in range(0, len(rows), 1000):
        session.execute(insert(ItemFlag), rows[start : start + 1000])
    counts: dict[str, int] = {}
    for f in unique.values():
        counts[f.kind.value] = counts.get(f.kind.value, 0) + 1
    audit(session, "health.check", actor_id=actor.id, project_id=project_id, batch=batch, flags=counts)


class HealthService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @requires(Role.REVIEWER)
    def check(
        self, project_name: str, *, actor: Actor, item_ids: list[int] | None = None, store: bool = True
    ) -> HealthReport:
        """The health report of a batch (the given items, else every item not in the latest version)
        against the whole project; with `store`, its flags replace the batch's earlier ones."""
        require_role(actor, Role.ADMIN if store else Role.REVIEWER)
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            records = _records(session, project, set(item_ids) if item_ids is not None else None)
        report = build_report(project.kind.value, records, **health_settings(project), prelabels=None)
        if store:
            self._store(project, {r.item_id for r in records if r.new}, report.flags, actor)
        return report

    def _store(self, project: ProjectInfo, batch: set[int], flags: tuple[Flag, ...], actor: Actor) -> None:
        write(
            self.engine, lambda session: write_flags(session, project.id, flags, actor, batch=len(batch), replace=batch)
        )

    @requires(Role.REVIEWER)
    def flags(
        self, project_name: str, *, actor: Actor, kind: FlagKind | str | None = None, limit: int = 1000
    ) -> list[Flag]:
        """Flagged items with their reasons (reviewers and admins)."""
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            query = (
                select(col(ItemFlag.item_id), col(Item.external_id), col(ItemFlag.kind), col(ItemFlag.reason))
                .join(Item, col(Item.id) == col(ItemFlag.item_id))
                .where(col(ItemFlag.project_id) == project.id)
            )
            if kind is not None:
                query = query.where(col(ItemFlag.kind) == FlagKind(kind).value)
            rows = session.execute(query.order_by(col(ItemFlag.item_id), col(ItemFlag.kind)).limit(limit)).all()
        return [Flag(item_id, external_id, FlagKind(k), reason) for item_id, external_id, k, reason in rows]

    @requires(Role.REVIEWER)
    def exclude(self, project_name: str, external_ids: list[str], *, actor: Actor, reason: str) -> list[str]:
        """Take items out of the pool and the dataset (state excluded), with a reason; audited, and
        signed as an adjudication when a reviewer does it. Nothing changes if one id is unknown."""
        return exclude_items(self.engine, project_name, list(external_ids), reason, actor)

    @requires(Role.REVIEWER)
    def subgroups(
        self, project_name: str, *, actor: Actor, run_id: int | None = None, columns: list[str] | None = None
    ) -> list[SubgroupReport]:
        """Per group of each sensitive column (the project's `sensitive_cols`, or `columns`): the
        eval metrics of a model run (default: the latest), from the predictions stored with it and
        the final labels of the version it was trained on. Nothing is recomputed by a model here."""
        from workbench.db.models import EvalPrediction, ModelRun
        from workbench.health.subgroups import subgroup_metrics

        require_role(actor, Role.REVIEWER)
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            wanted = columns if columns is not None else sensitive_columns(project.settings)
            if not wanted:
                return []
            query = select(ModelRun).where(col(ModelRun.project_id) == project.id)
            run = session.execute(
                (
                    query.where(col(ModelRun.id) == run_id)
                    if run_id is not None
                    else query.order_by(col(ModelRun.id).desc())
                ).limit(1)
            ).scalar_one_or_none()
            if run is None:
                raise NotFound(f"project {project.name!r} has no model run" + (f" {run_id}" if run_id else ""))
            rows = session.execute(
                select(col(EvalPrediction.predicted), col(DatasetVersionItem.label), col(Item.content))
                .join(
                    DatasetVersionItem,
                    (col(DatasetVersionItem.item_id) == col(EvalPrediction.item_id))
                    & (col(DatasetVersionItem.version_id) == run.version_id),
                )
                .join(Item, col(Item.id) == col(EvalPrediction.item_id))
                .where(col(EvalPrediction.model_run_id) == run.id, col(DatasetVersionItem.split) == "eval")
            ).all()
        if not rows:
            raise WorkbenchError("the run has no labeled eval items to measure groups on")
        reports = []
        for column in wanted:
            groups = [_column_value(content, column) for _, _, content in rows]
            if all(g is None for g in groups):
                raise WorkbenchError(f"no eval item has a value in column {column!r}")
            reports.append(
                subgroup_metrics(
                    column,
                    [r[1] for r in rows],
                    [r[0] for r in rows],
                    ["(missing)" if g is None else g for g in groups],
                    list(project.labels),
                )
            )
        return reports

    @requires(Role.REVIEWER)
    def prediction_drift(self, project_name: str, *, actor: Actor) -> PredictionDrift | None:
        """The latest round's prediction drift: predicted-label shares on the batch imported since
        the round before it against the eval split (None: no round has measured it)."""
        from workbench.db.models import ModelRun

        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            row = session.execute(
                select(col(ModelRun.id), col(ModelRun.prediction_drift))
                .where(col(ModelRun.project_id) == project.id)
                .order_by(col(ModelRun.id).desc())
                .limit(1)
            ).first()
        if row is None or not row[1]:
            return None
        return PredictionDrift.from_json(dict(row[1]), model_run_id=int(row[0]))

    @requires(Role.REVIEWER)
    def drift(
        self, project_name: str, *, actor: Actor, reference: int | None = None, new: int | None = None, seed: int = 0
    ) -> DriftReport:
        """Drift of version `new` (default: the items imported since the latest version) against
        version `reference` (default: the latest version)."""
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            numbers = list(
                session.execute(
                    select(col(DatasetVersion.number))
                    .where(col(DatasetVersion.project_id) == project.id)
                    .order_by(col(DatasetVersion.number))
                ).scalars()
            )
            if not numbers:
                raise WorkbenchError(f"project {project.name!r} has no dataset version to compare with")
            ref_number = reference if reference is not None else numbers[-1]
            old = _version_items(session, project, ref_number)
            if new is not None:
                fresh = _version_items(session, project, new)
            else:
                fresh = [r.content for r in _records(session, project, None) if r.new]
        if not fresh:
            raise WorkbenchError("no items to compare: nothing was imported since the latest version")
        return drift_between(project.kind, old, fresh, seed=seed)


def sensitive_columns(settings: dict[str, Any]) -> list[str]:
    value = settings.get("sensitive_cols") or []
    if isinstance(value, str):
        value = value.split(",")
    return [str(c).strip() for c in value if str(c).strip()]


def _column_value(content: dict[str, Any], column: str) -> Any:
    for part in ("features", "context"):
        values = content.get(part) or {}
        if column in values:
            return values[column]
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def drift_between(
    kind: ProjectKind, old: list[dict[str, Any]], fresh: list[dict[str, Any]], *, seed: int = 0
) -> DriftReport:
    """Drift of `fresh` against `old` item contents (text: length, vocabulary and a domain
    classifier on hashed words; tabular: each column, and a classifier on all of them)."""
    from workbench.health.drift import compare

    if kind == ProjectKind.TEXT:
        from sklearn.feature_extraction.text import HashingVectorizer

        texts = ([str(c.get("text", "")) for c in old], [str(c.get("text", "")) for c in fresh])
        vectorizer = HashingVectorizer(n_features=2**18, alternate_sign=False, norm="l2")
        features = (vectorizer.transform(texts[0]), vectorizer.transform(texts[1]))
        return compare({"text": texts[0]}, {"text": texts[1]}, text="text", features=features, seed=seed)
    if kind == ProjectKind.TABULAR:
        from sklearn.feature_extraction import DictVectorizer

        rows = ([dict(c.get("features") or {}) for c in old], [dict(c.get("features") or {}) for c in fresh])
        names = sorted({k for sample in rows for r in sample for k in r})
        columns: list[dict[str, list[Any]]] = [{n: [r.get(n) for r in sample] for n in names} for sample in rows]
        numeric = [n for n in names if all(v is None or _is_number(v) for s in columns for v in s[n])]
        categorical = [n for n in names if n not in numeric]
        for sample in columns:
            for n in numeric:
                sample[n] = [np.nan if v is None else float(v) for v in sample[n]]
            for n in categorical:
                sample[n] = ["(missing)" if v is None else str(v) for v in sample[n]]
        size = [len(r) for r in rows]
        encoded = [
            [{**{n: s[n][i] for n in numeric}, **{f"{n}={s[n][i]}": 1.0 for n in categorical}} for i in range(count)]
            for s, count in zip(columns, size)
        ]
        vectorizer = DictVectorizer(sparse=False).fit(encoded[0] + encoded[1])
        features = (np.nan_to_num(vectorizer.transform(encoded[0])), np.nan_to_num(vectorizer.transform(encoded[1])))
        reference: dict[str, Sequence[object]] = dict(columns[0])
        fresh_columns: dict[str, Sequence[object]] = dict(columns[1])
        return compare(reference, fresh_columns, numeric=numeric, categorical=categorical, features=features, seed=seed)
    raise WorkbenchError("drift is measured for text and tabular projects")


def _exclude(session: Session, project: ProjectInfo, external_id: str, reason: str, actor: Actor) -> str:
    from workbench.db.models import Adjudication
    from workbench.domain import Decision, ItemState

    item = session.execute(
        select(Item).where(col(Item.project_id) == project.id, col(Item.external_id) == external_id).with_for_update()
    ).scalar_one_or_none()
    if item is None:
        raise NotFound(f"no item {external_id!r} in {project.name!r}")
    if item.state == ItemState.EXCLUDED:
        raise WorkbenchError(f"item {external_id!r} is already excluded")
    previous_state, previous_label = item.state, item.final_label
    if actor.id is not None:  # the local operator has no user row to sign an adjudication with
        session.add(
            Adjudication(
                project_id=project.id,
                item_id=item.id,
                reviewer_id=actor.id,
                decision=Decision.EXCLUDED.value,
                label=None,
                reason=reason,
                previous_state=previous_state,
                previous_label=previous_label,
                created_at=utcnow(),
            )
        )
    item.state = ItemState.EXCLUDED.value
    item.final_label = None
    audit(
        session,
        "health.exclude",
        actor_id=actor.id,
        project_id=project.id,
        item_id=item.id,
        reason=reason,
        previous_state=previous_state,
        previous_label=previous_label,
    )
    return item.external_id


def exclude_items(engine: Engine, project_name: str, external_ids: list[str], reason: str, actor: Actor) -> list[str]:
    reason = (reason or "").strip()
    if not reason:
        raise WorkbenchError("excluding an item needs a reason")

    def work(session: Session) -> list[str]:
        project = load_member_project(session, project_name, actor, Role.REVIEWER)
        return [_exclude(session, project, external_id, reason, actor) for external_id in external_ids]

    return write(engine, work)
