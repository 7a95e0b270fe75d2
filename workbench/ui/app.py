"""The Workbench browser app: sign in, then the pages the signed-in role may use.

Run with `streamlit run workbench/ui/app.py` (or `workbench serve`). Every page is registered
so a typed URL keeps working through sign-in, but pages a role may not use are hidden from the
menu, and each page refuses to render for a role below its own.
"""

from __future__ import annotations

from pathlib import Path

import logging

import streamlit as st

from workbench.errors import WorkbenchError
from workbench.ui import render, session
from workbench.ui.nav import PAGES, visible_pages

HERE = Path(__file__).resolve().parent


def main() -> None:
    st.set_page_config(page_title="Workbench", page_icon=":material/label:", layout="wide")
    actor = session.current_actor()
    shown = set(visible_pages(actor.role if actor else None))
    pages = [
        st.Page(HERE / path, title=title, url_path=url, icon=icon, default=(i == 0),
                visibility="visible" if url in shown else "hidden")
        for i, (path, title, url, _, icon) in enumerate(PAGES)
    ]
    nav = st.navigation(pages, position="sidebar" if actor else "hidden")
    if actor is None:
        session.sign_in_form()
        st.stop()
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
    except Exception:  # noqa: BLE001 - st.stop/st.rerun are BaseException and pass through
        logging.getLogger("workbench.ui").exception("page failed")
        render.error("Something went wrong on this page; it has been logged. Reload to try again.")


# Anything that escapes even this (an error in a widget callback) shows no details either.
st.set_option("client.showErrorDetails", "none")
guarded()
