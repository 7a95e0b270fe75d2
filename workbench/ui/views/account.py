"""Account (everyone): who is signed in, until when, and changing one's own password."""

from __future__ import annotations

import streamlit as st

from workbench.domain import Role
from workbench.errors import WorkbenchError
from workbench.ui import render, session


def main() -> None:
    actor = session.require(Role.ANNOTATOR)
    wb = session.workbench()
    st.header("Account")
    session.show_flash()
    st.text(f"Signed in as {actor.name} ({actor.role.value}).")
    with st.form("account_password", clear_on_submit=True):
        st.subheader("Change your password")
        current = st.text_input(
            "Current password", type="password", key="account_current", autocomplete="current-password"
        )
        new = st.text_input(
            "New password (12 characters or more, not a common one)",
            type="password",
            key="account_new",
            autocomplete="new-password",
        )
        again = st.text_input("New password again", type="password", key="account_again", autocomplete="new-password")
        if st.form_submit_button("Change password", type="primary"):
            if new != again:
                render.error("the two new passwords differ")
            else:
                try:
                    wb.users.change_password(current, new, actor=actor, keep_session=session.session_id())
                except WorkbenchError as exc:
                    render.error(exc)
                else:
                    session.flash("Password changed. Your other sessions (other browsers) are signed out.")
                    st.rerun()


main()
