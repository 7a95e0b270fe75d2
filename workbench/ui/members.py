"""The Users page's members section (admins): who works on which project, as annotator or reviewer."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench.domain import Actor, Role, UserInfo
from workbench.services import Workbench
from workbench.ui import session

AS_USER_ROLE = "as their user role"


def members_section(wb: Workbench, actor: Actor, users: list[UserInfo]) -> None:
    """Members of one project: a table, an add form and a remove button. Admins are never members."""
    st.divider()
    st.subheader("Project members")
    projects = [p.name for p in wb.projects.list(actor=actor)]
    if not projects:
        st.caption("No projects yet.")
        return
    st.caption(
        "Annotators see, claim from and read only the projects they are members of; reviewers review, "
        "browse and export only theirs. Admins see every project."
    )
    project = st.selectbox("Project", projects, key="members_project")
    members = wb.members.list(project, actor=actor)
    if members:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "user": m.user,
                        "on this project": m.role.value,
                        "user role": m.user_role.value,
                        "added (UTC)": f"{m.added_at:%Y-%m-%d %H:%M}",
                    }
                    for m in members
                ]
            ),
            hide_index=True,
            key="members_table",
        )
    else:
        st.info(f"{project} has no members yet: no annotator or reviewer sees it.")
    candidates = [u.name for u in users if u.role is not Role.ADMIN and u.active]
    add, remove = st.columns(2)
    with add, st.form("member_add"):
        who = st.selectbox("User", candidates, key="member_add_user")
        role = st.selectbox("Role on this project", [AS_USER_ROLE, "annotator", "reviewer"], key="member_add_role")
        if st.form_submit_button("Add member", type="primary") and who:
            chosen = None if role == AS_USER_ROLE else role
            session.attempt(
                lambda: wb.members.add(project, who, role=chosen, actor=actor), f"{who} works on {project} now."
            )
    with remove:
        if members:
            gone = st.selectbox("Member", [m.user for m in members], key="member_remove_user")
            if st.button("Remove member", key="member_remove", icon=":material/person_remove:"):
                session.attempt(
                    lambda: wb.members.remove(project, gone, actor=actor),
                    f"{gone} no longer works on {project}; their claims there were given back.",
                )
