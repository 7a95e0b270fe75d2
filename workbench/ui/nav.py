"""The pages of the app and the role each needs (the menu shows a role only what it may use)."""

from __future__ import annotations

from workbench.domain import Role, role_allows

# (file relative to app.py, title, url path, role needed, icon)
PAGES: tuple[tuple[str, str, str, Role, str], ...] = (
    ("views/label.py", "Label", "label", Role.ANNOTATOR, ":material/label:"),
    ("views/review.py", "Review", "review", Role.REVIEWER, ":material/rule:"),
    ("views/rounds.py", "Rounds", "rounds", Role.REVIEWER, ":material/model_training:"),
    ("views/health.py", "Health", "health", Role.REVIEWER, ":material/health_and_safety:"),
    ("views/data.py", "Data", "data", Role.ADMIN, ":material/database:"),
    ("views/users.py", "Users", "users", Role.ADMIN, ":material/group:"),
)


def visible_pages(role: Role | None) -> list[str]:
    """The url paths shown in the menu for a role (None: not signed in, nothing shown)."""
    return [url for _, _, url, needed, _ in PAGES if role is not None and role_allows(role, needed)]
