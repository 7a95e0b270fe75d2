"""The base of the services that keep files under the Workbench home (models, features, exports)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from workbench.config import workbench_home

if TYPE_CHECKING:
    from sqlalchemy import Engine


class HomeBound:
    """A service on one database whose files live under a home: the one given, else
    `$WORKBENCH_HOME` read when it is needed (a test or a CLI call may set it after import)."""

    def __init__(self, engine: Engine, home: Path | None = None) -> None:
        self.engine = engine
        self._home = home

    @property
    def home(self) -> Path:
        return self._home or workbench_home()
