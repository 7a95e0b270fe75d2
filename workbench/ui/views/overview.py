"""Overview (admin): every project's progress, then the chosen project's sections: progress,
agreement, the latest round and the items waiting for review. Nothing here claims an item."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench.domain import Role
from workbench.errors import WorkbenchError
from workbench.ui import render, sections, session


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "—"


def _all_projects(wb, actor) -> None:
    lines = wb.overview.projects(actor=actor)
    st.subheader("Projects")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "project": line.project,
                    "pool done": f"{line.pool_done} / {line.pool_total}",
                    "pool %": _pct(line.pool_done, line.pool_total),
                    "eval done": f"{line.eval_done} / {line.eval_total}",
                    "in review": line.in_review,
                }
                for line in lines
            ]
        ),
        hide_index=True,
        key="overview_projects",
    )


def _progress(overview) -> None:
    st.subheader("Progress")
    p = overview.progress
    a, b, c = st.columns(3)
    a.metric(
        "Pool items done",
        f"{p.done('pool')} / {p.total('pool')}",
        help="labelling complete: agreed, adjudicated, waiting for review, ambiguous or excluded",
    )
    b.metric("Eval items done", f"{p.done('eval')} / {p.total('eval')}")
    c.metric("Waiting for review", overview.review.waiting)
    st.caption(render.md(" · ".join(render.progress_line(p, split) for split in ("pool", "eval"))))


def _agreement(overview) -> None:
    st.subheader("Agreement")
    g = overview.agreement
    a, b, c = st.columns(3)
    a.metric("Items labeled twice or more", g.n_paired_items)
    b.metric("Percent agreement", "—" if g.percent_agreement is None else f"{g.percent_agreement:.1%}")
    c.metric("Krippendorff's alpha", "—" if g.krippendorff_alpha is None else f"{g.krippendorff_alpha:.3f}")
    st.caption(f"{g.n_annotators} annotator(s). Per-pair kappa and the confusion are on Review → Agreement.")


def _latest_round(overview) -> None:
    st.subheader("Latest round")
    r = overview.latest_round
    if r is None:
        st.info("No round yet. Start one on the Rounds page.")
        return
    a, b, c = st.columns(3)
    a.metric("State", r.job_state.value)
    b.metric("Dataset version", "—" if r.version_number is None else r.version_number)
    accuracy = "—" if r.accuracy is None else f"{r.accuracy:.1%}"
    interval = f"95% interval {r.accuracy_ci95[0]:.1%}–{r.accuracy_ci95[1]:.1%}" if r.accuracy_ci95 else None
    c.metric("Eval accuracy", accuracy, help=interval)
    when = r.finished_at or r.started_at
    details = [
        f"trained on {r.n_train} labels" if r.n_train is not None else "",
        f"finished {when:%Y-%m-%d %H:%M} UTC" if when else "",
        r.job_message,
    ]
    st.caption(render.md(" · ".join(d for d in details if d)))
    if r.job_error:
        render.error(f"The last round failed: {r.job_error}")


def _review(overview) -> None:
    st.subheader("Items in review")
    if not overview.review.waiting:
        st.success("No disagreements waiting.")
        return
    st.text(f"{overview.review.waiting} item(s) wait for a reviewer. Oldest: " + ", ".join(overview.review.oldest))
    st.page_link("views/review.py", label="Open Review", icon=":material/rule:")


def main() -> None:
    actor = session.require(Role.ADMIN)
    wb = session.workbench()
    st.header("Overview")
    session.show_flash()
    projects = wb.projects.list(actor=actor)
    if not projects:
        st.info("No projects yet. Create one on the Data page.")
        st.page_link("views/data.py", label="Open Data", icon=":material/database:")
        return
    _all_projects(wb, actor)
    project = session.pick_project(page="overview")
    st.divider()
    st.subheader(render.md(project.name))
    try:
        overview = wb.overview.project(project.name, actor=actor)
    except WorkbenchError as exc:
        render.error(exc)
        return
    _progress(overview)
    _agreement(overview)
    _latest_round(overview)
    _review(overview)
    sections.skip_reasons(wb, project, actor, latest=False)
    st.subheader("Guidelines")
    sections.guidelines_usage(wb, project, actor)


main()
