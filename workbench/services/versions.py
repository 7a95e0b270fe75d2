"""Dataset versions: immutable, content-hashed snapshots of the final labels, with lineage.

A version holds every item that has a final label at the moment it is cut (pool and eval). Its
hash covers (external id, split, label) of every row in external-id order, so the same labels give
the same hash; cutting a version whose hash equals the latest one returns the latest instead.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine, Select, func, insert, select
from sqlmodel import Session, col

from workbench.db.models import (
    Adjudication,
    Annotation,
    DatasetVersion,
    DatasetVersionItem,
    Item,
    User,
    utcnow,
)
from workbench.domain import Actor, AnnotationSource, Decision, ItemState, ProjectInfo, Role, VersionDiff, VersionInfo
from workbench.domain.agreement import Judgment, agreement_report
from workbench.errors import NotFound
from workbench.services._auth import requires
from workbench.services._tx import audit, reading, write
from workbench.services.members import load_member_project
from workbench.services.projects import load_project

if TYPE_CHECKING:
    import pandas as pd


def content_hash(rows: list[tuple[str, str, str]]) -> str:
    """sha256 over sorted (external id, split, label) lines: equal labels give equal hashes."""
    digest = hashlib.sha256()
    for external_id, split, label in sorted(rows):
        digest.update(json.dumps([external_id, split, label], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def _info(version: DatasetVersion) -> VersionInfo:
    assert version.id is not None  # a stored version
    return VersionInfo(
        version.id,
        version.number,
        version.content_hash,
        version.n_items,
        version.trigger,
        version.created_at,
        dict(version.manifest),
    )


def _latest(session: Session, project_id: int) -> DatasetVersion | None:
    return session.execute(
        select(DatasetVersion)
        .where(col(DatasetVersion.project_id) == project_id)
        .order_by(col(DatasetVersion.number).desc())
        .limit(1)
    ).scalar_one_or_none()


@dataclass(frozen=True)
class Snapshot:
    """The final labels of a project at one moment, with lineage: what a version freezes."""

    items: list  # (item id, external id, split, label)
    digest: str
    lineage: dict[int, list[int]]
    adjudication: dict[int, int]
    manifest: dict
    final_by: dict[int, str | None] | None = None  # how each final label was made (issue 13)


def take_snapshot(session: Session, project: ProjectInfo) -> Snapshot:
    """Read (and summarise) the final labels; done in a read transaction, outside the write lock."""
    found = session.execute(
        select(col(Item.id), col(Item.external_id), col(Item.split), col(Item.final_label), col(Item.final_by)).where(
            col(Item.project_id) == project.id, col(Item.state) == ItemState.FINAL
        )
    ).all()
    items = [tuple(row[:4]) for row in found]
    final_by = {row[0]: row[4] for row in found}
    rows = [(external_id, split, label) for _, external_id, split, label in items]
    annotations = session.execute(
        select(col(Annotation.id), col(Annotation.item_id), col(User.name), col(Annotation.label))
        .join(User, col(User.id) == Annotation.annotator_id)
        .where(col(Annotation.project_id) == project.id, col(Annotation.source) == AnnotationSource.HUMAN)
    ).all()
    decisions = session.execute(
        select(col(Adjudication.id), col(Adjudication.item_id), col(Adjudication.decision), col(Adjudication.label))
        .where(col(Adjudication.project_id) == project.id)
        .order_by(col(Adjudication.id))
    ).all()
    lineage: dict[int, list[int]] = defaultdict(list)
    for annotation_id, item_id, _, _ in annotations:
        lineage[item_id].append(annotation_id)
    adjudication = {item_id: adj_id for adj_id, item_id, _, _ in decisions}  # the latest stands
    final_ids = {item_id for item_id, *_ in items}
    judgments = [Judgment(item_id, name, label) for _, item_id, name, label in annotations if item_id in final_ids]
    adjudicated = {item_id: label if decision == Decision.LABEL else None for _, item_id, decision, label in decisions}
    agreement = agreement_report(judgments, list(project.labels), adjudicated)
    manifest = {
        "labels": list(project.labels),
        "counts": {split: dict(Counter(label for _, s, label in rows if s == split)) for split in ("pool", "eval")},
        "sources": dict(Counter("adjudicated" if i in adjudication else "agreed" for i in final_ids)),
        "annotators": dict(Counter(j.annotator for j in judgments)),
        "agreement": {
            "percent_agreement": agreement.percent_agreement,
            "krippendorff_alpha": agreement.krippendorff_alpha,
            "paired_items": agreement.n_paired_items,
        },
    }
    return Snapshot(list(items), content_hash(rows), dict(lineage), adjudication, manifest, final_by)


def _aggregation(snapshot: Snapshot, item_id: int) -> str:
    """What made this final label: adjudication, agreement, adaptive_posterior, dawid_skene, gold."""
    made = (snapshot.final_by or {}).get(item_id)
    if made in (None, "agreement") and item_id in snapshot.adjudication:
        return "adjudication"
    return made or "agreement"


def store_version(
    session: Session, project: ProjectInfo, snapshot: Snapshot, *, trigger: str, actor_id: int | None
) -> DatasetVersion:
    """Freeze a snapshot as the next version (or return the latest if it has the same hash)."""
    latest = _latest(session, project.id)
    if latest is not None and latest.content_hash == snapshot.digest:
        return latest
    version = DatasetVersion(
        project_id=project.id,
        number=(latest.number + 1) if latest else 1,
        content_hash=snapshot.digest,
        trigger=trigger,
        created_by=actor_id,
        n_items=len(snapshot.items),
        manifest=snapshot.manifest,
        created_at=utcnow(),
    )
    session.add(version)
    session.flush()
    if snapshot.items:
        session.execute(
            insert(DatasetVersionItem),
            [
                {
                    "version_id": version.id,
                    "item_id": item_id,
                    "split": split,
                    "label": label,
                    "source": "adjudicated" if item_id in snapshot.adjudication else "agreed",
                    "annotation_ids": sorted(snapshot.lineage.get(item_id, [])),
                    "adjudication_id": snapshot.adjudication.get(item_id),
                    "aggregation": _aggregation(snapshot, item_id),
                }
                for item_id, _, split, label in snapshot.items
            ],
        )
    audit(
        session,
        "version.create",
        actor_id=actor_id,
        project_id=project.id,
        version=version.number,
        content_hash=snapshot.digest,
        n_items=version.n_items,
        trigger=trigger,
    )
    return version


def cut_version(engine: Engine, project_name: str, *, trigger: str, actor_id: int | None) -> DatasetVersion:
    """Snapshot in a read transaction, then store it in a short write transaction."""
    with reading(engine) as session:
        project = load_project(session, project_name)
        snapshot = take_snapshot(session, project)
    return write(engine, lambda session: store_version(session, project, snapshot, trigger=trigger, actor_id=actor_id))


def version_rows(version_id: int) -> Select:
    """A version's rows in external-id order: item id, external id, split, label, source, the
    annotation ids and the adjudication behind the label (the rows table and the version export)."""
    return (
        select(
            col(DatasetVersionItem.item_id),
            col(Item.external_id),
            col(DatasetVersionItem.split),
            col(DatasetVersionItem.label),
            col(DatasetVersionItem.source),
            col(DatasetVersionItem.annotation_ids),
            col(DatasetVersionItem.adjudication_id),
        )
        .join(Item, col(Item.id) == DatasetVersionItem.item_id)
        .where(col(DatasetVersionItem.version_id) == version_id)
        .order_by(col(Item.external_id))
    )


class VersionService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @requires(Role.REVIEWER)
    def create(self, project_name: str, *, actor: Actor, trigger: str = "manual") -> VersionInfo:
        with reading(self.engine) as session:
            load_member_project(session, project_name, actor, Role.REVIEWER)
        return _info(cut_version(self.engine, project_name, trigger=trigger, actor_id=actor.id))

    @requires(Role.REVIEWER)
    def list(self, project_name: str, *, actor: Actor) -> list[VersionInfo]:
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            rows = (
                session.execute(
                    select(DatasetVersion)
                    .where(col(DatasetVersion.project_id) == project.id)
                    .order_by(col(DatasetVersion.number))
                )
                .scalars()
                .all()
            )
        return [_info(v) for v in rows]

    @requires(Role.REVIEWER)
    def get(self, project_name: str, number: int, *, actor: Actor) -> VersionInfo:
        with reading(self.engine) as session:
            return _info(self._version(session, project_name, number, actor))

    @staticmethod
    def _version(session: Session, project_name: str, number: int, actor: Actor) -> DatasetVersion:
        project = load_member_project(session, project_name, actor, Role.REVIEWER)
        version = session.execute(
            select(DatasetVersion).where(
                col(DatasetVersion.project_id) == project.id, col(DatasetVersion.number) == number
            )
        ).scalar_one_or_none()
        if version is None:
            raise NotFound(f"{project_name!r} has no version {number}")
        return version

    @requires(Role.REVIEWER)
    def rows(self, project_name: str, number: int, *, actor: Actor) -> pd.DataFrame:
        """The version's rows: item id, external id, split, label, source, lineage."""
        with reading(self.engine) as session:
            version = self._version(session, project_name, number, actor)
            assert version.id is not None  # a stored version
            rows = session.execute(version_rows(version.id).add_columns(col(DatasetVersionItem.aggregation))).all()
        import pandas as pd  # lazy: only exports and diffs need it

        return pd.DataFrame(
            rows,
            columns=[
                "item_id",
                "external_id",
                "split",
                "label",
                "source",
                "annotation_ids",
                "adjudication_id",
                "aggregation",
            ],
        )

    @requires(Role.REVIEWER)
    def diff(self, project_name: str, a: int, b: int, *, actor: Actor) -> VersionDiff:
        """What changed from version a to version b."""
        with reading(self.engine) as session:
            old, new = (
                dict(
                    session.execute(
                        select(col(Item.external_id), col(DatasetVersionItem.label))
                        .join(Item, col(Item.id) == DatasetVersionItem.item_id)
                        .where(
                            col(DatasetVersionItem.version_id) == self._version(session, project_name, number, actor).id
                        )
                    ).all()
                )
                for number in (a, b)
            )
        return VersionDiff(
            added=tuple(sorted((k, new[k]) for k in new.keys() - old.keys())),
            removed=tuple(sorted((k, old[k]) for k in old.keys() - new.keys())),
            relabeled=tuple(sorted((k, old[k], new[k]) for k in old.keys() & new.keys() if old[k] != new[k])),
        )

    @requires(Role.REVIEWER)
    def final_label_count(self, project_name: str, *, actor: Actor) -> tuple[int, int]:
        """(final labels now, items in the latest version): what auto-versioning compares."""
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            final = session.execute(
                select(func.count()).where(col(Item.project_id) == project.id, col(Item.state) == ItemState.FINAL)
            ).scalar_one()
            latest = _latest(session, project.id)
        return final, latest.n_items if latest else 0
