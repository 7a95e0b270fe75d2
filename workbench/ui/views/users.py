"""Users (admin): list accounts with their live sessions, add users, change roles, reset
passwords, disable (ends their sessions, gives their items back) and enable."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import streamlit as st

from workbench.domain import Role
from workbench.ui import session
from workbench.ui.members import members_section

ROLES = [role.value for role in Role]


_attempt = session.attempt


def main() -> None:
    actor = session.require(Role.ADMIN)
    wb = session.workbench()
    st.header("Users")
    session.show_flash()
    users = wb.users.list(actor=actor)
    live = Counter(s.user for s in wb.sessions.list(actor=actor))
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "name": u.name,
                    "role": u.role.value,
                    "active": u.active,
                    "signed in (sessions)": live.get(u.name, 0),
                    "created (UTC)": u.created_at.strftime("%Y-%m-%d %H:%M"),
                }
                for u in users
            ]
        ),
        hide_index=True,
        key="users_table",
    )

    add, change = st.columns(2)
    with add, st.form("user_add", clear_on_submit=True):
        st.subheader("Add a user")
        name = st.text_input("Name", key="user_add_name")
        role = st.selectbox("Role", ROLES, key="user_add_role")
        password = st.text_input(
            "Initial password (12 characters or more, not a common one)",
            type="password",
            key="user_add_password",
            autocomplete="new-password",
        )
        if st.form_submit_button("Add user", type="primary"):
            _attempt(lambda: wb.users.add(name, role, password, actor=actor), f"Added {name.strip()} ({role}).")

    names = [u.name for u in users]
    with change:
        st.subheader("Change an account")
        who = st.selectbox("Account", names, key="user_pick")
        current = next((u for u in users if u.name == who), None)
        if current is not None:
            state = "active" if current.active else "disabled"
            st.text(f"{current.name}: {current.role.value}, {state}, {live.get(current.name, 0)} live session(s)")
            with st.form("user_role"):
                new_role = st.selectbox(
                    "New role", ROLES, index=ROLES.index(current.role.value), key=f"user_new_role_{current.name}"
                )
                if st.form_submit_button("Set role"):
                    _attempt(
                        lambda: wb.users.set_role(current.name, new_role, actor=actor),
                        f"{current.name} is now {new_role}.",
                    )
            with st.form("user_password", clear_on_submit=True):
                new_password = st.text_input(
                    "New password", type="password", key="user_new_password", autocomplete="new-password"
                )
                if st.form_submit_button("Reset password"):
                    _attempt(
                        lambda: wb.users.reset_password(current.name, new_password, actor=actor),
                        f"Password of {current.name} reset; failed sign-ins cleared and their sessions ended.",
                    )
            if current.active:
                if current.name == actor.name:
                    st.caption("You cannot disable your own account here.")
                elif st.button("Disable", key="user_disable", icon=":material/block:"):
                    _attempt(
                        lambda: wb.users.disable(current.name, actor=actor),
                        f"{current.name} is disabled: signed out everywhere, their items are back in the "
                        "queue, and they can no longer sign in.",
                    )
            elif st.button("Enable", key="user_enable", icon=":material/check_circle:"):
                _attempt(lambda: wb.users.enable(current.name, actor=actor), f"{current.name} is active again.")
    members_section(wb, actor, users)


main()
