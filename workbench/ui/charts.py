"""Small Altair charts shared by the pages (bars, a heatmap, a line with a confidence band)."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd
import streamlit as st


def fmt(value: float | None, *, percent: bool = False, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1%}" if percent else f"{value:.{digits}f}"


def bar(
    frame: pd.DataFrame, x: str, y: str, *, domain: tuple[float, float] | None = None, key: str | None = None
) -> None:
    if frame.empty:
        return
    scale = alt.Scale(domain=list(domain)) if domain else alt.Undefined
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:N", sort=None, title=x, axis=alt.Axis(labelAngle=0, labelLimit=160)),
            y=alt.Y(f"{y}:Q", scale=scale, title=y),
            tooltip=[alt.Tooltip(f"{x}:N"), alt.Tooltip(f"{y}:Q", format=".3f")],
        )
        .properties(height=220)
    )
    st.altair_chart(chart, key=key)


def heatmap(
    matrix: Sequence[Sequence[float]],
    labels: Sequence[str],
    row_title: str,
    col_title: str,
    *,
    key: str | None = None,
    value_title: str = "count",
) -> None:
    """A labels x labels matrix as a heatmap with the numbers written in the cells."""
    if not matrix or not labels:
        st.caption("Nothing to show yet.")
        return
    rows = [
        {row_title: str(labels[i]), col_title: str(labels[j]), value_title: matrix[i][j]}
        for i in range(len(labels))
        for j in range(len(labels))
    ]
    frame = pd.DataFrame(rows)
    order = [str(label) for label in labels]
    base = alt.Chart(frame).encode(x=alt.X(f"{col_title}:N", sort=order), y=alt.Y(f"{row_title}:N", sort=order))
    cells = base.mark_rect().encode(
        color=alt.Color(f"{value_title}:Q", scale=alt.Scale(scheme="blues")),
        tooltip=[row_title, col_title, value_title],
    )
    text = base.mark_text().encode(text=alt.Text(f"{value_title}:Q"))
    st.altair_chart((cells + text).properties(height=60 + 40 * len(labels)), key=key)


def band_line(
    frame: pd.DataFrame,
    x: str,
    y: str,
    low: str,
    high: str,
    *,
    key: str | None = None,
    x_title: str | None = None,
    y_title: str | None = None,
    y_format: str = ".0%",
) -> None:
    """A line of `y` over `x` with a shaded band from `low` to `high` (e.g. a 95 % interval)."""
    if frame.empty:
        return
    base = alt.Chart(frame).encode(x=alt.X(f"{x}:Q", title=x_title or x))
    band = base.mark_area(opacity=0.25).encode(
        y=alt.Y(f"{low}:Q", title=y_title or y, scale=alt.Scale(zero=False), axis=alt.Axis(format=y_format)),
        y2=f"{high}:Q",
    )
    line = base.mark_line(point=True).encode(
        y=alt.Y(f"{y}:Q"), tooltip=[c for c in frame.columns if frame[c].dtype != object] or None
    )
    st.altair_chart((band + line).properties(height=280), key=key)


def grouped_bar(frame: pd.DataFrame, x: str, y: str, group: str, *, key: str | None = None) -> None:
    """Bars of `y` per `x`, side by side per `group` (e.g. two samples' shares per bin)."""
    if frame.empty:
        return
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:N", sort=None, title=x, axis=alt.Axis(labelAngle=-45, labelLimit=80)),
            xOffset=alt.XOffset(f"{group}:N"),
            y=alt.Y(f"{y}:Q", title=y, axis=alt.Axis(format="%")),
            color=alt.Color(f"{group}:N", title=None),
            tooltip=[alt.Tooltip(f"{x}:N"), alt.Tooltip(f"{group}:N"), alt.Tooltip(f"{y}:Q", format=".1%")],
        )
        .properties(height=220)
    )
    st.altair_chart(chart, key=key)


def lines_over_time(
    frame: pd.DataFrame, x: str, y: str, group: str, *, y_format: str = ".2f", key: str | None = None
) -> None:
    """A line of `y` per `group` over the days in `x` (e.g. each annotator's figure per day); the
    days are shown as ordered labels, one tick each."""
    frame = frame.dropna(subset=[y]).copy()
    if frame.empty:
        st.caption(f"No {y} yet.")
        return
    frame[x] = pd.to_datetime(frame[x]).dt.strftime("%Y-%m-%d")
    chart = (
        alt.Chart(frame, title=alt.TitleParams(y, anchor="start", fontSize=13))
        .mark_line(point=True)
        .encode(
            x=alt.X(f"{x}:O", title=None, sort="ascending", axis=alt.Axis(labelAngle=0)),
            y=alt.Y(f"{y}:Q", title=None, axis=alt.Axis(format=y_format)),
            color=alt.Color(f"{group}:N", title=group),
            tooltip=[alt.Tooltip(f"{group}:N"), alt.Tooltip(f"{x}:O"), alt.Tooltip(f"{y}:Q", format=y_format)],
        )
        .properties(height=200)
    )
    st.altair_chart(chart, key=key)
