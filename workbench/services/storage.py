"""The file stores beside the database: orphan sweeping, backup and restore.

Backup (`workbench backup --out FILE`) is one tar file: `manifest.json`, the database, and the
artifact and feature stores. The database is copied first and consistently while people keep
labeling: SQLite through its online backup API in a single step (one read transaction over a WAL
database, which never blocks writers), PostgreSQL through `pg_dump` (one repeatable-read
snapshot). The files follow; a model file is written before the run that references it commits
and is never swept while referenced, so every model run in the copied database has its file.
The tar is written under a temporary name and moved into place, so FILE is whole or absent.

Restore (`workbench restore FILE`) unpacks into an empty home (and, for PostgreSQL, an empty
database), checks every file's sha256 against the manifest and the database's integrity, and
migrates it to the current schema.

Under WORKBENCH_HOME a round writes its model file into ``artifacts/`` before it registers the
model run, and the feature store writes ``.<name>.*.tmp`` entries before moving them into place.
A round killed between those steps leaves a model file no run references, or a ``.tmp`` entry.
`sweep_orphans` removes exactly those, and only once they are older than a grace time, so a
round in flight (file written, transaction not yet committed) is never robbed of its file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.engine import URL, make_url
from sqlmodel import col

from workbench.config import workbench_home
from workbench.db.models import ModelRun
from workbench.domain import Actor, Role
from workbench.errors import WorkbenchError
from workbench.services._auth import require_role, requires
from workbench.services._home import HomeBound
from workbench.services._tx import reading

BACKUP_FORMAT = 1

ARTIFACTS, FEATURES = "artifacts", "features"
MODEL_SUFFIXES = (".skops", ".safetensors")
SWEEP_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class SweepReport:
    models: tuple[str, ...]  # unreferenced model files removed (names under artifacts/)
    temporaries: tuple[str, ...]  # .tmp files or directories removed (paths under the home)
    bytes_freed: int
    dry_run: bool


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


class StorageService(HomeBound):
    @requires(Role.ADMIN)
    def sweep_orphans(self, *, actor: Actor, grace: timedelta = SWEEP_GRACE, dry_run: bool = False) -> SweepReport:
        """Remove model files no model run references and `.tmp` leftovers, older than `grace`."""
        cutoff = time.time() - grace.total_seconds()
        artifacts, features = self.home / ARTIFACTS, self.home / FEATURES
        # List the files first, then read the references: a run registered in between keeps its file.
        candidates = [p for p in artifacts.glob("model-*") if p.suffix in MODEL_SUFFIXES] if artifacts.is_dir() else []
        with reading(self.engine) as session:
            referenced = {Path(path).name for path in session.execute(select(col(ModelRun.artifact_path))).scalars()}
        models, temporaries, freed = [], [], 0
        for path in candidates:
            try:
                if path.name in referenced or path.stat().st_mtime > cutoff:
                    continue
                freed += _size(path)
                if not dry_run:
                    path.unlink(missing_ok=True)
                models.append(path.name)
            except FileNotFoundError:
                continue
        for folder in (artifacts, features):
            if not folder.is_dir():
                continue
            for path in folder.glob(".*.tmp"):
                try:
                    if path.stat().st_mtime > cutoff:
                        continue
                    freed += _size(path)
                    if not dry_run:
                        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                    temporaries.append(str(path.relative_to(self.home)))
                except FileNotFoundError:
                    continue
        return SweepReport(
            models=tuple(sorted(models)), temporaries=tuple(sorted(temporaries)), bytes_freed=freed, dry_run=dry_run
        )


@dataclass(frozen=True)
class BackupReport:
    path: Path
    backend: str  # sqlite | postgresql
    revision: str | None  # the database's schema revision
    files: int  # artifact and feature files
    bytes: int  # size of the backup file
    database_s: float  # time spent copying the database
    total_s: float


@dataclass(frozen=True)
class RestoreReport:
    home: Path
    database_url: str  # where the database was restored (password hidden)
    backend: str
    files: int
    revision: str | None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _store_files(home: Path) -> list[Path]:
    """Files of the artifact and feature stores, without temporaries (relative to the home)."""
    found = []
    for store in (ARTIFACTS, FEATURES):
        root = home / store
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(home)
            if path.is_file() and not any(part.startswith(".") and part.endswith(".tmp") for part in relative.parts):
                found.append(relative)
    return found


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection string for pg_dump/pg_restore, with the password in the environment."""
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _pg_tool(name: str) -> str:
    tool = shutil.which(name)
    if tool is None:
        raise WorkbenchError(
            f"{name} is not installed; a PostgreSQL backup needs the PostgreSQL client tools "
            f"(e.g. apt-get install postgresql-client)"
        )
    return tool


def _run_tool(command: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise WorkbenchError(f"{what} failed: {last}")


def _schema_revision(engine: Engine) -> str | None:
    from workbench.db.migrate import current_revision

    return current_revision(engine)


def backup(engine: Engine, out: Path | str, *, actor: Actor, home: Path | None = None) -> BackupReport:
    """Write a consistent backup of the database and the file stores to `out` (see the module doc)."""
    require_role(actor, Role.ADMIN)
    started = time.monotonic()
    home = home or workbench_home()
    out = Path(out).expanduser().resolve()
    if not out.parent.is_dir():
        raise WorkbenchError(f"folder {out.parent.name!r} for the backup does not exist")
    backend = engine.dialect.name
    revision = _schema_revision(engine)
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=out.parent) as scratch_dir:
        scratch = Path(scratch_dir)
        if backend == "sqlite":
            database_member = "workbench.db"
            assert engine.url.database is not None  # a file (an in-memory database has nothing to back up)
            source = sqlite3.connect(engine.url.database, timeout=30)
            target = sqlite3.connect(scratch / database_member)
            try:
                source.backup(target)  # pages=-1: one step, one consistent read transaction
            finally:
                target.close()
                source.close()
        elif backend == "postgresql":
            database_member = "workbench.pgdump"
            dsn, env = _libpq(engine.url)
            _run_tool(
                [
                    _pg_tool("pg_dump"),
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--file={scratch / database_member}",
                    f"--dbname={dsn}",
                ],
                env,
                "pg_dump",
            )
        else:
            raise WorkbenchError(f"cannot back up a {backend} database")
        database_s = time.monotonic() - started
        files = _store_files(home)
        digests: dict[str, str] = {}
        manifest = {
            "format": BACKUP_FORMAT,
            "backend": backend,
            "revision": revision,
            "database": database_member,
            "database_sha256": _sha256(scratch / database_member),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": digests,
        }
        partial = out.with_name(f".{out.name}.part")
        try:
            with tarfile.open(partial, "w") as tar:
                tar.add(scratch / database_member, arcname=database_member)
                for relative in files:
                    path = home / relative
                    try:
                        digests[relative.as_posix()] = _sha256(path)
                        tar.add(path, arcname=relative.as_posix())
                    except FileNotFoundError:  # a cache entry replaced meanwhile; the feature store recomputes it
                        digests.pop(relative.as_posix(), None)
                payload = json.dumps(manifest, indent=1).encode()
                info = tarfile.TarInfo("manifest.json")
                info.size, info.mtime = len(payload), int(time.time())
                tar.addfile(info, io.BytesIO(payload))
            with open(partial, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(partial, out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return BackupReport(
        path=out,
        backend=backend,
        revision=revision,
        files=len(digests),
        bytes=out.stat().st_size,
        database_s=round(database_s, 3),
        total_s=round(time.monotonic() - started, 3),
    )


def _read_manifest(tar: tarfile.TarFile) -> dict:
    try:
        handle = tar.extractfile(tar.getmember("manifest.json"))
        if handle is None:  # not a regular file
            raise ValueError("manifest.json is not a file")
        manifest = json.loads(handle.read())
    except (KeyError, ValueError) as error:
        raise WorkbenchError("this is not a workbench backup (no readable manifest.json)") from error
    if manifest.get("format") != BACKUP_FORMAT:
        raise WorkbenchError(f"backup format {manifest.get('format')!r} is not supported (expected {BACKUP_FORMAT})")
    return manifest


def _pg_is_empty(url: URL) -> bool:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return not connection.execute(
                text("SELECT 1 FROM information_schema.tables WHERE table_schema = 'public' LIMIT 1")
            ).first()
    finally:
        engine.dispose()


def restore(
    path: Path | str, *, actor: Actor, home: Path | None = None, database_url: str | None = None
) -> RestoreReport:
    """Restore a backup into an empty home (and an empty PostgreSQL database, for a PostgreSQL one)."""
    require_role(actor, Role.ADMIN)
    from workbench.config import database_url as configured

    path = Path(path).expanduser()
    home = home or workbench_home()
    if any(home.iterdir()):
        raise WorkbenchError(
            f"the home folder {home.name!r} is not empty; restore needs an empty one "
            "(set WORKBENCH_HOME to a new folder)"
        )
    try:
        tar = tarfile.open(path, "r")
    except (OSError, tarfile.TarError) as error:
        raise WorkbenchError(f"cannot read backup {path.name!r}: {error}") from error
    url = make_url(configured(database_url))
    with tar:
        manifest = _read_manifest(tar)
        backend = manifest["backend"]
        if url.get_backend_name() != backend:
            raise WorkbenchError(
                f"this backup holds a {backend} database; restore it to a {backend} "
                f"database (the target is {url.get_backend_name()})"
            )
        if backend == "sqlite" and url.database and Path(url.database).exists():
            raise WorkbenchError(
                f"the database file {Path(url.database).name!r} already exists; restore needs an empty home"
            )
        if backend == "postgresql" and not _pg_is_empty(url):
            raise WorkbenchError("the target PostgreSQL database is not empty; create a new one for the restore")
        wanted = {manifest["database"], *manifest["files"]}
        members = [m for m in tar.getmembers() if m.name in wanted and m.isfile()]
        if {m.name for m in members} != wanted:
            missing = sorted(wanted - {m.name for m in members})
            raise WorkbenchError(f"the backup is incomplete: {missing[0]} is missing")
        with tempfile.TemporaryDirectory(prefix=".restore-", dir=home) as scratch_dir:
            scratch = Path(scratch_dir)
            tar.extractall(scratch, members=members, filter="data")
            if _sha256(scratch / manifest["database"]) != manifest["database_sha256"]:
                raise WorkbenchError("the backup's database copy does not match its checksum; it is damaged")
            for name, digest in manifest["files"].items():
                if _sha256(scratch / name) != digest:
                    raise WorkbenchError(f"the backup's copy of {name} does not match its checksum; it is damaged")
            if backend == "sqlite":
                copy = scratch / manifest["database"]
                check = sqlite3.connect(copy)
                try:
                    verdict = check.execute("PRAGMA integrity_check").fetchone()[0]
                finally:
                    check.close()
                if verdict != "ok":
                    raise WorkbenchError(f"the backup's database fails SQLite's integrity check: {verdict}")
                assert url.database is not None  # a SQLite file (checked above)
                target = Path(url.database)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(copy, target)
            else:
                dsn, env = _libpq(url)
                _run_tool(
                    [
                        _pg_tool("pg_restore"),
                        "--no-owner",
                        "--no-privileges",
                        "--exit-on-error",
                        f"--dbname={dsn}",
                        str(scratch / manifest["database"]),
                    ],
                    env,
                    "pg_restore",
                )
            for name in manifest["files"]:
                final = home / name
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(scratch / name, final)
    from workbench.db.engine import make_engine

    engine = make_engine(url.render_as_string(hide_password=False))  # brings an older backup to the current schema
    try:
        revision = _schema_revision(engine)
    finally:
        engine.dispose()
    return RestoreReport(
        home=home,
        database_url=url.render_as_string(hide_password=True),
        backend=backend,
        files=len(manifest["files"]),
        revision=revision,
    )
