"""Import: the front door. A file (CSV, TSV, JSONL, Parquet) or a folder of images becomes items,
atomically: either every row is good and all are written in one transaction, or nothing is.

The file is streamed and written in batches inside that one transaction (memory is bounded by the
batch, not the file). Duplicate ids are found by the database, not by a set of every id in memory:
``INSERT ... ON CONFLICT (project_id, external_id) DO NOTHING RETURNING`` tells which ids of a batch
were already taken, and the item ids below the pre-import ``max(item.id)`` tell "already in the
project" from "earlier in this file". On PostgreSQL a batch whose ids are all free (one indexed
look-up tells) is written with COPY instead, about twice as fast. A preview checks ids against a
temporary table, inside a transaction that never takes the write lock and is rolled back.

On SQLite the import holds the write lock for its whole transaction (about 30 s per million rows
here): other writers wait up to their busy timeout, then get "database is locked".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, Engine, func, inspect, select
from sqlmodel import Session, col

from workbench.db.engine import read_only, write_gate
from workbench.db.models import Item, Project, utcnow
from workbench.domain import Actor, AnnotationSource, DuplicatePolicy, ProjectKind, Role, Split
from workbench.errors import NotFound, WorkbenchError, storage_fault
from workbench.importing.limits import Limits, size
from workbench.importing.readers import FolderReader, Reader, detect_format, open_reader
from workbench.importing.report import (
    FileProblem,
    ImportReport,
    LimitExceeded,
    OnDuplicate,
    Problem,
    RowError,
    RowProblem,
)
from workbench.importing.validate import ImportOptions, NumericInference, RowBuilder
from workbench.services._auth import require_role, requires
from workbench.services._tx import audit, reading, write
from workbench.services.projects import check_writable, load_project

if TYPE_CHECKING:
    from workbench.domain import ProjectInfo
    from workbench.health.stream import HealthPass

# progress(done, total): bytes of the file read so far (rows for Parquet and image folders).
Progress = Callable[[int, int], None]
SAMPLE_SIZE = 5

# A batch's duplicate rows: (position in the batch, message); None: left alone (--on-duplicate skip).
Duplicates = list[tuple[int, str | None]]

_ITEM_COLUMNS = (
    "project_id, external_id, split, state, content, final_label, slots_taken, n_annotations, random_key, created_at"
)


def _sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _limits(info: ProjectInfo) -> Limits:
    """The project's import limits (settings["limits"] over the defaults)."""
    try:
        return Limits.from_settings(info.settings.get("limits"))
    except ValueError as exc:
        raise WorkbenchError(f"project {info.name!r}: {exc}") from None


# SQLite's page cache for the import's connection (restored afterwards): the item indexes of a
# big import outgrow the default 2 MB and pages would spill to the WAL and be read back. Fixed, so
# memory stays bounded whatever the file size.
SQLITE_IMPORT_CACHE_KIB = 64 * 1024


def _widen_sqlite_cache(conn: Connection) -> int | None:
    if conn.dialect.name != "sqlite":
        return None
    raw = conn.connection.driver_connection  # autocommit at the driver: no transaction begun
    assert raw is not None  # an open connection
    previous = raw.execute("PRAGMA cache_size").fetchone()[0]
    raw.execute(f"PRAGMA cache_size=-{SQLITE_IMPORT_CACHE_KIB}")
    return previous


class _Sink:
    """Where the rows of one batch go; returns the duplicates as (position in batch, message)."""

    def __init__(self, conn: Connection, project_id: int, created_at: Any, *, skip_same: bool = False) -> None:
        self.conn = conn
        self.project_id = int(project_id)
        self.created_at = created_at
        # --on-duplicate skip: a row whose id is already in the project with the same content is
        # returned with the message None (left alone, counted), not as a duplicate.
        self.skip_same = skip_same
        # SQLite: multi-row VALUES with qmark parameters. PostgreSQL: COPY, or one array parameter
        # per column unnested server-side (a short statement psycopg prepares once).
        self.postgres = conn.dialect.name == "postgresql"
        self.max_item_id: int = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM item").scalar_one()
        self._sql: dict[int, str] = {}

    # external id -> item id of the last batch (set by _WriteSink.add, for the health pass)
    inserted: dict[str, int]

    def add(self, batch: list, splits: list[str], keys: list[float], *, annotate: bool) -> Duplicates:
        raise NotImplementedError

    def _existing(self, external_ids: list[str]) -> dict[str, int]:
        if self.postgres:
            return dict(
                self.conn.exec_driver_sql(
                    f"SELECT external_id, id FROM item WHERE project_id = {self.project_id} "
                    "AND external_id = ANY(%s::text[])",
                    (list(external_ids),),
                ).all()
            )
        found: dict[str, int] = {}
        for start in range(0, len(external_ids), 500):
            chunk = external_ids[start : start + 500]
            marks = ",".join(["?"] * len(chunk))
            rows = self.conn.exec_driver_sql(
                f"SELECT external_id, id FROM item WHERE project_id = {self.project_id} AND external_id IN ({marks})",
                tuple(chunk),
            ).all()
            found.update(rows)
        return found

    def _stored_content(self, item_ids: list[int]) -> dict[int, Any]:
        """The stored content of these items, decoded (only asked for rows that are duplicates)."""
        found: dict[int, Any] = {}
        for start in range(0, len(item_ids), 500):
            chunk = item_ids[start : start + 500]
            if self.postgres:
                rows = self.conn.exec_driver_sql("SELECT id, content FROM item WHERE id = ANY(%s)", (chunk,)).all()
            else:
                marks = ",".join(["?"] * len(chunk))
                rows = self.conn.exec_driver_sql(
                    f"SELECT id, content FROM item WHERE id IN ({marks})", tuple(chunk)
                ).all()
            found.update((i, c if isinstance(c, dict) else json.loads(c)) for i, c in rows)
        return found

    def _already(self, batch: list, in_project: dict[int, int]) -> dict[int, str | None]:
        """Messages for rows whose id is already in the project ({position: item id}); None for a
        row left alone under skip_same (same content)."""
        stored = self._stored_content(list(in_project.values())) if self.skip_same else {}
        out: dict[int, str | None] = {}
        for position, item_id in in_project.items():
            external_id = batch[position][2]
            if self.skip_same and stored.get(item_id) == json.loads(batch[position][3]):
                out[position] = None
            elif self.skip_same:
                out[position] = f"id {external_id!r} is already in the project (item {item_id}) with other content"
            else:
                out[position] = f"id {external_id!r} is already in the project (item {item_id})"
        return out

    def _classify(self, batch: list, accepted: set[str] | dict) -> Duplicates:
        """Duplicates of a batch, given the external ids the database accepted from it."""
        duplicates: Duplicates = []
        first_row: dict[str, int] = {}
        unresolved: list[int] = []
        for position, (row, _line, external_id, _content, _prelabel) in enumerate(batch):
            if external_id in first_row:
                duplicates.append(
                    (position, f"id {external_id!r} is also in row {first_row[external_id]}, earlier in this file")
                )
            else:
                first_row[external_id] = row
                if external_id not in accepted:
                    unresolved.append(position)
        if unresolved:
            existing = self._existing([batch[p][2] for p in unresolved])
            in_project: dict[int, int] = {}
            for position in unresolved:
                external_id = batch[position][2]
                item_id = existing.get(external_id)
                if item_id is not None and item_id <= self.max_item_id:
                    in_project[position] = item_id
                else:
                    duplicates.append((position, f"id {external_id!r} is already used earlier in this file"))
            duplicates += self._already(batch, in_project).items()
            duplicates.sort()
        return duplicates


class _WriteSink(_Sink):
    """Inserts items (and prelabel annotations) for real, inside the caller's transaction."""

    def add(self, batch: list, splits: list[str], keys: list[float], *, annotate: bool) -> Duplicates:
        n = len(batch)
        created = self.created_at
        if self.postgres and self._copy_ok(batch):
            inserted = self._copy_items(batch, splits, keys)
        elif self.postgres:
            inserted = dict(
                self.conn.exec_driver_sql(
                    f"INSERT INTO item ({_ITEM_COLUMNS}) SELECT {self.project_id}, e, s, 'open', c::json, NULL, "
                    "0, 0, k, %s FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[]) "
                    "WITH ORDINALITY AS t(e, s, c, k, o) ORDER BY o "
                    "ON CONFLICT (project_id, external_id) DO NOTHING RETURNING external_id, id",
                    (created, [b[2] for b in batch], splits, [b[3] for b in batch], keys),
                ).all()
            )
        else:
            sql = self._sql.get(n)
            if sql is None:
                one = f"({self.project_id},?,?,'open',?,NULL,0,0,?,?)"
                sql = self._sql[n] = (
                    f"INSERT INTO item ({_ITEM_COLUMNS}) VALUES {','.join([one] * n)} "
                    f"ON CONFLICT (project_id, external_id) DO NOTHING RETURNING external_id, id"
                )
            params: list[Any] = []
            for (_row, _line, external_id, content, _prelabel), split, key in zip(batch, splits, keys):
                params += (external_id, split, content, key, created)
            inserted = dict(self.conn.exec_driver_sql(sql, tuple(params)).all())
        self.inserted = inserted  # external id -> item id, for the health pass
        duplicates = self._classify(batch, inserted) if len(inserted) < n else []
        if annotate:
            bad = {position for position, _ in duplicates}
            labeled = [
                (inserted[external_id], prelabel)
                for position, (_row, _line, external_id, _content, prelabel) in enumerate(batch)
                if prelabel is not None and position not in bad
            ]
            if labeled and self.postgres:
                with (
                    self._cursor() as cursor,
                    cursor.copy("COPY annotation (project_id, item_id, source, label, created_at) FROM STDIN") as copy,
                ):
                    for item_id, label in labeled:
                        copy.write_row((self.project_id, item_id, AnnotationSource.IMPORT.value, label, created))
            elif labeled:
                self.conn.exec_driver_sql(
                    "INSERT INTO annotation (project_id, item_id, annotator_id, source, slot, lease_id, "
                    f"label, duration_ms, created_at) VALUES ({self.project_id}, ?, NULL, 'import', "
                    "NULL, NULL, ?, NULL, ?)",
                    [(i, label, created) for i, label in labeled],
                )
        return duplicates

    # PostgreSQL fast path: when no id of the batch is taken (checked first, with one indexed
    # query), COPY the rows with ids drawn from the sequence; COPY is about twice as fast as
    # INSERT ... ON CONFLICT here. A batch with a duplicate takes the ON CONFLICT path to say which.

    def _cursor(self) -> Any:  # the driver's own cursor (psycopg's, for COPY)
        driver = self.conn.connection.driver_connection
        assert driver is not None, "an open connection has its driver's connection"
        return driver.cursor()

    def _copy_ok(self, batch: list) -> bool:
        external_ids = [b[2] for b in batch]
        return len(set(external_ids)) == len(external_ids) and not self._existing(external_ids)

    def _copy_items(self, batch: list, splits: list[str], keys: list[float]) -> dict[str, int]:
        ids = [
            r[0]
            for r in self.conn.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence('item', 'id')) FROM generate_series(1, %s)", (len(batch),)
            ).all()
        ]
        project_id, created = self.project_id, self.created_at
        with (
            self._cursor() as cursor,
            cursor.copy(
                "COPY item (id, project_id, external_id, split, state, content, slots_taken, "
                "n_annotations, random_key, created_at) FROM STDIN"
            ) as copy,
        ):
            for item_id, b, split, key in zip(ids, batch, splits, keys):
                copy.write_row((item_id, project_id, b[2], split, "open", b[3], 0, 0, key, created))
        return {b[2]: item_id for item_id, b in zip(ids, batch)}


class _CheckSink(_Sink):
    """For a preview: ids go into a temporary table, so duplicates are found without writing items
    (and, on SQLite, without taking the database's write lock)."""

    def __init__(self, conn: Connection, project_id: int, created_at: Any, *, skip_same: bool = False) -> None:
        super().__init__(conn, project_id, created_at, skip_same=skip_same)
        self.table = f"wb_import_ids_{secrets.token_hex(6)}"
        suffix = "" if conn.dialect.name == "sqlite" else " ON COMMIT DROP"
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {self.table} (external_id TEXT PRIMARY KEY){suffix}")

    def add(self, batch: list, splits: list[str], keys: list[float], *, annotate: bool) -> Duplicates:
        n = len(batch)
        if self.postgres:
            result = self.conn.exec_driver_sql(
                f"INSERT INTO {self.table} (external_id) SELECT unnest(%s::text[]) "
                "ON CONFLICT (external_id) DO NOTHING RETURNING external_id",
                ([b[2] for b in batch],),
            )
        else:
            sql = self._sql.get(n)
            if sql is None:
                sql = self._sql[n] = (
                    f"INSERT INTO {self.table} (external_id) VALUES {','.join(['(?)'] * n)} "
                    "ON CONFLICT (external_id) DO NOTHING RETURNING external_id"
                )
            result = self.conn.exec_driver_sql(sql, tuple(b[2] for b in batch))
        new = {r[0] for r in result.all()}
        existing = self._existing(list(dict.fromkeys(b[2] for b in batch)))
        duplicates: Duplicates = []
        first_row: dict[str, int] = {}
        in_project: dict[int, int] = {}
        for position, (row, _line, external_id, _content, _prelabel) in enumerate(batch):
            if external_id in first_row:
                duplicates.append(
                    (position, f"id {external_id!r} is also in row {first_row[external_id]}, earlier in this file")
                )
                continue
            first_row[external_id] = row
            if external_id in existing:
                in_project[position] = existing[external_id]
            elif external_id not in new:
                duplicates.append((position, f"id {external_id!r} is already used earlier in this file"))
        duplicates += self._already(batch, in_project).items()
        duplicates.sort()
        return duplicates


def _scrubber(info: ProjectInfo) -> Callable[[str], str] | None:
    """The project's personal-data replacement for text, or None when it keeps text as it is."""
    from workbench.config import workbench_home
    from workbench.health.pii import PiiMode, pii_mode, project_secret, scrub

    mode = pii_mode(info.settings, info.kind.value)
    if mode not in (PiiMode.PSEUDONYMIZE, PiiMode.MASK) or info.kind is not ProjectKind.TEXT:
        return None
    secret = project_secret(workbench_home(), info.id)
    region = str(info.settings.get("pii_region") or "US")
    return lambda text: scrub(text, mode, secret=secret, region=region).text


def _feed_existing(conn: Connection, project_id: int, health: HealthPass, chunk: int = 20_000) -> None:
    """The project's items before this import, a page at a time, to the health pass (duplicates
    against existing items)."""
    last = 0
    while True:
        rows = conn.execute(
            select(col(Item.id), col(Item.external_id), col(Item.split), col(Item.content))
            .where(col(Item.project_id) == project_id, col(Item.id) > last)
            .order_by(col(Item.id))
            .limit(chunk)
        ).all()
        if not rows:
            return
        health.add_contents(
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows], new=False
        )
        last = rows[-1][0]


def _remove_items(conn: Connection, item_ids: list[int]) -> dict[str, int]:
    """Inside the import's transaction: take out items it has just written (and their prelabels);
    returns how many items, per split, and prelabels went."""
    from sqlalchemy import delete

    from workbench.db.models import Annotation, Lease

    removed = {"items": 0, "prelabels": 0}
    for start in range(0, len(item_ids), 1000):
        part = item_ids[start : start + 1000]
        for split, n in conn.execute(
            select(col(Item.split), func.count()).where(col(Item.id).in_(part)).group_by(col(Item.split))
        ):
            removed[split] = removed.get(split, 0) + n
        removed["prelabels"] += conn.execute(
            delete(Annotation).where(
                col(Annotation.item_id).in_(part), col(Annotation.source) == AnnotationSource.IMPORT
            )
        ).rowcount
        # Label Studio imports also bring human labels, each with its (submitted) lease.
        removed["annotations"] = (
            removed.get("annotations", 0)
            + conn.execute(delete(Annotation).where(col(Annotation.item_id).in_(part))).rowcount
        )
        conn.execute(delete(Lease).where(col(Lease.item_id).in_(part)))
        removed["items"] += conn.execute(delete(Item).where(col(Item.id).in_(part))).rowcount
    return removed


def _analyze_items(engine: Engine) -> None:
    """Fresh planner statistics after a bulk import (PostgreSQL), so the item browser's and the
    queue's queries are planned for the rows that are there now, not for an empty table."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE item")
            conn.commit()
    except Exception:  # statistics are an optimisation; autovacuum does it later anyway
        pass


def _last_item_id(engine: Engine, project_id: int) -> int | None:
    """The project's highest item id before an import (the items of the import come after it)."""
    with reading(engine) as session:
        return session.execute(select(func.max(col(Item.id))).where(col(Item.project_id) == project_id)).scalar_one()


class ImportService:
    """Import files and image folders into a project (admin; the CLI passes Actor.operator())."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @requires(Role.ADMIN)
    def preview(
        self, project: str, path: str | Path, *, actor: Actor, progress: Progress | None = None, **options: Any
    ) -> ImportReport:
        """Validate a file as `run` would, duplicates included; writes nothing."""
        return self._file(project, path, options, dry_run=True, actor=actor, progress=progress)

    @requires(Role.ADMIN)
    def run(
        self, project: str, path: str | Path, *, actor: Actor, progress: Progress | None = None, **options: Any
    ) -> ImportReport:
        """Import a file: every row, in one transaction, or (any bad row) nothing."""
        return self._file(project, path, options, dry_run=False, actor=actor, progress=progress)

    @requires(Role.ADMIN)
    def preview_folder(
        self,
        project: str,
        folder: str | Path,
        *,
        prelabel_from_folders: bool = False,
        actor: Actor,
        progress: Progress | None = None,
        **options: Any,
    ) -> ImportReport:
        return self.run_folder(
            project,
            folder,
            prelabel_from_folders=prelabel_from_folders,
            dry_run=True,
            actor=actor,
            progress=progress,
            **options,
        )

    @requires(Role.ADMIN)
    def run_folder(
        self,
        project: str,
        folder: str | Path,
        *,
        prelabel_from_folders: bool = False,
        dry_run: bool = False,
        actor: Actor,
        progress: Progress | None = None,
        **options: Any,
    ) -> ImportReport:
        """Import a folder of images (recursively); the external id is the relative path. Images in
        subfolders named like labels become prelabels only with prelabel_from_folders=True."""
        unknown = set(options) - {
            "eval_fraction",
            "seed",
            "batch_size",
            "max_errors",
            "on_near_duplicate",
            "on_duplicate",
        }
        if unknown:
            raise WorkbenchError(f"unknown folder import option(s): {', '.join(sorted(unknown))}")
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise WorkbenchError(f"no such folder: {folder}")
        opts = self._options(
            dict(
                options,
                image_col="path",
                image_root=folder,
                prelabel_col="subfolder" if prelabel_from_folders else None,
            )
        )
        info = self._project(project)
        if info.kind is not ProjectKind.IMAGE:
            raise WorkbenchError(
                f"project {project!r} is a {info.kind.value} project; a folder of images needs an image project"
            )
        report = ImportReport(project=project, path=str(folder), format="folder", dry_run=dry_run)
        limits = _limits(info)
        return self._import(
            info,
            report,
            lambda: FolderReader(folder.resolve(), limits=limits),
            opts,
            actor=actor,
            progress=progress,
            folder=True,
        )

    # -- the work ----------------------------------------------------------------------------------

    @staticmethod
    def _options(options: dict[str, Any]) -> ImportOptions:
        try:
            return ImportOptions(**options)
        except TypeError as exc:
            raise WorkbenchError(f"unknown import option: {exc}") from None
        except ValueError as exc:
            raise WorkbenchError(str(exc)) from None

    def _project(self, name: str) -> ProjectInfo:
        with reading(self.engine) as session:
            return load_project(session, name)

    def _file(
        self,
        project: str,
        path: str | Path,
        options: dict[str, Any],
        *,
        dry_run: bool,
        actor: Actor,
        progress: Progress | None,
    ) -> ImportReport:
        require_role(actor, Role.ADMIN)
        opts = self._options(options)
        path = Path(path).expanduser()
        if not path.is_file():
            raise WorkbenchError(f"no such file: {path}")
        try:
            fmt = detect_format(path, opts.format)
        except ValueError as exc:
            raise WorkbenchError(str(exc)) from None
        info = self._project(project)
        limits = _limits(info)
        report = ImportReport(project=project, path=str(path), format=fmt, dry_run=dry_run)
        n_bytes = path.stat().st_size
        if n_bytes > limits.max_file_bytes:
            report.size_bytes = n_bytes
            report.file_errors.append(
                f"the file has {size(n_bytes)}, over the limit of {size(limits.max_file_bytes)} (limits.max_file_bytes)"
            )
            return report
        try:
            report.sha256, report.size_bytes = _sha256(path)
        except OSError as exc:
            raise WorkbenchError(f"cannot read {path}: {exc.strerror or exc}") from None

        def open_() -> Reader:
            return open_reader(
                path,
                fmt,
                delimiter=opts.delimiter,
                names=list(opts.columns) if opts.columns is not None else None,
                skip_initial_space=opts.skip_initial_space,
                limits=limits,
            )

        return self._import(info, report, open_, opts, actor=actor, progress=progress, default_root=path.parent)

    def _image_root(
        self, info: ProjectInfo, opts: ImportOptions, default_root: Path | None
    ) -> tuple[Path, str, str | None]:
        """(root the paths are relative to, prefix for stored paths, root to save in the settings)."""
        stored = info.settings.get("image_root")
        if opts.image_root is not None:
            root = Path(opts.image_root).expanduser().resolve()
        elif stored:
            root = Path(stored).expanduser().resolve()
        else:
            root = (default_root or Path.cwd()).resolve()
        if not root.is_dir():
            raise FileProblem(f"image root {root} is not a folder")
        if not stored:
            return root, "", str(root)
        project_root = Path(stored).expanduser().resolve()
        if root == project_root:
            return root, "", None
        if root.is_relative_to(project_root):
            return root, root.relative_to(project_root).as_posix() + "/", None
        raise FileProblem(
            f"image root {root} is outside the project's image root {project_root} "
            "(stored paths are relative to it): put the images under it"
        )

    def _import(
        self,
        info: ProjectInfo,
        report: ImportReport,
        open_: Callable[[], Reader],
        opts: ImportOptions,
        *,
        actor: Actor,
        progress: Progress | None,
        default_root: Path | None = None,
        folder: bool = False,
    ) -> ImportReport:
        if not report.dry_run:
            check_writable(info)
        started = time.perf_counter()
        report.max_listed = opts.max_errors
        fraction = float(info.settings.get("eval_fraction", 0.2) if opts.eval_fraction is None else opts.eval_fraction)
        seed = opts.seed if opts.seed is not None else secrets.randbelow(2**31)
        report.eval_fraction, report.seed = fraction, seed
        save_root = None
        try:
            root, prefix = None, ""
            if info.kind is ProjectKind.IMAGE:
                root, prefix, save_root = self._image_root(info, opts, default_root)
            reader = open_()
            found_prelabels = getattr(reader, "prelabel_col", None)  # Label Studio predictions
            if found_prelabels and opts.prelabel_col is None:
                opts = replace(opts, prelabel_col=found_prelabels)
            report.encoding = reader.encoding
            report.columns = list(reader.columns)
            builder = RowBuilder(
                kind=info.kind.value,
                columns=reader.columns,
                options=opts,
                labels=info.offered,
                image_root=root,
                image_prefix=prefix,
                check_strings=reader.format not in ("csv", "tsv"),
                id_from_image=folder,
                limits=_limits(info),
                scrub_text=_scrubber(info),
            )
            if info.kind is ProjectKind.TABULAR and reader.format in ("csv", "tsv"):
                inference = NumericInference(builder)
                for _row, _line, values, _problems in open_().records(builder.needed):
                    if values is not None:
                        inference.feed(values)
                builder.numeric = inference.result()
        except FileProblem as exc:
            report.file_errors.append(str(exc))
            report.seconds = time.perf_counter() - started
            return report
        report.options = {
            **builder.chosen,
            "format": reader.format,
            "numeric_columns": sorted(builder.numeric) if builder.numeric is not None else None,
        }

        engine = read_only(self.engine) if report.dry_run else self.engine
        bind = inspect(Item).columns["created_at"].type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
        now = utcnow()
        created_at = bind(now) if bind else now
        rng = np.random.default_rng(seed)
        # A real import holds the write lock for its whole transaction; on SQLite, service writers
        # then queue on the write gate and wake when it commits, instead of polling the lock.
        health = None
        if not report.dry_run and info.settings.get("health_at_import", True):
            from workbench.health.stream import health_pass
            from workbench.services.health import health_settings

            health = health_pass(info.kind.value, **health_settings(info))
        report.options["on_near_duplicate"] = DuplicatePolicy(opts.on_near_duplicate).value  # an enum after init
        last_id = _last_item_id(self.engine, info.id) if builder.gold_answers and not report.dry_run else None
        try:
            self._write(
                engine,
                info,
                report,
                reader,
                builder,
                opts,
                rng,
                fraction,
                created_at,
                actor,
                progress,
                save_root,
                health,
            )
        except Exception as exc:  # a full disk, a read-only database: one line, nothing written
            fault = storage_fault(exc, "the import")
            if fault is None:
                raise
            raise fault from exc
        finally:
            if health is not None:
                health.close()
        if report.imported and builder.gold_answers:
            report.gold_items = self._mark_gold(info, builder.gold_answers, last_id, actor)
        report.seconds = time.perf_counter() - started
        if report.imported and self.engine.dialect.name == "postgresql":
            _analyze_items(self.engine)
        if report.imported:
            from workbench.services.alerts import AlertEvent, queue_check

            queue_check(self.engine, info.id, AlertEvent.IMPORT)  # evaluated and sent by the worker
        return report

    def _mark_gold(self, info: ProjectInfo, answers: dict[str, str], last_id: int | None, actor: Actor) -> int:
        """Items of this import with a value in --gold-col become gold items: moved to the pool
        (gold never counts as an eval measurement) and marked with their known answer
        (workbench.services.quality.mark_gold). Items that were already there are left alone."""
        from sqlalchemy import update

        from workbench.services.quality import mark_gold

        def move(session: Session) -> dict[str, str]:
            conn = session.connection()
            new = select(col(Item.external_id)).where(
                col(Item.project_id) == info.id, col(Item.external_id).in_(list(answers))
            )
            if last_id is not None:
                new = new.where(col(Item.id) > last_id)
            fresh = set(conn.execute(new).scalars())
            if fresh:
                conn.execute(
                    update(Item)
                    .where(col(Item.project_id) == info.id, col(Item.external_id).in_(sorted(fresh)))
                    .values(split=Split.POOL)
                )
            return {e: label for e, label in answers.items() if e in fresh}

        chosen = write(self.engine, move)
        return mark_gold(self.engine, info.name, chosen, actor=actor) if chosen else 0

    @staticmethod
    def _health(
        conn: Connection, info: ProjectInfo, report: ImportReport, health: HealthPass, opts: ImportOptions, actor: Actor
    ) -> None:
        """Inside the import's transaction: the health report of the batch (fed while it was
        written), the near-duplicate policy applied, and the flags stored. A failure here never
        undoes the import: its savepoint is rolled back and it becomes a warning."""
        from workbench.domain import DuplicatePolicy
        from workbench.health.report import FlagKind
        from workbench.services.health import write_flags

        started, fed = time.perf_counter(), health.seconds
        try:
            with conn.begin_nested():
                result = health.finish()
                flags = list(result.flags)
                copies = {FlagKind.DUPLICATE, FlagKind.NEAR_DUPLICATE}
                skipped: dict[str, int] = {}
                if opts.on_near_duplicate is DuplicatePolicy.SKIP:
                    skip = {f.item_id for f in flags if f.kind in copies}
                    skipped = _remove_items(conn, sorted(skip))
                    flags = [f for f in flags if f.item_id not in skip]
                elif opts.on_near_duplicate is DuplicatePolicy.KEEP:
                    flags = [f for f in flags if f.kind not in copies]
                with Session(bind=conn) as session:  # joins the savepoint: commit releases only it
                    write_flags(session, info.id, flags, actor, batch=report.imported - skipped.get("items", 0))
                    session.commit()
        except Exception as exc:  # the labels are in; say what the check could not do
            report.warnings.append(f"the data health check failed: {type(exc).__name__}: {exc}")
        else:
            report.health = result
            if skipped:
                report.skipped_duplicates = skipped["items"]
                report.imported -= skipped["items"]
                report.n_pool -= skipped.get("pool", 0)
                report.n_eval -= skipped.get("eval", 0)
                report.prelabels -= skipped["prelabels"]
                report.annotations -= skipped.get("annotations", 0)
        report.health_seconds = fed + time.perf_counter() - started

    def _write(
        self,
        engine: Engine,
        info: ProjectInfo,
        report: ImportReport,
        reader: Reader,
        builder: RowBuilder,
        opts: ImportOptions,
        rng: np.random.Generator,
        fraction: float,
        created_at: Any,
        actor: Actor,
        progress: Progress | None,
        save_root: str | None,
        health: HealthPass | None = None,  # fed the rows as they are written
    ) -> None:
        """Stream the rows into one transaction; commit only when every row is good."""
        gate = contextlib.nullcontext() if report.dry_run else write_gate(self.engine)
        with gate, engine.connect() as conn:
            restore_cache = _widen_sqlite_cache(conn) if not report.dry_run else None
            transaction = conn.begin()
            try:
                sink_class = _CheckSink if report.dry_run else _WriteSink
                sink = sink_class(conn, info.id, created_at, skip_same=opts.on_duplicate == OnDuplicate.SKIP)
                if health is not None:
                    _feed_existing(conn, info.id, health)
                human = getattr(reader, "human", None)  # Label Studio annotations by named users
                ids: dict[int, str] = {}
                try:
                    self._stream(
                        reader, builder, sink, rng, fraction, report, opts, progress, health, ids if human else None
                    )
                    if human:
                        self._human_labels(conn, sink, info, report, human, ids, created_at)
                except LimitExceeded as exc:  # reading stopped there: the file is refused
                    report.file_errors.append(exc.at(report.rows + 1))
                except FileProblem as exc:  # e.g. broken UTF-16 found mid-file
                    report.file_errors.append(str(exc))
                first_undecodable = next((e.row for e in report.errors if e.kind == Problem.UNDECODABLE), None)
                report.file_errors += reader.verdicts(first_undecodable)
                report.warnings += reader.warnings()
                report.sort_errors()
                if reader.format == "label-studio":  # name the task (its index in the JSON list) on every line
                    report.errors = [
                        e if e.message.startswith("tasks[") else replace(e, message=f"tasks[{e.row - 1}]: {e.message}")
                        for e in report.errors
                    ]
                if report.rows == 0 and not report.file_errors:
                    report.file_errors.append("file has no data rows")
                if not report.ok or report.dry_run:
                    transaction.rollback()
                else:
                    report.imported = report.valid_rows
                    if health is not None:
                        self._health(conn, info, report, health, opts, actor)
                    self._finish(conn, info, report, actor, save_root)
                    transaction.commit()
            finally:
                if transaction.is_active:
                    transaction.rollback()
                if restore_cache is not None:
                    raw = conn.connection.driver_connection
                    assert raw is not None  # still open
                    raw.execute(f"PRAGMA cache_size={int(restore_cache)}")

    @staticmethod
    def _stream(
        reader: Reader,
        builder: RowBuilder,
        sink: _Sink,
        rng: np.random.Generator,
        fraction: float,
        report: ImportReport,
        opts: ImportOptions,
        progress: Progress | None,
        health: HealthPass | None = None,
        ids: dict[int, str] | None = None,
    ) -> None:
        """Read and check rows, write them a batch at a time (memory is bounded by the batch).
        (A writer thread overlapping parsing with the database was tried: slower on 2 busy cores.)
        The health pass is fed each batch as written, while the import can still succeed.
        `ids`, when given, collects each good row's external id by row number."""
        size = opts.batch_size
        build = builder.build
        batch: list[tuple] = []
        contents: list[dict] = []

        def account(done: list, splits: list[str], duplicates: Duplicates) -> None:
            bad = set()
            for position, message in duplicates:
                bad.add(position)
                if message is None:  # --on-duplicate skip, same content: left alone
                    report.left_alone += 1
                    continue
                row, line = done[position][0], done[position][1]
                report.add_error(RowError(row, Problem.DUPLICATE_ID.value, message, line, builder.id_col))
            for position, (row, _line, external_id, content, prelabel) in enumerate(done):
                if position in bad:
                    continue
                report.valid_rows += 1
                if splits[position] == "eval":
                    report.n_eval += 1
                else:
                    report.n_pool += 1
                if prelabel is not None:
                    report.prelabels += 1
                if len(report.sample) < SAMPLE_SIZE:
                    report.sample.append(
                        {
                            "row": row,
                            "external_id": external_id,
                            "split": splits[position],
                            "content": json.loads(content),
                            "prelabel": prelabel,
                        }
                    )

        def flush() -> None:
            draws = rng.random((len(batch), 2)).tolist()
            splits = ["eval" if u < fraction else "pool" for u, _ in draws]
            keys = [key for _, key in draws]
            # Prelabels are written only while the import can still succeed.
            duplicates = sink.add(batch, splits, keys, annotate=report.n_errors == 0)
            account(batch, splits, duplicates)
            if health is not None and report.n_errors == 0:
                bad = {position for position, _ in duplicates}
                kept = [position for position in range(len(batch)) if position not in bad]
                ids = sink.inserted
                health.add_contents(
                    [ids[batch[p][2]] for p in kept],
                    [batch[p][2] for p in kept],
                    [splits[p] for p in kept],
                    [contents[p] for p in kept],
                    new=True,
                    prelabels=[batch[p][4] for p in kept],
                )
            if progress is not None:
                progress(reader.done(), reader.total)

        max_rows = builder.limits.max_rows
        for row, line, values, problems in reader.records(builder.needed):
            if row > max_rows:
                raise LimitExceeded(f"more than {max_rows:,} rows (limits.max_rows); nothing was read past it", line)
            report.rows = row
            if problems:
                kind = problems[0][0]
                report.add_error(RowError(row, kind.value, "; ".join(m for _, m in problems), line))
                continue
            assert values is not None  # a row without problems has its values
            try:
                external_id, content, prelabel = build(row, values)
            except RowProblem as problem:
                report.add_error(RowError(row, problem.kind.value, problem.message, line, problem.column))
                continue
            batch.append((row, line, external_id, content, prelabel))
            if health is not None:
                contents.append(builder.last_content)
            if ids is not None:
                ids[row] = external_id
            if len(batch) >= size:
                flush()
                batch, contents = [], []
        if batch:
            flush()
        if progress is not None:
            progress(reader.total, reader.total)

    @staticmethod
    def _human_labels(
        conn: Connection,
        sink: _Sink,
        info: ProjectInfo,
        report: ImportReport,
        human: dict[int, list],
        ids: dict[int, str],
        created_at: Any,
    ) -> None:
        """Annotations by named users (Label Studio tasks): each annotator must be a user and each
        label in the label set, else the task is refused (one line each). Written only when every
        row is good: a submitted lease and a human annotation per label, then the item is resolved
        by the overlap policy exactly as after a label given in the app."""
        from sqlalchemy import bindparam, insert, update

        from workbench.db.models import Annotation, Lease, User
        from workbench.domain import ClaimReason, LeaseState
        from workbench.importing.label_studio import annotator_names
        from workbench.services.queue import resolve

        wanted = {name for labels in human.values() for email, *_ in labels for name in annotator_names(email)}
        users: dict[str, int] = {}
        names = sorted(wanted)
        for start in range(0, len(names), 500):
            for name, user_id in conn.execute(
                select(col(User.name), col(User.id)).where(col(User.name).in_(names[start : start + 500]))
            ):
                assert user_id is not None  # a primary key
                users[name] = user_id
        labels = set(info.labels)
        resolved: dict[int, list[tuple[int, str, Any, Any]]] = {}
        for row in sorted(human):
            if row not in ids:  # the row itself was refused
                continue
            found = []
            for j, (email, label, when, lead) in enumerate(human[row]):
                user_id = next((users[n] for n in annotator_names(email) if n in users), None)
                if user_id is None:
                    report.add_error(
                        RowError(
                            row,
                            Problem.UNKNOWN_ANNOTATOR.value,
                            f"tasks[{row - 1}].annotations[{j}]: annotator {email!r} is not a Workbench user "
                            f"(add them with `workbench users add {annotator_names(email)[0]} annotator`)",
                        )
                    )
                elif label not in labels:
                    report.add_error(
                        RowError(
                            row,
                            Problem.UNKNOWN_LABEL.value,
                            f"tasks[{row - 1}].annotations[{j}]: {label!r} is not in the project's label set "
                            f"({', '.join(sorted(labels))})",
                        )
                    )
                else:
                    found.append((user_id, label, when, lead))
            if len({user_id for user_id, *_ in found}) < len(found):
                report.add_error(
                    RowError(row, Problem.DUPLICATE_ID.value, f"tasks[{row - 1}]: one user annotated it twice")
                )
            resolved[row] = found
        if not report.ok or report.dry_run:
            return
        item_ids = sink._existing([ids[row] for row in resolved])
        now = utcnow()  # for annotations without a created_at (`created_at` is already bound for the driver)
        rows = [(item_ids[ids[row]], found) for row, found in resolved.items() if found]
        with Session(bind=conn) as session:
            for start in range(0, len(rows), 1000):  # executemany per chunk; then each item is resolved
                chunk = rows[start : start + 1000]
                labels_in = [
                    (item_id, slot, user_id, label, when or now, lead)
                    for item_id, found in chunk
                    for slot, (user_id, label, when, lead) in enumerate(found, start=1)
                ]
                lease_ids = (
                    conn.execute(
                        insert(Lease).returning(col(Lease.id), sort_by_parameter_order=True),
                        [
                            {
                                "project_id": info.id,
                                "item_id": item_id,
                                "annotator_id": user_id,
                                "slot": slot,
                                "state": LeaseState.SUBMITTED,
                                "reason": ClaimReason.IMPORT,
                                "claimed_at": moment,
                                "expires_at": moment,
                                "closed_at": moment,
                            }
                            for item_id, slot, user_id, _label, moment, _lead in labels_in
                        ],
                    )
                    .scalars()
                    .all()
                )
                conn.execute(
                    insert(Annotation),
                    [
                        {
                            "project_id": info.id,
                            "item_id": item_id,
                            "annotator_id": user_id,
                            "source": AnnotationSource.HUMAN,
                            "slot": slot,
                            "lease_id": lease_id,
                            "label": label,
                            "duration_ms": None if lead is None else int(round(lead * 1000)),
                            "created_at": moment,
                        }
                        for (item_id, slot, user_id, label, moment, lead), lease_id in zip(labels_in, lease_ids)
                    ],
                )
                conn.execute(
                    update(Item)
                    .where(col(Item.id) == bindparam("b_item"))
                    .values(n_annotations=bindparam("b_n"), slots_taken=bindparam("b_n")),
                    [{"b_item": item_id, "b_n": len(found)} for item_id, found in chunk],
                )
                for item_id, _found in chunk:
                    resolve(session, item_id, info)
                report.annotations += len(labels_in)
            session.flush()

    @staticmethod
    def _finish(
        conn: Connection,
        info: ProjectInfo,
        report: ImportReport,
        actor: Actor,
        save_root: str | None,
    ) -> None:
        """Inside the import's transaction: save the image root if new, and append the audit row."""
        with Session(bind=conn) as session:
            if save_root is not None:
                project = session.get(Project, info.id)
                if project is None:
                    raise NotFound(f"project {info.name!r} was deleted during the import")
                project.settings = {**project.settings, "image_root": save_root}
            with_annotations: dict[str, Any] = {"annotations": report.annotations} if report.annotations else {}
            with_image_root: dict[str, Any] = {"image_root": save_root} if save_root else {}
            audit(
                session,
                "import",
                actor_id=actor.id,
                project_id=info.id,
                file=Path(report.path).name,
                path=str(Path(report.path).resolve()),
                format=report.format,
                sha256=report.sha256,
                size_bytes=report.size_bytes,
                encoding=report.encoding,
                rows=report.rows,
                items=report.imported,
                eval=report.n_eval,
                pool=report.n_pool,
                prelabels=report.prelabels,
                **with_annotations,
                left_alone=report.left_alone,
                eval_fraction=report.eval_fraction,
                seed=report.seed,
                options={k: v for k, v in report.options.items() if v is not None},
                **with_image_root,
            )
            session.flush()
