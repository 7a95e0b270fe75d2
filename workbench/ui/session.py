"""Who is signed in: the cached service facade, the actor, role gates, sign-in and sign-out, focus.

The only object cached across reruns is the `Workbench` facade. A browser proves who it is with
its `wb_session` cookie (HttpOnly, set by workbench/ui/server.py; read here with
`st.context.cookies`), checked against the sessions table at every rerun, so a sign-out, a password
change or a disabled account ends access at the next click in every tab. A tab that has just signed
in uses its session by id (kept in server memory) until a page load hands the browser its cookie.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from workbench.config import database_url
from workbench.domain import Actor, ProjectInfo, Role, role_allows
from workbench.errors import NotFound, WorkbenchError
from workbench.services import Workbench
from workbench.services.sessions import SessionEnded, SignedIn, ended_message
from workbench.ui.cookies import BIND_COOKIE, ENDED_CODES, ENDED_COOKIE, SESSION_COOKIE
from workbench.ui.nav import landing_page
from workbench.ui.render import error, md

ACTOR = "wb_actor"
SESSION = "wb_session_id"
SPENT = "wb_spent_cookie"  # a cookie token this tab signed out of: not to be read again
PROJECT = "wb_project"
FLASH = "wb_flash"
PAGE = "wb_page"  # the url path of the page rendered last (leaving Label releases its lease)
CHECKED = "wb_checked_by_callback"  # a widget callback of this run has checked the session already
# The Label page's claim state (workbench/ui/views/label.py): dropped when its lease is released.
LABEL_STATE = ("label_state", "label_ask_skip")


@st.cache_resource(show_spinner=False)
def _open(url: str) -> Workbench:
    return Workbench.open(url)


def workbench() -> Workbench:
    """The service facade for the configured database (one per process and URL)."""
    return _open(database_url())


def _cookie(name: str) -> str | None:
    try:
        value = st.context.cookies.get(name)
    except Exception:  # no browser context (e.g. a bare script run)
        return None
    return value if isinstance(value, str) and value else None  # AppTest hands out mocks


# -- OIDC (only when [auth] is configured in secrets) -----------------------------------------
def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file, or an unreadable one: no OIDC
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
    except Exception:
        return None
    if not name:
        return None
    try:
        # Nobody is signed in yet: the identity provider vouched for this name, and the app looks
        # the account up on its own authority (as the local operator), exactly as sign-in does.
        info = wb.users.get(str(name), actor=Actor.operator())
    except NotFound:
        st.session_state[FLASH] = f"signed in as {name}, but there is no workbench account of that name"
        return None
    if not info.active:
        return None
    return Actor(id=info.id, name=info.name, role=info.role)


# -- the signed-in actor ----------------------------------------------------------------------
def current_actor(*, refresh: bool = True) -> Actor | None:
    """The signed-in actor, checked against its session (role changes and revocation apply now).

    app.py refreshes once at the top of every rerun; pages then read it with refresh=False."""
    if not refresh or st.session_state.pop(CHECKED, False):
        return st.session_state.get(ACTOR)
    wb = workbench()
    session_id = st.session_state.get(SESSION)
    signed: SignedIn | None
    try:
        if session_id is not None:
            signed = wb.sessions.current(session_id, actor=st.session_state[ACTOR])
        else:
            token = _cookie(SESSION_COOKIE)
            signed = wb.sessions.resolve(token) if token and token != st.session_state.get(SPENT) else None
    except SessionEnded as exc:
        spent = _cookie(SESSION_COOKIE)
        _forget()
        st.session_state[SPENT] = spent
        flash(str(exc))
        return None
    if signed is None:
        ended = _cookie(ENDED_COOKIE)  # the page load that dropped a dead cookie said why
        if ended and not st.session_state.get("wb_ended_told"):
            st.session_state["wb_ended_told"] = True
            reason = next((code for code, short in ENDED_CODES.items() if short == ended), "")
            flash(ended_message(reason))
        actor = _oidc_actor(wb)
        if actor is not None:
            st.session_state[ACTOR] = actor
        return actor
    st.session_state[SESSION] = signed.session_id
    st.session_state[ACTOR] = signed.actor
    return signed.actor


def checked_actor() -> Actor:
    """The actor, with the session checked now, for a widget callback that writes: callbacks run
    before app.py's check, so a session revoked a moment ago must not store one more answer. The
    run's own check then reuses this one (one session read per press)."""
    actor = current_actor()
    if actor is None:
        raise WorkbenchError("your session has ended; sign in again")
    st.session_state[CHECKED] = True
    return actor


def signed_in_actor() -> Actor:
    """The actor this run read (no session check of its own), for a call whose refusal the page
    shows: WorkbenchError when no one is signed in (as the service itself would refuse None)."""
    actor = current_actor(refresh=False)
    if actor is None:
        raise WorkbenchError("your session has ended; sign in again")
    return actor


def session_id() -> int | None:
    return st.session_state.get(SESSION)


def require(role: Role) -> Actor:
    """The signed-in actor if their role allows `role`; otherwise a refusal and the page stops.

    The services check roles again on every call; this keeps a page from rendering anything. The
    refusal keeps the menu and links back to where this user's work is."""
    actor = current_actor(refresh=False)
    if actor is None:
        st.warning("Please sign in.")
        st.stop()
    if not role_allows(actor.role, role):
        error(f"This page needs the {role.value} role; {actor.name} is {actor.role.value}.")
        path, title = landing_page(actor.role)
        st.page_link(path, label=f"Back to {title}", icon=":material/arrow_back:")
        st.stop()
    return actor


def _forget() -> None:
    for key in list(st.session_state.keys()):
        if key != FLASH:
            del st.session_state[key]


def release_leases(actor: Actor, why: str) -> None:
    """Give back the items this user holds (they left the Label page, or sign out)."""
    try:
        workbench().queue.release_leases(actor=actor, why=why)
    except WorkbenchError:
        pass  # a lease that cannot be released now still lapses after its time
    for key in LABEL_STATE:
        st.session_state.pop(key, None)


def left_page(actor: Actor, page: str) -> None:
    """Called by app.py with the page about to render: leaving Label releases the held lease."""
    if st.session_state.get(PAGE) == "label" and page != "label":
        release_leases(actor, "left the Label page")
    st.session_state[PAGE] = page


def sign_out() -> None:
    wb = workbench()
    actor: Actor | None = st.session_state.get(ACTOR)
    sid = st.session_state.get(SESSION)
    if actor is not None:
        release_leases(actor, "signed out")
        if sid is not None:
            try:
                wb.sessions.sign_out(sid, actor=actor)
            except WorkbenchError:
                pass
    spent = _cookie(SESSION_COOKIE)
    _forget()
    st.session_state[SPENT] = spent
    flash("You are signed out.")
    if oidc_configured():
        try:
            if st.user.is_logged_in:
                st.logout()
        except Exception:
            pass


def show_flash() -> None:
    """The flash message, in a container that is always there: what follows keeps its place in the
    page (its delta path) whether a message shows or not. A shifted page makes the browser draw a
    second copy of everything below it for the rest of the rerun, and the copy that had the focus
    (a reason being typed) is then removed: the focus and the letters typed into it are lost."""
    slot = st.container()
    message = st.session_state.pop(FLASH, None)
    if message:
        slot.info(md(message))


def sign_in_form() -> None:
    """The sign-in form (workbench accounts), plus single sign-on when it is configured."""
    st.title("Workbench")
    show_flash()
    with st.form("signin", clear_on_submit=True):
        name = st.text_input("User name", key="signin_name", autocomplete="username")
        password = st.text_input("Password", type="password", key="signin_password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            signed = workbench().sessions.sign_in(name, password, bind=_cookie(BIND_COOKIE))
        except WorkbenchError as exc:
            error(exc)
        else:
            st.session_state.pop(SPENT, None)
            st.session_state[SESSION] = signed.session_id
            st.session_state[ACTOR] = signed.actor
            st.rerun()
    if oidc_configured():
        st.button("Sign in with single sign-on", on_click=st.login, key="signin_oidc")
    focus_keeper(signin=True)


def account_sidebar(actor: Actor) -> None:
    with st.sidebar:
        st.text(f"{actor.name} ({actor.role.value})")
        st.button("Sign out", on_click=sign_out, key="signout", icon=":material/logout:")
        focus_keeper(signin=False)


# -- focus ------------------------------------------------------------------------------------
_FOCUS_JS = r"""
export default function(component) {
  const { data, setTriggerValue } = component;
  const w = window;
  const inForm = (el) => el && el.closest && el.closest('[data-testid="stForm"]');
  const keysReady = () => !!(w.__wbKeys && w.__wbKeys.send);
  const blurSoon = (test) => setTimeout(() => {
    const a = document.activeElement;
    if (a && a !== document.body && test(a) && a.blur) a.blur();
  }, 0);
  const startCatching = () => { w.__wbFocus.catchUntil = Date.now() + 5000; w.__wbFocus.early = []; };
  const flush = () => {
    const f = w.__wbFocus;
    if (f.early.length && f.send && (keysReady() || Date.now() > f.catchUntil)) {
      const keys = f.early.splice(0);
      f.send("early", { keys: keys });
    }
  };
  if (!w.__wbFocus) {
    w.__wbFocus = { signin: false, catchUntil: 0, early: [], send: null };
    // Sign-in: once the form is sent, the password box lets go of the focus at once, so keys
    // pressed while the first page is being drawn reach the page, not a box about to vanish.
    document.addEventListener("keydown", (e) => {
      const f = w.__wbFocus;
      if (f.signin && e.key === "Enter" && inForm(e.target)) { blurSoon(inForm); startCatching(); return; }
      // Until the page's own key listener is up, a key is kept (never silently lost) and the page
      // is told about it, so it can say that nothing was stored for an item not yet on screen.
      if (Date.now() > f.catchUntil || keysReady()) return;
      if (e.repeat || e.ctrlKey || e.altKey || e.metaKey || e.isComposing || e.key.length !== 1) return;
      const t = e.target;
      const tag = t && t.tagName ? t.tagName.toLowerCase() : "";
      if ((tag === "input" || tag === "textarea") && !inForm(t)) return;
      e.preventDefault();
      e.stopPropagation();
      f.early.push(e.key.toLowerCase());
    }, true);
    document.addEventListener("click", (e) => {
      const t = e.target;
      if (w.__wbFocus.signin && t && t.closest && t.closest('[data-testid="stFormSubmitButton"]')) {
        blurSoon(inForm);
        startCatching();
      }
    }, true);
    setInterval(flush, 100);
  }
  w.__wbFocus.signin = !!(data && data.signin);
  if (w.__wbFocus.signin) return;
  w.__wbFocus.send = setTriggerValue;
  // Any other rerun: a select box, radio, checkbox or button that was just used gives the focus
  // back to the page, so label keys work without a click. Text boxes keep it (people type there).
  const settle = () => {
    const a = document.activeElement;
    if (!a || a === document.body || !a.tagName) return;
    const tag = a.tagName.toLowerCase();
    const type = (a.getAttribute("type") || "").toLowerCase();
    const control = a.getAttribute("role") === "combobox" || tag === "button" ||
      (tag === "input" && (type === "radio" || type === "checkbox"));
    if (control && a.blur) a.blur();
  };
  requestAnimationFrame(settle);
  setTimeout(settle, 60);
  return () => { if (w.__wbFocus.send === setTriggerValue) w.__wbFocus.send = null; };
}
"""

_focus_component: Any = None


def focus_keeper(*, signin: bool) -> None:
    """Mount the focus helper (no visible output): see _FOCUS_JS."""
    global _focus_component
    if _focus_component is None:
        # A component that renders nothing and takes no data text: only booleans and a counter.
        from streamlit.components.v2 import component

        _focus_component = component("workbench_focus", js=_FOCUS_JS)
    st.session_state["wb_focus_n"] = st.session_state.get("wb_focus_n", 0) + 1  # new data: the JS runs again
    key = "wb_focus_signin" if signin else "wb_focus"

    def early() -> None:
        state = st.session_state.get(key)
        raw = state.get("early") if state is not None and hasattr(state, "get") else None
        keys = [str(k)[:1] for k in (raw or {}).get("keys", [])][:10] if isinstance(raw, dict) else []
        if keys:
            shown = ", ".join(dict.fromkeys(keys))
            flash(f"Key {shown} came before the page was ready, so nothing was stored. Press it again now.")

    _focus_component(
        key=key, data={"signin": signin, "n": st.session_state["wb_focus_n"]}, on_early_change=early, height=0
    )


# -- project picker ---------------------------------------------------------------------------
def pick_project(*, page: str) -> ProjectInfo:
    """The project the user works on (shared across pages); stops the page when there is none."""
    projects = workbench().projects.list(actor=require(Role.ANNOTATOR))
    if not projects:
        if role_allows(require(Role.ANNOTATOR).role, Role.ADMIN):
            st.info("No projects yet. Create one on the Data page.")
        else:
            st.info(
                "No projects yet for you: you are not a member of any open project. "
                "Ask an admin to add you (Users → Project members)."
            )
        st.stop()
    names = [p.name for p in projects]
    current = st.session_state.get(PROJECT)
    index = names.index(current) if current in names else 0
    name = st.sidebar.selectbox("Project", names, index=index, key=f"project_{page}")
    st.session_state[PROJECT] = name
    return projects[names.index(name)]


def attempt(action: Callable[[], Any], done: str) -> None:
    """Run a service call; on success note `done` for the next rendering, else show why not."""
    try:
        action()
    except WorkbenchError as exc:
        error(exc)
    else:
        flash(done)
        st.rerun()


def flash(message: str) -> None:
    """A one-line message shown at the top of the next rendering of the page."""
    st.session_state[FLASH] = message


def pop(key: str, default: Any = None) -> Any:
    return st.session_state.pop(key, default)
