"""Rounds (reviewer, admin): start a retrain round and follow it live, metrics per dataset version,
the learning curve with its confidence band, the stopping advice, the strategy advisor's latest
advice, a run's confusion matrix, two runs compared, two versions diffed, and version downloads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import altair as alt
import pandas as pd
import streamlit as st

from workbench.domain import (
    ExportFormat,
    ExportKind,
    JobKind,
    JobState,
    Role,
    VersionJobResult,
    role_allows,
)
from workbench.domain.advice import Advice
from workbench.domain.alerts import AlertJobResult
from workbench.domain.rounds import JobResult
from workbench.errors import WorkbenchError
from workbench.ui import charts, render, sections, session

if TYPE_CHECKING:
    from datetime import datetime

JOB = "rounds_job"  # the HeldJob: the round this browser started or follows
READY = "dl_ready"  # the ReadyDownload prepared for the download button
ROUND_JOBS = (JobKind.RETRAIN, JobKind.RESCORE, JobKind.VERSION)  # what the round panel follows
ACTIVE = (JobState.QUEUED, JobState.RUNNING)
POLL_S = 1.0


@dataclass(frozen=True)
class HeldJob:
    """The round job this browser started or follows, in one project."""

    project: str
    job_id: int


@dataclass(frozen=True)
class ReadyDownload:
    """A version export prepared for the download button (the button needs the bytes up front)."""

    project: str
    number: int
    fmt: str
    data: bytes

    def matches(self, project: str, number: int, fmt: str) -> bool:
        return (self.project, self.number, self.fmt) == (project, number, fmt)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


# -- the live job ------------------------------------------------------------------------------
def _job_panel(project_name: str) -> None:
    """The followed job's state; reruns itself every POLL_S while the job is queued or running."""
    wb = session.workbench()
    held = st.session_state.get(JOB)
    if held is None or held.project != project_name:
        return
    actor = session.require(Role.REVIEWER)
    try:
        job = wb.jobs.get(held.job_id, actor=actor)
    except WorkbenchError as exc:
        render.error(exc)
        return
    step = f" · {job.message}" if job.message and job.message != job.state.value else ""
    label = f"Round (job {job.id}): {job.state.value}{step}"
    st.progress(min(max(job.progress / 100.0, 0.0), 1.0), text=render.md(label))
    if job.state == JobState.QUEUED:
        st.caption("Waiting for a worker to take the job (`workbench serve` starts one; or run `workbench worker`).")
    elif job.state == JobState.FAILED:
        render.error(f"The round failed: {job.error or 'no reason recorded'}")
    elif job.state == JobState.DONE and job.result is not None:
        render.notice("success", _done_text(job.result))
    if job.state not in ACTIVE and st.session_state.get("rounds_polling"):
        # the job just finished: refresh the whole page once so tables and charts include it
        st.session_state["rounds_polling"] = False
        st.rerun(scope="app")


def _done_text(result: JobResult) -> str:
    """One sentence for a finished job: what it cut, trained, measured and which strategy ranked."""
    if isinstance(result, Advice):
        return result.sentence
    if isinstance(result, AlertJobResult):
        return f"Alert check done: {result.fired} fired, {result.cleared} cleared, {result.sent} sent."
    if isinstance(result, VersionJobResult):
        return f"Version {result.version} cut."
    metrics = result.metrics
    head = (
        f"Round done: version {result.version} with {result.n_train} training labels"
        if result.version is not None
        else "Rescore done"
    )
    quality = (
        f", eval accuracy {metrics.accuracy:.1%} on {metrics.n} items"
        if metrics and metrics.evaluated
        else " (no eval metrics: too few labels or no labeled eval items yet)"
        if result.version is not None
        else ""
    )
    return f"{head}{quality}; the pool was re-ranked by {result.ranked_by.describe()}."


def _start(wb, actor, project) -> None:
    left, right = st.columns([1, 3])
    if left.button("Start a retrain round", key="rounds_start", type="primary", icon=":material/play_arrow:"):
        try:
            job = wb.rounds.start(project.name, actor=actor)
        except WorkbenchError as exc:
            render.error(exc)
        else:
            st.session_state[JOB] = HeldJob(project.name, job.id)
    right.caption(
        "A round cuts a dataset version of the final labels, trains the project's model on its "
        "pool items, evaluates it on the labeled eval items and re-ranks the open pool."
    )
    held: HeldJob | None = st.session_state.get(JOB)
    if held is None or held.project != project.name:
        jobs = [j for j in wb.jobs.list(project.name, limit=5, actor=actor) if j.kind in ROUND_JOBS]
        if jobs and jobs[0].state in ACTIVE:
            st.session_state[JOB] = held = HeldJob(project.name, jobs[0].id)
    active = False
    if held is not None and held.project == project.name:
        try:
            active = wb.jobs.get(held.job_id, actor=actor).state in ACTIVE
        except WorkbenchError:
            st.session_state.pop(JOB, None)
    st.session_state["rounds_polling"] = active
    st.fragment(_job_panel, run_every=POLL_S if active else None)(project.name)


def _ranking(wb, actor, project) -> None:
    """Which strategy made the ranking the queue serves now, on which model run."""
    ranked_by = wb.rounds.ranked_by(project, actor=actor)
    if ranked_by is None:
        st.caption(
            render.md(
                f"No ranking yet: the queue serves pool items at random until a round ranks them "
                f"(project strategy: {project.strategy})."
            )
        )
    else:
        st.caption(render.md(f"The queue serves the ranking made by {ranked_by.describe()}."))


# -- tables and charts -------------------------------------------------------------------------
def _runs_frame(runs) -> pd.DataFrame:
    rows = []
    for run in runs:
        m = run.metrics
        low, high = m.accuracy_ci95 or (None, None)
        rows.append(
            {
                "run": run.id,
                "version": run.version_number,
                "training labels": run.n_train,
                "eval items": m.n,
                "accuracy": m.accuracy,
                "95% low": low,
                "95% high": high,
                "macro F1": m.macro_f1,
                "ECE": m.ece,
                "model": str((run.config or {}).get("type", "")),
                "MLflow": run.tracking.status.value if run.tracking is not None else "",
                "seconds": round(run.duration_s, 2),
                "created (UTC)": _when(run.created_at),
            }
        )
    return pd.DataFrame(rows)


def _tracking(runs) -> None:
    """The latest run's MLflow outcome, one line: a failure as a warning, a success as a caption."""
    latest = runs[-1].tracking if runs else None
    if latest is None:
        return
    if latest.logged:
        st.caption(render.md(f"MLflow: run {runs[-1].id} {latest.describe()}."))
    else:
        render.notice(
            "warning",
            f"MLflow: run {runs[-1].id} {latest.describe()}. The round itself finished.",
        )


def _versions(wb, actor, project) -> list:
    versions = wb.versions.list(project.name, actor=actor)
    if not versions:
        st.caption("No dataset version yet: a round (or `workbench versions create`) cuts one.")
        return versions
    rows = []
    for v in versions:
        counts = (v.manifest or {}).get("counts") or {}
        agreement = (v.manifest or {}).get("agreement") or {}
        rows.append(
            {
                "version": v.number,
                "items": v.n_items,
                "pool labels": sum((counts.get("pool") or {}).values()),
                "eval labels": sum((counts.get("eval") or {}).values()),
                "alpha": agreement.get("krippendorff_alpha"),
                "trigger": v.trigger,
                "hash": v.content_hash[:12],
                "created (UTC)": _when(v.created_at),
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="versions_table")
    return versions


def _run_groups(wb, actor, project, run) -> None:
    """Worst-group figures of the run on the sensitive columns (none declared: nothing shown)."""
    try:
        reports = wb.health.subgroups(project.name, actor=actor, run_id=run.id)
    except WorkbenchError as exc:
        st.caption(render.md(f"Groups: {exc}"))
        return
    if reports:
        st.caption("Per group of the sensitive columns (eval split)")
        sections.subgroup_figures(reports, key=f"run_groups_{run.id}")


def _run_detail(wb, actor, project, runs) -> None:
    by_id = {run.id: run for run in runs}
    chosen = st.selectbox(
        "Run", list(by_id)[::-1], key="rounds_run", format_func=lambda i: f"run {i} (version {by_id[i].version_number})"
    )
    run = by_id[chosen]
    m = run.metrics
    if not m.evaluated:
        st.caption("This run has no eval metrics (no labeled eval items when it was trained).")
        return
    a, b, c, d = st.columns(4)
    low, high = m.accuracy_ci95 or (None, None)
    a.metric(
        "Eval accuracy",
        charts.fmt(m.accuracy, percent=True),
        help=f"95% interval {charts.fmt(low, percent=True)} to {charts.fmt(high, percent=True)}",
    )
    b.metric("Macro F1", charts.fmt(m.macro_f1))
    c.metric("Calibration error (ECE)", charts.fmt(m.ece))
    d.metric("Eval items", m.n)
    left, right = st.columns(2)
    with left:
        st.caption("Confusion matrix (rows: final label, columns: predicted)")
        charts.heatmap(
            [list(row) for row in m.confusion_matrix],
            list(project.labels),
            "final label",
            "predicted",
            key=f"confusion_{run.id}",
        )
    with right:
        per_class = pd.DataFrame(list(m.per_class))
        if not per_class.empty:
            st.dataframe(per_class, hide_index=True, key=f"per_class_{run.id}")
    _run_groups(wb, actor, project, run)


def _compare(wb, actor, project, runs) -> None:
    ids = [run.id for run in runs]
    if len(ids) < 2:
        st.caption("Two runs are needed for a comparison.")
        return
    a_col, b_col, go_col = st.columns([2, 2, 1])
    run_a = a_col.selectbox("Run A", ids, index=len(ids) - 2, key="cmp_a")
    run_b = b_col.selectbox("Run B", ids, index=len(ids) - 1, key="cmp_b")
    if go_col.button("Compare", key="cmp_go"):
        try:
            result = wb.rounds.compare(project.name, run_a, run_b, actor=actor)
        except WorkbenchError as exc:
            render.error(exc)
            return
        low, high = result.difference_ci95
        a, b, c, d = st.columns(4)
        a.metric(f"Run {run_a} accuracy", charts.fmt(result.accuracy_a, percent=True))
        b.metric(
            f"Run {run_b} accuracy",
            charts.fmt(result.accuracy_b, percent=True),
            delta=charts.fmt(result.difference, percent=True),
        )
        c.metric("Difference, 95% interval", f"{charts.fmt(low, percent=True)} to {charts.fmt(high, percent=True)}")
        d.metric("McNemar p", charts.fmt(result.mcnemar_p))
        st.caption(
            f"On the same {result.n_eval} eval items (from the predictions stored with each run): "
            f"only run {run_a} right on {result.only_a_correct}, only run {run_b} right on "
            f"{result.only_b_correct}."
        )


def _diff(wb, actor, project, versions) -> None:
    numbers = [v.number for v in versions]
    if len(numbers) < 2:
        st.caption("Two versions are needed for a diff.")
        return
    a_col, b_col = st.columns(2)
    a = a_col.selectbox("From version", numbers, index=len(numbers) - 2, key="diff_a")
    b = b_col.selectbox("To version", numbers, index=len(numbers) - 1, key="diff_b")
    try:
        diff = wb.versions.diff(project.name, a, b, actor=actor)
    except WorkbenchError as exc:
        render.error(exc)
        return
    st.text(f"{len(diff.added)} added · {len(diff.removed)} removed · {len(diff.relabeled)} relabeled")
    cols = st.columns(3)
    for col, title, rows, names in (
        (cols[0], "Added", diff.added, ["item", "label"]),
        (cols[1], "Removed", diff.removed, ["item", "label"]),
        (cols[2], "Relabeled", diff.relabeled, ["item", "old label", "new label"]),
    ):
        with col:
            st.caption(title)
            st.dataframe(pd.DataFrame(list(rows), columns=names), hide_index=True, key=f"diff_{title}")


def _downloads(wb, actor, project, versions) -> None:
    numbers = [v.number for v in versions]
    a, b, c = st.columns([2, 2, 2])
    number = a.selectbox("Version", numbers[::-1], key="dl_version")
    formats = [f.value for f in ExportKind.VERSION.formats if f is not ExportFormat.HF]  # hf is a folder
    fmt = b.selectbox("Format", formats, key="dl_fmt")
    if c.button("Prepare the download", key="dl_prepare"):
        try:
            data, _ = wb.exports.payload(ExportKind.VERSION, project.name, fmt, number=number, actor=actor)
        except WorkbenchError as exc:
            render.error(exc)
            return
        st.session_state[READY] = ReadyDownload(project.name, number, fmt, data)
    ready: ReadyDownload | None = st.session_state.get(READY)
    if ready is not None and ready.matches(project.name, number, fmt):
        st.download_button(
            f"Download version {number} ({fmt})",
            ready.data,
            file_name=f"version-{number}.{ExportFormat(fmt).extension}",
            mime=ExportFormat(fmt).mime,
            key="dl_button",
            on_click="ignore",
            icon=":material/download:",
        )


def _stopping(wb, actor, project) -> None:
    """Whether more labels are likely to change the model: what each round stored (stop-set kappa,
    eval accuracy with its interval, strategy against control arm), read through RoundQueries."""
    advice = wb.rounds.stopping(project.name, actor=actor)
    st.subheader("Stopping advice")
    (st.success if advice.stop else st.info)(render.md(advice.sentence))
    st.caption(render.md(advice.strategy_vs_control))
    if not advice.rounds:
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "run": r.run_id,
                    "version": r.version_number,
                    "training labels": r.n_labels,
                    "eval accuracy": r.accuracy,
                    "95% low": r.ci_low,
                    "95% high": r.ci_high,
                    "kappa vs previous": r.kappa,
                    "F bound": r.f_bound,
                    "stop set": r.stop_n or None,
                    "ranked error": r.ranked_error,
                    "control error": r.control_error,
                }
                for r in advice.rounds
            ]
        ),
        hide_index=True,
        key="stopping_table",
    )
    st.caption(
        "kappa: Cohen's kappa between this run's and the previous run's predictions on the stop set, a "
        "fixed random set of pool items; F bound: the F-measure difference it allows, 4(1-kappa)/kappa "
        "(Bloodgood & Grothendieck). Ranked/control error: the previous model's error on the items "
        "labeled since, picked by the strategy or at random (the control arm)."
    )


# -- the strategy advisor ------------------------------------------------------------------------
def _advisor_job(project_name: str) -> None:
    """The advise job in flight; reruns itself while it is queued or running."""
    wb = session.workbench()
    actor = session.require(Role.REVIEWER)
    status = wb.advisor.status(project_name, actor=actor)
    job = status.active
    if job is None:
        if st.session_state.get("advisor_polling"):
            st.session_state["advisor_polling"] = False
            st.rerun(scope="app")  # it just finished: show the new advice
        return
    step = f" · {job.message}" if job.message and job.message != job.state.value else ""
    st.progress(
        min(max(job.progress / 100.0, 0.0), 1.0),
        text=render.md(f"Strategy advisor (job {job.id}): {job.state.value}{step}"),
    )
    if job.state == JobState.QUEUED:
        st.caption("Waiting for a worker to take the job (`workbench serve` starts one; or run `workbench worker`).")


def _advice_chart(advice: Advice) -> None:
    rows = [
        {"strategy": s.strategy, "labels": p.labels, "accuracy": p.accuracy, "std over seeds": p.std}
        for s in advice.strategies
        if s.same_as is None
        for p in s.curve
    ]
    if not rows:
        return
    chart = (
        alt.Chart(pd.DataFrame(rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("labels:Q", title="labeled pool items (replayed)"),
            y=alt.Y(
                "accuracy:Q",
                title="eval accuracy, mean over seeds",
                scale=alt.Scale(zero=False),
                axis=alt.Axis(format=".0%"),
            ),
            color=alt.Color("strategy:N", title="strategy"),
            strokeDash=alt.condition(alt.datum.strategy == "random", alt.value([5, 3]), alt.value([1, 0])),
            tooltip=[
                "strategy",
                "labels",
                alt.Tooltip("accuracy:Q", format=".1%"),
                alt.Tooltip("std over seeds:Q", format=".3f"),
            ],
        )
        .properties(height=300)
    )
    st.altair_chart(chart, key="advisor_curves")


def _advice_table(advice: Advice) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "strategy": s.strategy + (" (current)" if s.is_current else ""),
                "AUBC": s.aubc,
                "AUBC − random": s.diff_mean,
                "95% low": s.diff_low,
                "95% high": s.diff_high,
                "verdict": s.verdict.value + (f" (same ranking as {s.same_as})" if s.same_as else ""),
            }
            for s in advice.strategies
        ]
    )


def _advisor(wb, actor, project) -> None:
    """The latest advice: curves per strategy, AUBC minus random with its paired interval, the
    recommendation in one sentence. It never changes the project's strategy."""
    st.subheader("Strategy advisor")
    status = wb.advisor.status(project.name, actor=actor)
    admin = role_allows(actor.role, Role.ADMIN)
    if status.min_labels <= 0:
        st.caption("The advisor does not run after rounds here (advisor_min_labels is 0); an admin can run it.")
    elif status.needed:
        st.info(
            render.md(
                f"The advisor runs after a round once the project has {status.min_labels} final labels: "
                f"{status.needed} more needed ({status.n_labels} so far)."
            )
        )
    if admin:
        left, right = st.columns([1, 3])
        if left.button("Run the strategy advisor", key="advisor_run", icon=":material/science:"):
            try:
                wb.advisor.queue(project.name, actor=actor)
            except WorkbenchError as exc:
                render.error(exc)
            else:
                status = wb.advisor.status(project.name, actor=actor)
        right.caption(
            "A worker replays this project's final labels with each strategy its model can serve and with "
            "random, over a few seeds, and compares them. It never changes the project's strategy."
        )
    st.session_state["advisor_polling"] = status.active is not None
    st.fragment(_advisor_job, run_every=POLL_S * 2 if status.active is not None else None)(project.name)
    if status.failed is not None:
        render.error(f"The last advisor run failed: {status.failed.error or 'no reason recorded'}")
    advice = status.advice
    if advice is None:
        st.caption("No advice yet.")
        return
    (st.success if advice.recommended else st.info)(render.md(advice.sentence))
    st.caption(
        render.md(
            f"Advice of {_when(status.advised_at)} UTC (job {status.advice_job_id}): {advice.n_labels} final labels "
            f"replayed ({advice.n_pool} as the pool, {advice.n_eval} for evaluation), seeds "
            f"{', '.join(map(str, advice.seeds))}, a seed set of {advice.initial} then batches of "
            f"{advice.batch_size}; {advice.seconds:.0f} s."
        )
    )
    _advice_chart(advice)
    st.dataframe(_advice_table(advice), hide_index=True, key="advisor_table")
    st.caption(
        "AUBC: mean eval accuracy over the replayed labels (area under the learning curve). AUBC − random: "
        "per seed, the strategy's AUBC minus random's on the same seed (same seed set and eval items), with "
        "a 95% t-interval over seeds; a strategy is recommended only when the whole interval is above zero."
    )
    if not advice.model_above_majority:
        render.notice(
            "warning",
            "Even trained on every replayed label the model does not measurably beat always answering the "
            "majority label, so strategies cannot be told apart on these labels.",
        )


def main() -> None:
    actor = session.require(Role.REVIEWER)
    wb = session.workbench()
    project = session.pick_project(page="rounds")
    st.header(render.md(f"Rounds · {project.name}"))
    session.show_flash()
    _start(wb, actor, project)
    _ranking(wb, actor, project)

    runs = wb.rounds.runs(project.name, actor=actor)
    st.subheader("Model runs")
    if runs:
        frame = _runs_frame(runs)
        st.dataframe(frame, hide_index=True, key="runs_table")
        _tracking(runs)
        curve = pd.DataFrame(wb.rounds.learning_curve(project.name, actor=actor)).dropna(subset=["accuracy"])
        if not curve.empty:
            st.caption(
                "Learning curve: eval accuracy against the number of training labels, with its 95% bootstrap interval"
            )
            curve = curve[["n_labels", "accuracy", "ci_low", "ci_high", "run_id", "version_number"]]
            charts.band_line(
                curve,
                "n_labels",
                "accuracy",
                "ci_low",
                "ci_high",
                key="learning_curve",
                x_title="training labels",
                y_title="eval accuracy",
            )
    else:
        st.caption("No model run yet.")
    _stopping(wb, actor, project)
    _advisor(wb, actor, project)

    tabs = st.tabs(["Run details", "Compare runs", "Dataset versions", "Version diff"])
    with tabs[0]:
        if runs:
            _run_detail(wb, actor, project, runs)
    with tabs[1]:
        _compare(wb, actor, project, runs)
    with tabs[2]:
        versions = _versions(wb, actor, project)
        if versions:
            _downloads(wb, actor, project, versions)
    with tabs[3]:
        _diff(wb, actor, project, versions)

    with st.expander("Recent jobs"):
        jobs = wb.jobs.list(project.name, limit=20, actor=actor)
        if jobs:
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "job": j.id,
                            "kind": j.kind.value,
                            "state": j.state.value,
                            "progress": j.progress,
                            "message": j.message,
                            "error": j.error,
                            "created (UTC)": _when(j.created_at),
                            "finished (UTC)": _when(j.finished_at),
                        }
                        for j in jobs
                    ]
                ),
                hide_index=True,
                key="jobs_table",
            )
        else:
            st.caption("No jobs yet.")


main()
