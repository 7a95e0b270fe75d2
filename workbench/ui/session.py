"""Who is signed in: the cached service facade, the actor, role gates, sign-in and sign-out.

The only object cached across reruns is the `Workbench` facade. The actor lives in the
browser session's `st.session_state` and is re-read from the database on every rerun, so a
deactivated or demoted account loses access at its next click.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from workbench.config import database_url
from workbench.domain import Actor, ProjectInfo, Role, role_allows
from workbench.errors import NotFound, WorkbenchError
from workbench.services import Workbench
from workbench.ui.render import error, md

ACTOR = "wb_actor"
PROJECT = "wb_project"
FLASH = "wb_flash"


@st.cache_resource(show_spinner=False)
def _open(url: str) -> Workbench:
    return Workbench.open(url)


def workbench() -> Workbench:
    """The service facade for the configured database (one per process and URL)."""
    return _open(database_url())


# -- OIDC (only when [auth] is configured in secrets) -----------------------------------------
def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file, or an unreadable one: no OIDC
        return False


def _oidc_actor(wb: Workbench) -> Actor | None:
    """The workbench account of an OIDC-signed-in browser: the user named by the identity's email
    (an admin creates that account first; the password is then unused)."""
    if not oidc_configured():
        return None
    try:
        user = st.user
        if not user.is_logged_in:
            return None
        name = user.get("email") or user.get("preferred_username") or user.get("name")
    except Exception:  # noqa: BLE001
        return None
    if not name:
        return None
    try:
        info = wb.users.get(str(name))
    except NotFound:
        st.session_state[FLASH] = f"signed in as {name}, but there is no workbench account of that name"
        return None
    if not info.active:
        return None
    return Actor(id=info.id, name=info.name, role=info.role)


# -- the signed-in actor ----------------------------------------------------------------------
def current_actor(*, refresh: bool = True) -> Actor | None:
    """The signed-in actor, refreshed from the database (role changes and deactivation apply now).

    app.py refreshes once at the top of every rerun; pages then read it with refresh=False."""
    wb = workbench()
    actor: Actor | None = st.session_state.get(ACTOR)
    if not refresh:
        return actor
    if actor is None:
        actor = _oidc_actor(wb)
        if actor is None:
            return None
    try:
        info = wb.users.get(actor.name)
    except NotFound:
        info = None
    if info is None or info.id != actor.id or not info.active:
        _forget()
        st.session_state[FLASH] = "this account is no longer active; sign in again"
        return None
    if info.role != actor.role:
        actor = Actor(id=info.id, name=info.name, role=info.role)
    st.session_state[ACTOR] = actor
    return actor


def require(role: Role) -> Actor:
    """The signed-in actor if their role allows `role`; otherwise a refusal and the page stops.

    The services check roles again on every call; this keeps a page from rendering anything."""
    actor = current_actor(refresh=False)
    if actor is None:
        st.warning("Please sign in.")
        st.stop()
    if not role_allows(actor.role, role):
        error(f"This page needs the {role.value} role; {actor.name} is {actor.role.value}.")
        st.stop()
    return actor


def _forget() -> None:
    for key in list(st.session_state.keys()):
        if key != FLASH:
            del st.session_state[key]


def sign_out() -> None:
    _forget()
    if oidc_configured():
        try:
            if st.user.is_logged_in:
                st.logout()
        except Exception:  # noqa: BLE001
            pass


def show_flash() -> None:
    message = st.session_state.pop(FLASH, None)
    if message:
        st.info(md(message))


def sign_in_form() -> None:
    """The sign-in form (workbench accounts), plus single sign-on when it is configured."""
    st.title("Workbench")
    show_flash()
    with st.form("signin", clear_on_submit=True):
        name = st.text_input("User name", key="signin_name", autocomplete="username")
        password = st.text_input("Password", type="password", key="signin_password",
                                 autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            actor = workbench().users.authenticate(name, password)
        except WorkbenchError as exc:
            error(exc)
        else:
            st.session_state[ACTOR] = actor
            st.rerun()
    if oidc_configured():
        st.button("Sign in with single sign-on", on_click=st.login, key="signin_oidc")


def account_sidebar(actor: Actor) -> None:
    with st.sidebar:
        st.text(f"{actor.name} ({actor.role.value})")
        st.button("Sign out", on_click=sign_out, key="signout", icon=":material/logout:")


# -- project picker ---------------------------------------------------------------------------
def pick_project(*, page: str) -> ProjectInfo:
    """The project the user works on (shared across pages); stops the page when there is none."""
    projects = workbench().projects.list()
    if not projects:
        st.info("No projects yet. An admin creates one on the Data page.")
        st.stop()
    names = [p.name for p in projects]
    current = st.session_state.get(PROJECT)
    index = names.index(current) if current in names else 0
    name = st.sidebar.selectbox("Project", names, index=index, key=f"project_{page}")
    st.session_state[PROJECT] = name
    return projects[names.index(name)]


def flash(message: str) -> None:
    """A one-line message shown at the top of the next rendering of the page."""
    st.session_state[FLASH] = message


def pop(key: str, default: Any = None) -> Any:
    return st.session_state.pop(key, default)
