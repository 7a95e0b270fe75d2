"""The pages of the app, the role each needs, and where each role lands (the menu shows a role
only what it may use)."""

from __future__ import annotations

from workbench.domain import Role, role_allows

# (file relative to app.py, title, url path, role needed, icon)
PAGES: tuple[tuple[str, str, str, Role, str], ...] = (
    ("views/overview.py", "Overview", "overview", Role.REVIEWER, ":material/dashboard:"),
    ("views/label.py", "Label", "label", Role.ANNOTATOR, ":material/label:"),
    ("views/stats.py", "Statistics", "statistics", Role.ANNOTATOR, ":material/monitoring:"),
    ("views/review.py", "Review", "review", Role.REVIEWER, ":material/rule:"),
    ("views/rounds.py", "Rounds", "rounds", Role.REVIEWER, ":material/model_training:"),
    ("views/items.py", "Items", "items", Role.REVIEWER, ":material/search:"),
    ("views/health.py", "Health", "health", Role.REVIEWER, ":material/health_and_safety:"),
    ("views/data.py", "Data", "data", Role.ADMIN, ":material/database:"),
    ("views/settings.py", "Settings", "settings", Role.ADMIN, ":material/settings:"),
    ("views/users.py", "Users", "users", Role.ADMIN, ":material/group:"),
    ("views/account.py", "Account", "account", Role.ANNOTATOR, ":material/account_circle:"),
)

# Each role lands where its work is; nobody but an annotator who opens Label claims an item.
LANDING = {Role.ANNOTATOR: "label", Role.REVIEWER: "review", Role.ADMIN: "overview"}


def visible_pages(role: Role | None) -> list[str]:
    """The url paths shown in the menu for a role (None: not signed in, nothing shown)."""
    return [url for _, _, url, needed, _ in PAGES if role is not None and role_allows(role, needed)]


def landing(role: Role | None) -> str:
    """The url path a role opens on (the page served at /)."""
    return LANDING[Role(role)] if role is not None else LANDING[Role.ANNOTATOR]


def landing_page(role: Role) -> tuple[str, str]:
    """(file relative to app.py, title) of the role's landing page, for a link back."""
    url = landing(role)
    path, title = next((path, title) for path, title, page, _, _ in PAGES if page == url)
    return path, title
