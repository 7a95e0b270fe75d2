"""Password policy (pure): a minimum length, a higher one for admins when set, and no password
from the common-password list shipped with the package.

The list is Django's `common-passwords.txt.gz` (19,640 lowercased passwords compiled by Royce
Williams, BSD-3-Clause; see workbench/data/NOTICE-common-passwords.txt), compared case-insensitively.
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

from workbench.errors import WorkbenchError

MIN_LENGTH = 12
MIN_DISTINCT = 5
ADMIN_MIN_LENGTH_ENV = "WORKBENCH_ADMIN_PASSWORD_MIN_LENGTH"
COMMON_PASSWORDS = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt.gz"


class WeakPassword(WorkbenchError):
    """A password the policy refuses (the message says which rule)."""


@functools.cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as f:
        return frozenset(line.strip() for line in f if line.strip())


def admin_min_length() -> int:
    """$WORKBENCH_ADMIN_PASSWORD_MIN_LENGTH (never below the general minimum of 12)."""
    raw = os.environ.get(ADMIN_MIN_LENGTH_ENV, "").strip()
    if not raw:
        return MIN_LENGTH
    try:
        value = int(raw)
    except ValueError:
        raise WorkbenchError(f"{ADMIN_MIN_LENGTH_ENV} must be a whole number, not {raw!r}") from None
    return max(MIN_LENGTH, value)


def check_password(password: str, *, user_name: str = "", admin: bool = False) -> None:
    """Refuse a weak password with a one-line reason (WeakPassword); return None when it is fine."""
    needed = admin_min_length() if admin else MIN_LENGTH
    if len(password) < needed:
        who = "an admin password" if admin and needed > MIN_LENGTH else "a password"
        raise WeakPassword(f"{who} must have at least {needed} characters")
    folded = password.strip().lower()
    if folded in common_passwords():
        raise WeakPassword("this password is on the list of common passwords; choose another")
    if user_name and user_name.strip().lower() in folded and len(user_name.strip()) * 2 > len(folded):
        raise WeakPassword("a password must not be mostly the user name")
    if len(set(password)) < MIN_DISTINCT:
        raise WeakPassword(f"a password needs at least {MIN_DISTINCT} different characters")
