"""Where the workbench keeps its data: WORKBENCH_HOME and WORKBENCH_DATABASE_URL."""

from __future__ import annotations

import os
from pathlib import Path


def workbench_home() -> Path:
    """The data folder: $WORKBENCH_HOME, default ./.workbench (created on demand)."""
    home = Path(os.environ.get("WORKBENCH_HOME", ".workbench")).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def database_url(explicit: str | None = None) -> str:
    """The database: an explicit URL, else $WORKBENCH_DATABASE_URL, else SQLite under the home."""
    url = explicit or os.environ.get("WORKBENCH_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{workbench_home() / 'workbench.db'}"
