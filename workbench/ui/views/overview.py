"""Overview (admins; reviewers see the projects they review): every project's progress, then the
chosen project's sections: progress, agreement, the latest round, the items waiting for review, its
alert rules with their recent deliveries, and the annotators' statistics. Nothing here claims an item."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from workbench.domain import Role, role_allows
from workbench.errors import WorkbenchError
from workbench.ui import render, sections, session, stats

if TYPE_CHECKING:
    from workbench.domain.alerts import DeliveryInfo


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


def _alerts(wb, project, actor) -> None:
    """The project's alert rules (firing or not) and the latest deliveries with each attempt's result."""
    st.subheader("Alerts")
    rules = wb.alerts.rules(project.name, actor=actor)
    if not rules:
        st.caption("No alert rules yet. Add one on the command line (the variable holds the webhook URL):")
        st.code(f"workbench alert add {project.name} review_age --threshold 24 --webhook-env TEAM_WEBHOOK_URL")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "rule": r.id,
                        "watches": r.kind.describe,
                        "threshold": f"{r.threshold:g}",
                        "channels": r.channels,
                        "now": ("firing " + ", ".join(s for s in r.active)).strip() if r.active else "ok",
                    }
                    for r in rules
                ]
            ),
            hide_index=True,
            key="alert_rules",
        )
    deliveries = wb.alerts.deliveries(project.name, actor=actor, limit=20)
    if not deliveries:
        st.caption("No alert has been sent yet.")
        return
    failing = sum(d.state.value != "sent" for d in deliveries)
    st.caption(f"Latest {len(deliveries)} deliveries; {failing} not delivered (yet).")
    st.dataframe(
        pd.DataFrame([_delivery_row(d, project.name) for d in deliveries]),
        hide_index=True,
        key="alert_deliveries",
    )


def _delivery_row(d: DeliveryInfo, project_name: str) -> dict:
    tries = f"{d.attempts} attempt{'s' if d.attempts != 1 else ''}"
    if d.state.value == "pending" and d.next_attempt_at is not None:
        state = f"retry {d.next_attempt_at:%H:%M:%S} ({tries})" if d.attempts else "queued"
    else:
        state = f"{d.state.value} ({tries})"
    return {
        "created (UTC)": f"{d.created_at:%m-%d %H:%M:%S}",
        "alert": d.subject.removeprefix(f"[workbench] {project_name}: "),
        "channel": f"{d.channel.value} {d.target}",
        "state": state,
        "last result": d.last_result,
    }


def main() -> None:
    actor = session.require(Role.REVIEWER)
    wb = session.workbench()
    st.header("Overview")
    session.show_flash()
    projects = wb.projects.list(actor=actor)
    if not projects:
        if role_allows(actor.role, Role.ADMIN):
            st.info("No projects yet. Create one on the Data page.")
            st.page_link("views/data.py", label="Open Data", icon=":material/database:")
        else:
            st.info("You are not a member of any project yet. Ask an admin to add you.")
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
    stats.everyone(wb, project, actor)
    if role_allows(actor.role, Role.ADMIN):  # alert rules and their channels are for admins
        _alerts(wb, project, actor)


main()
