"""Statistics: an annotator's own figures (My statistics); reviewers and admins see every annotator
of the projects they work on. The service refuses anything else."""

from __future__ import annotations

import streamlit as st

from workbench.domain import Role, role_allows
from workbench.ui import session, stats


def main() -> None:
    actor = session.require(Role.ANNOTATOR)
    wb = session.workbench()
    reviewer = role_allows(actor.role, Role.REVIEWER)
    st.header("Annotator statistics" if reviewer else "My statistics")
    project = session.pick_project(page="statistics")
    if reviewer:
        stats.everyone(wb, project, actor)
    else:
        stats.mine(wb, project, actor)


main()
