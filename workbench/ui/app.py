"""The Workbench browser app: sign in, then the pages the signed-in role may use.

Served by workbench/ui/server.py (`workbench serve`), which sets the session cookie. Every page is
registered so a typed URL keeps working through sign-in, but pages a role may not use are hidden
from the menu, and each page refuses to render for a role below its own. Each role lands where its
work is (annotators on Label, reviewers on Review, admins on the overview); leaving Label gives
back the item it held.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from workbench.errors import WorkbenchError
from workbench.ui import render, session
from workbench.ui.nav import PAGES, landing, visible_pages

HERE = Path(__file__).resolve().parent


def main() -> None:
    st.set_page_config(page_title="Workbench", page_icon=":material/label:", layout="wide")
    actor = session.current_actor()
    role = actor.role if actor else None
    shown = set(visible_pages(role))
    home = landing(role)
    pages = [
        st.Page(
            HERE / path,
            title=title,
            url_path=url,
            icon=icon,
            default=actor is not None and url == home,
            visibility="visible" if url in shown else "hidden",
        )
        for path, title, url, _, icon in PAGES
    ]
    if actor is None:
        # Signed out, "/" is the sign-in page itself: after signing in it is gone, so the rerun opens
        # the role's landing page. A typed URL (/review) stays on its page through the sign-in.
        pages.insert(0, st.Page(session.sign_in_form, title="Sign in", url_path="signin", default=True))
    nav = st.navigation(pages, position="sidebar" if actor else "hidden")
    if actor is None:
        session.sign_in_form()
        st.stop()
    session.left_page(actor, nav.url_path or home)
    session.account_sidebar(actor)
    nav.run()


def guarded() -> None:
    """The app, with every error shown as one sentence: a refusal (a full disk, a read-only
    database, ...) as its own message; anything else as a plain apology, with the traceback only
    in the server's log. No page shows a traceback or a server path."""
    try:
        main()
    except WorkbenchError as exc:
        render.error(exc)
    except Exception:  # st.stop/st.rerun are BaseException and pass through
        logging.getLogger("workbench.ui").exception("page failed")
        render.error("Something went wrong on this page; it has been logged. Reload to try again.")


# Anything that escapes even this (an error in a widget callback) shows no details either.
st.set_option("client.showErrorDetails", "none")
guarded()
