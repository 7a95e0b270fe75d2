"""Rounds (reviewer, admin): start a retrain round and follow it live, metrics per dataset version,
the learning curve with its confidence band, a run's confusion matrix, two runs compared, two
versions diffed, and version downloads."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench.domain import JobState, Role
from workbench.errors import WorkbenchError
from workbench.ui import charts, render, session

JOB = "rounds_job"  # (project name, job id) of the round this browser started or follows
ACTIVE = (JobState.QUEUED, JobState.RUNNING)
MIME = {"csv": "text/csv", "jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}
POLL_S = 1.0


def _when(value) -> str:  # noqa: ANN001
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


# -- the live job ------------------------------------------------------------------------------
def _job_panel(project_name: str) -> None:
    """The followed job's state; reruns itself every POLL_S while the job is queued or running."""
    wb = session.workbench()
    held = st.session_state.get(JOB)
    if not held or held[0] != project_name:
        return
    try:
        job = wb.rounds.job(held[1])
    except WorkbenchError as exc:
        render.error(exc)
        return
    step = f" · {job.message}" if job.message and job.message != job.state.value else ""
    label = f"Round (job {job.id}): {job.state.value}{step}"
    st.progress(min(max(job.progress / 100.0, 0.0), 1.0), text=render.md(label))
    if job.state == JobState.QUEUED:
        st.caption("Waiting for a worker to take the job (`workbench serve` starts one; "
                   "or run `workbench worker`).")
    elif job.state == JobState.FAILED:
        render.error(f"The round failed: {job.error or 'no reason recorded'}")
    elif job.state == JobState.DONE:
        result = job.result or {}
        metrics = result.get("metrics") or {}
        acc = metrics.get("accuracy")
        text = (f"Round done: version {result.get('version')} with {result.get('n_train', 0)} training labels"
                + (f", eval accuracy {acc:.1%} on {metrics.get('n', 0)} items" if acc is not None else
                   " (no eval metrics: too few labels or no labeled eval items yet)")
                + f"; the pool was re-ranked by {result.get('strategy', 'the strategy')}.")
        render.notice("success", text)
    if job.state not in ACTIVE and st.session_state.get("rounds_polling"):
        # the job just finished: refresh the whole page once so tables and charts include it
        st.session_state["rounds_polling"] = False
        st.rerun(scope="app")


def _start(wb, actor, project) -> None:
    left, right = st.columns([1, 3])
    if left.button("Start a retrain round", key="rounds_start", type="primary", icon=":material/play_arrow:"):
        try:
            job = wb.rounds.start(project.name, actor)
        except WorkbenchError as exc:
            render.error(exc)
        else:
            st.session_state[JOB] = (project.name, job.id)
    right.caption("A round cuts a dataset version of the final labels, trains the project's model on its "
                  "pool items, evaluates it on the labeled eval items and re-ranks the open pool.")
    held = st.session_state.get(JOB)
    if not held or held[0] != project.name:
        jobs = wb.rounds.jobs_of(project.name, limit=1)
        if jobs and jobs[0].state in ACTIVE:
            st.session_state[JOB] = held = (project.name, jobs[0].id)
    active = False
    if held and held[0] == project.name:
        try:
            active = wb.rounds.job(held[1]).state in ACTIVE
        except WorkbenchError:
            st.session_state.pop(JOB, None)
    st.session_state["rounds_polling"] = active
    st.fragment(_job_panel, run_every=POLL_S if active else None)(project.name)


# -- tables and charts -------------------------------------------------------------------------
def _runs_frame(runs) -> pd.DataFrame:
    rows = []
    for run in runs:
        m = run.metrics or {}
        low, high = (m.get("accuracy_ci95") or (None, None))
        rows.append({"run": run.id, "version": run.version_number, "training labels": run.n_train,
                     "eval items": m.get("n"), "accuracy": m.get("accuracy"), "95% low": low, "95% high": high,
                     "macro F1": m.get("macro_f1"), "ECE": m.get("ece"),
                     "model": str((run.config or {}).get("type", "")), "seconds": round(run.duration_s, 2),
                     "created (UTC)": _when(run.created_at)})
    return pd.DataFrame(rows)


def _versions(wb, project) -> list:
    versions = wb.rounds.versions(project.name)
    if not versions:
        st.caption("No dataset version yet: a round (or `workbench versions create`) cuts one.")
        return versions
    rows = []
    for v in versions:
        counts = (v.manifest or {}).get("counts") or {}
        agreement = (v.manifest or {}).get("agreement") or {}
        rows.append({"version": v.number, "items": v.n_items,
                     "pool labels": sum((counts.get("pool") or {}).values()),
                     "eval labels": sum((counts.get("eval") or {}).values()),
                     "alpha": agreement.get("krippendorff_alpha"), "trigger": v.trigger,
                     "hash": v.content_hash[:12], "created (UTC)": _when(v.created_at)})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="versions_table")
    return versions


def _run_detail(project, runs) -> None:
    by_id = {run.id: run for run in runs}
    chosen = st.selectbox("Run", list(by_id)[::-1], key="rounds_run",
                          format_func=lambda i: f"run {i} (version {by_id[i].version_number})")
    run = by_id[chosen]
    m = run.metrics or {}
    if not m.get("n"):
        st.caption("This run has no eval metrics (no labeled eval items when it was trained).")
        return
    a, b, c, d = st.columns(4)
    low, high = (m.get("accuracy_ci95") or (None, None))
    a.metric("Eval accuracy", charts.fmt(m.get("accuracy"), percent=True),
             help=f"95% interval {charts.fmt(low, percent=True)} to {charts.fmt(high, percent=True)}")
    b.metric("Macro F1", charts.fmt(m.get("macro_f1")))
    c.metric("Calibration error (ECE)", charts.fmt(m.get("ece")))
    d.metric("Eval items", m.get("n", 0))
    left, right = st.columns(2)
    with left:
        st.caption("Confusion matrix (rows: final label, columns: predicted)")
        charts.heatmap(m.get("confusion_matrix") or [], list(project.labels), "final label", "predicted",
                       key=f"confusion_{run.id}")
    with right:
        per_class = pd.DataFrame(m.get("per_class") or [])
        if not per_class.empty:
            st.dataframe(per_class, hide_index=True, key=f"per_class_{run.id}")


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
        low, high = result.get("difference_ci95") or (None, None)
        a, b, c, d = st.columns(4)
        a.metric(f"Run {run_a} accuracy", charts.fmt(result.get("accuracy_a"), percent=True))
        b.metric(f"Run {run_b} accuracy", charts.fmt(result.get("accuracy_b"), percent=True),
                 delta=charts.fmt(result.get("difference"), percent=True))
        c.metric("Difference, 95% interval", f"{charts.fmt(low, percent=True)} to {charts.fmt(high, percent=True)}")
        d.metric("McNemar p", charts.fmt(result.get("mcnemar_p")))
        st.caption(f"On the same {result.get('n_eval', result.get('n'))} eval items: only run {run_a} right on "
                   f"{result.get('only_a_correct')}, only run {run_b} right on {result.get('only_b_correct')}.")


def _diff(wb, project, versions) -> None:
    numbers = [v.number for v in versions]
    if len(numbers) < 2:
        st.caption("Two versions are needed for a diff.")
        return
    a_col, b_col = st.columns(2)
    a = a_col.selectbox("From version", numbers, index=len(numbers) - 2, key="diff_a")
    b = b_col.selectbox("To version", numbers, index=len(numbers) - 1, key="diff_b")
    try:
        diff = wb.rounds.diff(project.name, a, b)
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
    fmt = b.selectbox("Format", ["csv", "jsonl", "parquet"], key="dl_fmt")
    if c.button("Prepare the download", key="dl_prepare"):
        try:
            data = wb.rounds.export_version(project.name, number, fmt, actor=actor)
        except WorkbenchError as exc:
            render.error(exc)
            return
        st.session_state["dl_ready"] = (project.name, number, fmt, data)
    ready = st.session_state.get("dl_ready")
    if ready and ready[:3] == (project.name, number, fmt):
        st.download_button(f"Download version {number} ({fmt})", ready[3],
                           file_name=f"version-{number}.{fmt}", mime=MIME[fmt], key="dl_button",
                           on_click="ignore", icon=":material/download:")


def main() -> None:
    actor = session.require(Role.REVIEWER)
    wb = session.workbench()
    project = session.pick_project(page="rounds")
    st.header(render.md(f"Rounds · {project.name}"))
    session.show_flash()
    _start(wb, actor, project)

    runs = wb.rounds.runs(project.name)
    st.subheader("Model runs")
    if runs:
        frame = _runs_frame(runs)
        st.dataframe(frame, hide_index=True, key="runs_table")
        curve = pd.DataFrame(wb.rounds.learning_curve(project.name)).dropna(subset=["accuracy"])
        if not curve.empty:
            st.caption("Learning curve: eval accuracy against the number of training labels, "
                       "with its 95% bootstrap interval")
            curve = curve[["n_labels", "accuracy", "ci_low", "ci_high", "run_id", "version_number"]]
            charts.band_line(curve, "n_labels", "accuracy", "ci_low", "ci_high", key="learning_curve",
                             x_title="training labels", y_title="eval accuracy")
    else:
        st.caption("No model run yet.")

    tabs = st.tabs(["Run details", "Compare runs", "Dataset versions", "Version diff"])
    with tabs[0]:
        if runs:
            _run_detail(project, runs)
    with tabs[1]:
        _compare(wb, actor, project, runs)
    with tabs[2]:
        versions = _versions(wb, project)
        if versions:
            _downloads(wb, actor, project, versions)
    with tabs[3]:
        _diff(wb, project, versions)

    with st.expander("Recent jobs"):
        jobs = wb.rounds.jobs_of(project.name, limit=20)
        if jobs:
            st.dataframe(pd.DataFrame([{"job": j.id, "kind": j.kind.value, "state": j.state.value,
                                        "progress": j.progress, "message": j.message, "error": j.error,
                                        "created (UTC)": _when(j.created_at), "finished (UTC)": _when(j.finished_at)}
                                       for j in jobs]), hide_index=True, key="jobs_table")
        else:
            st.caption("No jobs yet.")


main()
