"""Annotator statistics as a section: the overview's (everyone, for reviewers and admins) and the
Statistics page's (an annotator's own). The figures come from StatsService; this only draws them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from workbench.domain import Actor, ProjectInfo
from workbench.errors import WorkbenchError
from workbench.services import Workbench
from workbench.ui import charts, render

if TYPE_CHECKING:
    from collections.abc import Iterable

    from workbench.services.stats import AnnotatorStatistics, Figures

# (column, field of Figures, axis format)
METRICS = (
    ("labels per hour", "labels_per_hour", ".0f"),
    ("median seconds per item", "median_seconds", ".1f"),
    ("skip rate", "skip_rate", ".0%"),
    ("kappa with the other labeler", "kappa", ".2f"),
    ("agreement with adjudication", "adjudication_agreement", ".0%"),
)
EXPLAIN = (
    "Labels per hour count active time only (a pause over 15 minutes starts a new session). Kappa is "
    "Cohen's, against the other labeler on the items both labeled; agreement with adjudication is the "
    "share of labels matching the reviewer's label where a reviewer decided."
)


def _row(name: str, figures: Figures) -> dict:
    row = {"annotator": name, "labels": figures.labels, "skips": figures.skips}
    for column, field, _ in METRICS:
        row[column] = getattr(figures, field)
    row["shared pairs"] = figures.kappa_pairs
    row["adjudicated"] = figures.adjudicated
    return row


def _series(stats: Iterable[AnnotatorStatistics]) -> pd.DataFrame:
    rows = [{"day": pd.Timestamp(d.day), **_row(a.annotator, d.figures)} for a in stats for d in a.by_day]
    return pd.DataFrame(rows)


def _charts(frame: pd.DataFrame, key: str) -> None:
    if frame.empty:
        st.caption("No labels yet.")
        return
    columns = st.columns(2)
    for i, (column, _, y_format) in enumerate(METRICS):
        with columns[i % 2]:
            charts.lines_over_time(frame, "day", column, "annotator", y_format=y_format, key=f"{key}_{i}")


def everyone(wb: Workbench, project: ProjectInfo, actor: Actor) -> None:
    """Every annotator's figures on the project, then each figure per day (reviewers, admins)."""
    st.subheader("Annotators")
    try:
        stats = wb.stats.project(project.name, actor=actor)
    except WorkbenchError as exc:
        render.error(exc)
        return
    if not stats.annotators:
        st.caption("Nobody has labeled or skipped an item yet.")
        return
    st.dataframe(
        pd.DataFrame([_row(a.annotator, a.total) for a in stats.annotators]).round(3),
        hide_index=True,
        key="stats_table",
    )
    st.caption(EXPLAIN)
    _charts(_series(stats.annotators), "stats_all")


def mine(wb: Workbench, project: ProjectInfo, actor: Actor) -> None:
    """The actor's own figures on the project and how they moved per day (never anyone else's)."""
    try:
        own = wb.stats.annotator(project.name, actor=actor)
    except WorkbenchError as exc:
        render.error(exc)
        return
    t = own.total
    a, b, c = st.columns(3)
    a.metric("Labels", t.labels)
    b.metric("Labels per hour", charts.fmt(t.labels_per_hour, digits=0))
    c.metric("Median seconds per item", charts.fmt(t.median_seconds, digits=1))
    d, e, f = st.columns(3)
    d.metric("Skip rate", charts.fmt(t.skip_rate, percent=True))
    e.metric("Kappa with the other labeler", charts.fmt(t.kappa, digits=2), help=f"on {t.kappa_pairs} shared item(s)")
    f.metric(
        "Agreement with adjudication",
        charts.fmt(t.adjudication_agreement, percent=True),
        help=f"on {t.adjudicated} adjudicated item(s)",
    )
    st.caption(EXPLAIN)
    _charts(_series([own]), "stats_mine")
