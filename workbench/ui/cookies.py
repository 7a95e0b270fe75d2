"""Names of the app's cookies (set by workbench/ui/server.py, read by workbench/ui/session.py)."""

from __future__ import annotations

SESSION_COOKIE = "wb_session"
BIND_COOKIE = "wb_bind"
BIND_MAX_AGE_S = 400 * 24 * 3600  # the longest lifetime browsers keep a cookie
ENDED_COOKIE = "wb_ended"  # why the last session of this browser ended (a short code, never a secret)
ENDED_CODES = {
    "signed out": "signed-out",
    "password changed": "password",
    "account disabled": "disabled",
    "idle": "idle",
    "expired": "expired",
}
