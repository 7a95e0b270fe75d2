"""Health (reviewers and admins): duplicates, pool/eval leakage, outliers and personal data the
health check flagged, excluding items from the pool, and drift against the latest version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from workbench.domain import Role
from workbench.errors import WorkbenchError
from workbench.ui import charts, render, sections, session

if TYPE_CHECKING:
    from workbench.health.drift import DriftReport

DRIFT = "health_drift_report"  # the HeldDrift last measured in this browser


@dataclass(frozen=True)
class HeldDrift:
    """The drift last measured for one project: the DriftReport, or the reason there is none."""

    project: str
    report: DriftReport | str


KINDS = {
    "duplicate": "Exact duplicates",
    "near_duplicate": "Near duplicates",
    "leakage": "Pool/eval leakage",
    "outlier": "Outliers",
    "pii": "Personal data",
}


def _flags(wb, actor, project) -> None:
    flags = wb.health.flags(project.name, actor=actor, limit=100_000)
    counts = {kind: sum(1 for f in flags if f.kind.value == kind) for kind in KINDS}
    cols = st.columns(len(KINDS))
    for col, (kind, title) in zip(cols, KINDS.items()):
        col.metric(title, counts[kind])
    if not flags:
        st.info("Nothing flagged. The check runs after every import; an admin can run it again below.")
        return
    shown = st.segmented_control(
        "Show",
        list(KINDS),
        format_func=lambda k: KINDS[k],
        key="health_kind",
        default=next(k for k in KINDS if counts[k]) if any(counts.values()) else None,
    )
    rows = [f for f in flags if shown is None or f.kind.value == shown]
    frame = pd.DataFrame([{"item": f.external_id, "flag": KINDS[f.kind.value], "reason": f.reason} for f in rows])
    st.dataframe(frame, hide_index=True, width="stretch", height=min(420, 40 + 35 * len(frame)))
    with st.form("health_exclude", clear_on_submit=True):
        st.markdown("**Exclude items from the pool and the dataset**")
        chosen = st.multiselect("Items", [f.external_id for f in rows], key="health_exclude_ids", max_selections=500)
        reason = st.text_input("Reason", key="health_exclude_reason", placeholder="e.g. duplicate of an eval item")
        if st.form_submit_button("Exclude", type="primary"):
            try:
                done = wb.health.exclude(project.name, chosen, actor=actor, reason=reason)
            except WorkbenchError as exc:
                render.error(exc)
            else:
                session.flash(f"Excluded {len(done)} item(s): {', '.join(done[:10])}{' …' if len(done) > 10 else ''}.")
                st.rerun()


def _drift(wb, actor, project) -> None:
    held: HeldDrift | None = st.session_state.get(DRIFT)
    if st.button(
        "Measure drift",
        key="health_drift",
        help="compares the items imported since the latest version with the version's items; "
        "a domain classifier is trained, so this takes a few seconds",
    ):
        try:
            held = HeldDrift(project.name, wb.health.drift(project.name, actor=actor))
        except WorkbenchError as exc:
            held = HeldDrift(project.name, str(exc))
        st.session_state[DRIFT] = held
    if held is None or held.project != project.name:
        return
    report = held.report
    if isinstance(report, str):
        st.caption(render.md(f"Drift: {report}"))
        return
    auc = charts.fmt(report.domain_auc)
    if report.drifted_features:
        st.warning(
            render.md(
                f"{report.n_new} item(s) imported since the latest version differ from its "
                f"{report.n_reference} in: {', '.join(report.drifted_features)} "
                f"(domain classifier AUC {auc})."
            )
        )
    else:
        st.success(
            render.md(
                f"No feature drifted: {report.n_new} new item(s) against {report.n_reference} "
                f"in the latest version (domain classifier AUC {auc}; 0.5 means indistinguishable)."
            )
        )
    frame = pd.DataFrame(
        [
            {
                "feature": t.feature,
                "test": t.test,
                "statistic": round(t.statistic, 4),
                "p": t.p_value,
                "p (Holm)": t.p_adjusted,
                "drifted": t.drifted,
            }
            for t in report.tests
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    for histogram in report.histograms:
        long = pd.DataFrame(
            [
                {"bin": b, "sample": sample, "share": share}
                for sample, values in (("latest version", histogram.reference), ("new", histogram.new))
                for b, share in zip(histogram.bins, values)
            ]
        )
        st.caption(render.md(f"{histogram.feature}: share of items per bin"))
        charts.grouped_bar(long, "bin", "share", "sample", key=f"drift_{histogram.feature}")


def _prediction_drift(wb, actor, project) -> None:
    """The latest round's predicted-label shares on the new batch against the eval split."""
    report = wb.health.prediction_drift(project.name, actor=actor)
    if report is None:
        st.caption("Prediction drift: measured at each round that trains a model; none has yet.")
        return
    if report.p_value is None:
        st.caption(
            render.md(
                f"Prediction drift (model run {report.model_run_id}): not tested; {report.n_new} new item(s) "
                f"against {report.n_reference} eval item(s), with a sample empty or one label predicted."
            )
        )
    elif report.drifted:
        shift = report.largest_shift
        moved = f" {shift.label}: {shift.reference_share:.0%} → {shift.new_share:.0%}." if shift else ""
        st.warning(
            render.md(
                f"The model predicts differently on the {report.n_new} item(s) imported since the previous round "
                f"than on the {report.n_reference} eval item(s) (chi-square {report.statistic:.1f}, "
                f"p = {report.p_value:.2g}).{moved}"
            )
        )
    else:
        st.success(
            render.md(
                f"No prediction drift: {report.n_new} new item(s) against {report.n_reference} eval item(s) "
                f"(chi-square {report.statistic:.1f}, p = {report.p_value:.2g}; model run {report.model_run_id})."
            )
        )
    frame = pd.DataFrame(
        [
            {
                "predicted label": s.label,
                "eval items": s.reference_count,
                "eval share": round(s.reference_share, 4),
                "new items": s.new_count,
                "new share": round(s.new_share, 4),
                "change": round(s.new_share - s.reference_share, 4),
            }
            for s in report.shares
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    long = pd.DataFrame(
        [
            {"label": s.label, "sample": sample, "share": share}
            for s in report.shares
            for sample, share in (("eval split", s.reference_share), ("new batch", s.new_share))
        ]
    )
    charts.grouped_bar(long, "label", "share", "sample", key="prediction_drift_chart")


def _subgroups(wb, actor, project) -> None:
    try:
        reports = wb.health.subgroups(project.name, actor=actor)
    except WorkbenchError as exc:
        st.caption(render.md(f"Subgroups: {exc}"))
        return
    if not reports:
        return
    st.subheader("The latest model per group")
    sections.subgroup_figures(reports, key="health_groups")


def main() -> None:
    actor = session.require(Role.REVIEWER)
    wb = session.workbench()
    project = session.pick_project(page="health")
    st.header(render.md(f"Health · {project.name}"))
    session.show_flash()
    if actor.role == Role.ADMIN and st.button(
        "Run the health check now", key="health_run", help="checks the items imported since the latest version"
    ):
        try:
            report = wb.health.check(project.name, actor=actor)
        except WorkbenchError as exc:
            render.error(exc)
        else:
            st.success(render.md(f"{report.n_batch} item(s) checked: {report.summary()}."))
    _flags(wb, actor, project)
    st.subheader("Drift since the latest version")
    left, right = st.columns(2)
    with left:
        st.markdown("**Features**")
        _drift(wb, actor, project)
    with right:
        st.markdown("**Predictions**")
        _prediction_drift(wb, actor, project)
    _subgroups(wb, actor, project)


main()
