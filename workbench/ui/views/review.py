"""Review: the disagreement queue with every answer side by side, adjudication with a reason,
and the agreement dashboard (kappa per pair, alpha, per-label agreement, annotators vs adjudication)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench.domain import Decision, ReviewCase, Role
from workbench.errors import WorkbenchError
from workbench.ui import charts, render, session

ANY = "(any label)"
DECISIONS = {
    Decision.LABEL: "Choose a label",
    Decision.AMBIGUOUS: "Ambiguous: no single right label",
    Decision.EXCLUDED: "Exclude from the dataset",
}


def _answers(case: ReviewCase) -> str:
    return " · ".join(f"{a.annotator}: {a.label}" for a in case.answers)


def _case_view(wb, project, actor, case: ReviewCase) -> None:
    st.caption(render.md(f"Item {case.external_id} · {case.split.value} split · {case.state.value}"))
    with st.container(border=True):
        render.render_content(project, case.content, key=f"review_{case.item_id}")
    cols = st.columns(max(len(case.answers), 1))
    for col, answer in zip(cols, case.answers):
        with col, st.container(border=True):
            st.text(f"Annotator: {answer.annotator}")
            st.text(f"Label: {answer.label}")
            seconds = f"{answer.duration_ms / 1000:.1f} s" if answer.duration_ms is not None else "unknown"
            st.text(f"Time taken: {seconds} · {answer.created_at:%Y-%m-%d %H:%M} UTC")
    if case.reason:
        st.text(f"Why it is here: {case.reason}")
    if case.suggestion is not None:  # a suggestion only: the label box below never preselects it
        st.text(f"Dawid–Skene suggests: {case.suggestion} (posterior {case.suggestion_p:.2f}); "
                "decide for yourself")

    with st.form(f"adjudicate_{case.item_id}", clear_on_submit=False):
        decision = st.radio("Decision", list(DECISIONS), format_func=lambda d: DECISIONS[d],
                            key=f"adj_decision_{case.item_id}", horizontal=True)
        given = [a.label for a in case.answers]
        labels = list(project.labels)
        default = labels.index(given[0]) if given and given[0] in labels else 0
        label = st.selectbox("Label (when choosing a label)", labels, index=default,
                             key=f"adj_label_{case.item_id}")
        reason = st.text_area("Reason (required, kept in the audit log)", key=f"adj_reason_{case.item_id}",
                              max_chars=2000)
        submitted = st.form_submit_button("Adjudicate", type="primary")
    if submitted:
        try:
            info = wb.review.adjudicate(case.item_id, actor, decision,
                                        label=label if decision == Decision.LABEL else None, reason=reason)
        except WorkbenchError as exc:
            render.error(exc)
        else:
            outcome = info.label if info.decision == Decision.LABEL else info.decision.value
            session.flash(f"Item {case.external_id} settled: {outcome}.")
            st.session_state.pop("review_case", None)
            st.rerun()


def _queue_tab(wb, project, actor) -> None:
    labels = list(project.labels)
    a_col, b_col, n_col = st.columns([2, 2, 1])
    first = a_col.selectbox("Answers include", [ANY, *labels], key="review_pair_a")
    second = b_col.selectbox("and", [ANY, *labels], key="review_pair_b")
    pair = None
    if first != ANY and second != ANY:
        if first == second:
            st.warning("Pick two different labels to filter by a pair.")
        else:
            pair = (first, second)
    elif first != ANY or second != ANY:
        st.caption("Pick a second label to filter by the pair.")
    n_col.metric("Waiting", wb.review.count_waiting(project.name, actor))

    cases = wb.review.queue(project.name, actor, label_pair=pair, limit=200)
    if not cases:
        st.success("No disagreements waiting" + (" for this pair." if pair else "."))
        return
    table = pd.DataFrame([{"item": c.external_id, "split": c.split.value, "answers": _answers(c)} for c in cases])
    st.dataframe(table, hide_index=True, key="review_table", height=min(38 + 35 * len(cases), 250))
    ids = [c.item_id for c in cases]
    current = st.session_state.get("review_case")
    index = ids.index(current) if current in ids else 0
    chosen = st.selectbox("Case", range(len(cases)), index=index,
                          format_func=lambda i: f"{cases[i].external_id} ({_answers(cases[i])})",
                          key="review_pick")
    st.session_state["review_case"] = ids[chosen]
    _case_view(wb, project, actor, cases[chosen])


def _agreement_tab(wb, project, actor) -> None:
    try:
        report = wb.agreement.report(project.name, actor)
    except WorkbenchError as exc:
        render.error(exc)
        return
    a, b, c, d = st.columns(4)
    a.metric("Krippendorff's alpha", charts.fmt(report.krippendorff_alpha))
    b.metric("Percent agreement", charts.fmt(report.percent_agreement, percent=True))
    c.metric("Items with two or more answers", report.n_paired_items)
    d.metric("Annotators", report.n_annotators)
    if report.n_paired_items == 0:
        st.info("No item has two answers yet; agreement appears once pairs complete.")

    st.subheader("Cohen's kappa per pair of annotators")
    kappa = pd.DataFrame([{"annotator A": str(k.annotator_a), "annotator B": str(k.annotator_b),
                           "common items": k.n_items, "kappa": k.kappa, "observed": k.observed,
                           "chance": k.expected} for k in report.cohen_kappa])
    if kappa.empty:
        st.caption("No pair of annotators has an item in common yet.")
    else:
        kappa["pair"] = kappa["annotator A"] + " & " + kappa["annotator B"]
        left, right = st.columns(2)
        left.dataframe(kappa.drop(columns="pair"), hide_index=True, key="kappa_table")
        with right:
            charts.bar(kappa, "pair", "kappa", domain=(-1, 1), key="kappa_chart")

    left, right = st.columns(2)
    with left:
        st.subheader("Agreement per label")
        per_label = pd.DataFrame([{"label": k, "agreement": v} for k, v in report.per_label_agreement.items()])
        charts.bar(per_label, "label", "agreement", domain=(0, 1), key="per_label_chart")
        st.dataframe(per_label, hide_index=True, key="per_label_table")
    with right:
        st.subheader("Answer pairs (label × label)")
        charts.heatmap(report.pair_confusion, list(report.labels), "label", "other answer", key="pair_conf")

    st.subheader("Each annotator against adjudicated labels")
    vs = pd.DataFrame([{"annotator": str(name), "adjudicated items": s.n_items, "agreement": s.agreement}
                       for name, s in report.annotator_vs_adjudicated.items()])
    if vs.empty or vs["adjudicated items"].sum() == 0:
        st.caption("No adjudicated item yet.")
    else:
        left, right = st.columns(2)
        left.dataframe(vs, hide_index=True, key="vs_table")
        with right:
            charts.bar(vs.dropna(), "annotator", "agreement", domain=(0, 1), key="vs_chart")


def _history_tab(wb, project, actor) -> None:
    rows = wb.review.history(project.name, actor, limit=200)
    if not rows:
        st.caption("No adjudications yet.")
        return
    st.dataframe(pd.DataFrame([{
        "when (UTC)": r.created_at.strftime("%Y-%m-%d %H:%M"), "item id": r.item_id, "reviewer": r.reviewer,
        "decision": r.decision.value, "label": r.label, "reason": r.reason,
        "before": f"{r.previous_state.value}" + (f" ({r.previous_label})" if r.previous_label else ""),
    } for r in rows]), hide_index=True, key="history_table")


def main() -> None:
    actor = session.require(Role.REVIEWER)
    wb = session.workbench()
    project = session.pick_project(page="review")
    st.header(render.md(f"Review · {project.name}"))
    session.show_flash()
    queue, agreement, history = st.tabs(["Disagreements", "Agreement", "Adjudication history"])
    with queue:
        _queue_tab(wb, project, actor)
    with agreement:
        _agreement_tab(wb, project, actor)
    with history:
        _history_tab(wb, project, actor)


main()
