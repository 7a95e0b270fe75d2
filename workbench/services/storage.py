"""The file stores beside the database: orphan sweeping (and, later, backup and restore).

Under WORKBENCH_HOME a round writes its model file into ``artifacts/`` before it registers the
model run, and the feature store writes ``.<name>.*.tmp`` entries before moving them into place.
A round killed between those steps leaves a model file no run references, or a ``.tmp`` entry.
`sweep_orphans` removes exactly those, and only once they are older than a grace time, so a
round in flight (file written, transaction not yet committed) is never robbed of its file.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from workbench.config import workbench_home
from workbench.db.models import ModelRun
from workbench.domain import Actor, Role
from workbench.services._tx import reading
from workbench.services.users import require_role

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


class StorageService:
    def __init__(self, engine: Engine, home: Path | None = None) -> None:
        self.engine = engine
        self._home = home

    @property
    def home(self) -> Path:
        return self._home or workbench_home()

    def sweep_orphans(self, *, actor: Actor, grace: timedelta = SWEEP_GRACE, dry_run: bool = False) -> SweepReport:
        """Remove model files no model run references and `.tmp` leftovers, older than `grace`."""
        require_role(actor, Role.ADMIN)
        cutoff = time.time() - grace.total_seconds()
        artifacts, features = self.home / ARTIFACTS, self.home / FEATURES
        # List the files first, then read the references: a run registered in between keeps its file.
        candidates = [p for p in artifacts.glob("model-*") if p.suffix in MODEL_SUFFIXES] if artifacts.is_dir() else []
        with reading(self.engine) as session:
            referenced = {Path(path).name for path in session.execute(select(ModelRun.artifact_path)).scalars()}
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
        return SweepReport(models=tuple(sorted(models)), temporaries=tuple(sorted(temporaries)), bytes_freed=freed,
                           dry_run=dry_run)
