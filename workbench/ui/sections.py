"""Page sections shared by Label, Review and the admin overview: guidelines (shown and edited),
skip reasons, and which labels predate the current guidelines; and by Rounds and Health: model
quality per group of the sensitive columns."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from workbench.domain import Actor, GuidelinesInfo, ProjectInfo
from workbench.errors import WorkbenchError
from workbench.services import Workbench
from workbench.ui import render, session

if TYPE_CHECKING:
    from workbench.health.subgroups import SubgroupReport


def guidelines_expander(guide: GuidelinesInfo | None, *, expanded: bool = False) -> None:
    """The project's guidelines, collapsible, as safe Markdown (no raw HTML, no script). Always one
    container, so what follows keeps its place in the page whether a project has guidelines or not."""
    slot = st.container()
    if guide is None:
        return
    with slot, st.expander(f"Guidelines (version {guide.version})", expanded=expanded, icon=":material/menu_book:"):
        st.markdown(render.safe_markdown(guide.text))
        for label, note in guide.label_notes.items():
            st.markdown(f"**{render.md(label)}**: {render.md(note)}")


def skip_reasons(wb: Workbench, project: ProjectInfo, actor: Actor, *, latest: bool = True) -> None:
    """Skips counted per reason, and (with `latest`) the latest skips with who and when
    (reviewers and admins)."""
    counts = wb.review.skip_counts(project.name, actor=actor)
    if not counts:
        st.caption("No item has been skipped yet.")
        return
    st.subheader("Skips per reason")
    st.dataframe(
        pd.DataFrame([{"reason": r, "skips": n} for r, n in counts.items()]), hide_index=True, key="skip_counts"
    )
    if not latest:
        return
    rows = wb.review.skips(project.name, actor=actor, limit=100)
    st.subheader("Latest skips")
    st.dataframe(
        pd.DataFrame(
            [
                {"item": s.external_id, "who": s.annotator, "when (UTC)": f"{s.at:%Y-%m-%d %H:%M}", "reason": s.reason}
                for s in rows
            ]
        ),
        hide_index=True,
        key="skip_latest",
    )


def guidelines_usage(wb: Workbench, project: ProjectInfo, actor: Actor) -> None:
    """How many labels were made under the current guidelines and how many predate it."""
    usage = wb.guidelines.usage(project.name, actor=actor)
    if usage.current_version is None:
        st.caption("This project has no guidelines yet.")
        return
    a, b = st.columns(2)
    a.metric(f"Labels under guidelines v{usage.current_version}", usage.labels_under_current)
    b.metric(
        "Labels made before it",
        usage.labels_before_current,
        help="made under an earlier version, or before the project had guidelines",
    )


def guidelines_editor(wb: Workbench, project: ProjectInfo, actor: Actor) -> None:
    """Admins edit the guidelines; every save is a new version."""
    current = wb.guidelines.current(project, actor=actor)
    guidelines_usage(wb, project, actor)
    suffix = f"_{project.id}_{current.version if current else 0}"
    with st.form(f"guidelines_form{suffix}"):
        text = st.text_area(
            "Guidelines (Markdown; raw HTML is shown as text)",
            value=current.text if current else "",
            height=240,
            key=f"guidelines_text{suffix}",
            max_chars=100_000,
        )
        notes = {}
        for label in project.labels:
            notes[label] = st.text_input(
                f"Short description of {label}",
                max_chars=300,
                value=(current.label_notes.get(label, "") if current else ""),
                key=f"guidelines_note{suffix}_{label}",
            )
        saved = st.form_submit_button("Save as a new version", type="primary")
    if saved:
        try:
            info = wb.guidelines.update(project.name, text, actor=actor, label_notes=notes)
        except WorkbenchError as exc:
            render.error(exc)
        else:
            session.flash(f"Saved guidelines version {info.version}.")
            st.rerun()
    versions = wb.guidelines.history(project.name, actor=actor)
    if versions:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "version": g.version,
                        "by": g.author or "operator",
                        "when (UTC)": f"{g.created_at:%Y-%m-%d %H:%M}",
                        "characters": len(g.text),
                    }
                    for g in versions
                ]
            ),
            hide_index=True,
            key="guidelines_versions",
        )


def subgroup_figures(reports: list[SubgroupReport], *, key: str) -> None:
    """Per sensitive column: worst-group accuracy, the lowest disparate-impact ratio and the largest
    equalized-odds difference over the labels, a warning for groups under 30 eval items, and the
    per-group table."""
    from workbench.ui import charts

    for report in reports:
        impact_label = min(report.disparate_impact, key=lambda k: report.disparate_impact[k])
        odds_label = max(report.equalized_odds_difference, key=lambda k: report.equalized_odds_difference[k])
        st.markdown(render.md(f"**{report.column}** ({len(report.groups)} groups)"))
        a, b, c = st.columns(3)
        a.metric(
            f"Worst-group accuracy · {report.column}",
            charts.fmt(report.worst_accuracy, percent=True),
            help=f"the group with the lowest eval accuracy: {report.worst_group}",
        )
        b.metric(
            f"Disparate impact · {report.column}",
            charts.fmt(report.disparate_impact[impact_label]),
            help=f"smallest over largest group share predicted {impact_label} (the 80% rule flags below 0.8)",
        )
        c.metric(
            f"Equalized-odds difference · {report.column}",
            charts.fmt(report.equalized_odds_difference[odds_label]),
            help=f"largest gap between groups in true- or false-positive rate for {odds_label}",
        )
        if report.small_groups:
            st.warning(
                render.md(
                    f"{report.column}: fewer than 30 eval items in {', '.join(report.small_groups)}; "
                    "their figures are noise."
                )
            )
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "group": g.group,
                        "eval items": g.size,
                        "accuracy": round(g.accuracy, 3),
                        **{f"predicted {k}": round(v, 3) for k, v in g.selection_rate.items()},
                    }
                    for g in report.groups
                ]
            ),
            hide_index=True,
            width="stretch",
            key=f"{key}_{report.column}",
        )
        st.caption(
            render.md(
                " · ".join(
                    f"{label}: disparate impact {report.disparate_impact[label]:.2f}, "
                    f"equalized-odds difference {report.equalized_odds_difference[label]:.2f}"
                    for label in report.disparate_impact
                )
            )
        )
