"""Errors the services raise; the CLI and the UI show their message to the user as one line."""

from __future__ import annotations

import errno


class WorkbenchError(Exception):
    """A refused action or bad input: the message says why, and nothing was written."""


class NotFound(WorkbenchError):
    """A named project, item, user, version or run does not exist."""


class PermissionDenied(WorkbenchError):
    """The actor's role does not allow the action."""


class Conflict(WorkbenchError):
    """The action collides with the current state (already complete, lease expired, ...)."""


class StorageError(WorkbenchError):
    """The database or the disk refused the work (full, read-only, unreachable): nothing was
    stored. The message names the cause in one line; `cause` is a short key for tests and logs."""

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


# -- naming storage faults ---------------------------------------------------------------------
# SQLite result texts (sqlite3 puts them in the exception message) and PostgreSQL SQLSTATEs.
_SQLITE_CAUSES = (
    ("database or disk is full", "full"),
    ("attempt to write a readonly database", "read-only"),
    ("readonly database", "read-only"),
    ("unable to open database file", "cannot-open"),
    ("disk i/o error", "io"),
    ("database disk image is malformed", "corrupt"),
    ("file is not a database", "corrupt"),
)
_PG_CAUSES = {
    "25006": "read-only",  # read_only_sql_transaction
    "53100": "full",  # disk_full
    "53200": "full",  # out_of_memory
    "58030": "io",  # io_error
    "57P03": "cannot-open",  # cannot_connect_now (starting up / shutting down)
    "08006": "cannot-open",
    "08001": "cannot-open",
    "08004": "cannot-open",
}
_OS_CAUSES = {
    errno.ENOSPC: "full",
    errno.EDQUOT: "full",
    errno.EROFS: "read-only",
    errno.EACCES: "read-only",
    errno.EPERM: "read-only",
    errno.EIO: "io",
}
_SENTENCES = {
    "full": "the disk or the database is full",
    "read-only": "the database is read-only",
    "cannot-open": "the database cannot be opened",
    "io": "the disk reported an I/O error",
    "corrupt": "the database file is damaged or is not a workbench database",
}


def storage_fault(exc: BaseException, doing: str = "") -> StorageError | None:
    """A one-line StorageError naming why the database or disk refused, or None when `exc` is
    not a storage fault (a bug, a constraint race, ...). `doing` says what was refused."""
    if isinstance(exc, StorageError):
        return exc
    cause, detail = None, ""
    if isinstance(exc, OSError) and exc.errno in _OS_CAUSES:
        cause = _OS_CAUSES[exc.errno]
        detail = exc.strerror or ""
    else:
        orig = getattr(exc, "orig", None)  # sqlalchemy.exc.DBAPIError wraps the driver's error
        if orig is None and type(exc).__module__.startswith(("sqlite3", "psycopg")):
            orig = exc
        if orig is not None:
            sqlstate = getattr(orig, "sqlstate", None)
            if sqlstate in _PG_CAUSES:
                cause = _PG_CAUSES[sqlstate]
            elif sqlstate is None:
                text = str(orig).lower()
                cause = next((c for needle, c in _SQLITE_CAUSES if needle in text), None)
                if cause is None and type(orig).__name__ == "OperationalError" and "connect" in text:
                    cause = "cannot-open"
            detail = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    if cause is None:
        return None
    sentence = _SENTENCES[cause]
    what = f"{doing} refused: " if doing else ""
    hint = {
        "full": "free some space and try again",
        "read-only": "check the file and folder permissions (or the server's read-only setting)",
        "cannot-open": "check the database URL and that the folder exists and is writable",
        "io": "check the disk",
        "corrupt": "restore it from a backup",
    }[cause]
    message = (
        f"{what}{sentence} ({detail}); nothing was stored: {hint}"
        if detail
        else f"{what}{sentence}; nothing was stored: {hint}"
    )
    return StorageError(" ".join(message.split()), cause)
