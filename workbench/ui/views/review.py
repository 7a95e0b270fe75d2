"""Review: the disagreement queue with every answer side by side, adjudication with a reason,
and the agreement dashboard (kappa per pair, alpha, per-label agreement, annotators vs adjudication)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench.domain import Decision, ProjectInfo, ReviewCase, Role, role_allows
from workbench.domain.keys import AMBIGUOUS_KEY, EXCLUDE_KEY, KeyMap, key_map
from workbench.errors import WorkbenchError
from workbench.ui import charts, render, sections, session
from workbench.ui.components.keys import KeyPress, capture

ANY = "(any label)"
DECISIONS = {
    Decision.LABEL: "Choose a label",
    Decision.AMBIGUOUS: "Ambiguous",
    Decision.EXCLUDED: "Exclude",
}
HOTKEYS = {Decision.AMBIGUOUS: "A", Decision.EXCLUDED: "X"}
PICK = "review_pick"  # the item id the case selector names; the page always shows that case
ERROR = "review_error"
REASON_INPUT = 'input[aria-label="Reason (required, kept in the audit log)"]'


def _answers(case: ReviewCase) -> str:
    return " · ".join(f"{a.annotator}: {a.label}" for a in case.answers)


def _keys(project: ProjectInfo) -> KeyMap:
    return key_map(project.offered, project.settings.get("label_keys") or {})


def _fields(item_id: int) -> tuple[str, str, str]:
    return f"adj_decision_{item_id}", f"adj_label_{item_id}", f"adj_reason_{item_id}"


def _adjudicate(project: ProjectInfo, case: ReviewCase, following: int | None, reason: str | None = None) -> None:
    """Confirm the decision (button or Enter): settle the case and show the next one, named by the
    selector before the page renders."""
    decision_key, label_key, reason_key = _fields(case.item_id)
    decision = st.session_state.get(decision_key)
    label = st.session_state.get(label_key)
    if decision is None:
        st.session_state[ERROR] = "Choose a decision first: a label, ambiguous or exclude."
        return
    if decision == Decision.LABEL and label is None:
        st.session_state[ERROR] = "Choose the label."
        return
    try:
        actor = session.signed_in_actor()
        info = session.workbench().review.adjudicate(
            case.item_id,
            decision,
            actor=actor,
            label=label if decision == Decision.LABEL else None,
            reason=reason if reason is not None else (st.session_state.get(reason_key) or ""),
        )
    except WorkbenchError as exc:
        st.session_state[ERROR] = str(exc)
        return
    outcome = info.label if info.decision == Decision.LABEL else info.decision.value
    session.flash(f"Item {case.external_id} settled: {outcome}.")
    if following is not None:
        st.session_state[PICK] = following
    else:
        st.session_state.pop(PICK, None)


def _on_press(project: ProjectInfo, case: ReviewCase, following: int | None, press: KeyPress) -> None:
    if press.token != case.item_id:
        st.session_state[ERROR] = "Key ignored: it was pressed for a case that is no longer on screen."
        return
    decision_key, label_key, _ = _fields(case.item_id)
    if press.key == "enter":  # from the reason box, the press carries what it held
        _adjudicate(project, case, following, press.text)
        return
    if press.key == AMBIGUOUS_KEY:
        st.session_state[decision_key] = Decision.AMBIGUOUS
    elif press.key == EXCLUDE_KEY:
        st.session_state[decision_key] = Decision.EXCLUDED
    elif (label := _keys(project).label_of(press.key)) is not None:
        st.session_state[decision_key] = Decision.LABEL
        st.session_state[label_key] = label


def _case_view(wb, project: ProjectInfo, actor, case: ReviewCase, following: int | None, item_col, decide_col) -> None:
    keys = _keys(project)
    decision_key, label_key, reason_key = _fields(case.item_id)
    with item_col:
        st.caption(render.md(f"Item {case.external_id} · {case.split.value} split · {case.state.value}"))
        with st.container(border=True):
            render.render_content(project, case.content, key=f"review_{case.item_id}")
        with st.container(horizontal=True, gap="small"):
            for answer in case.answers:
                with st.container(border=True, width="stretch"):
                    st.text(f"Annotator: {answer.annotator}")
                    st.text(f"Label: {answer.label}")
                    seconds = f"{answer.duration_ms / 1000:.1f} s" if answer.duration_ms is not None else "unknown"
                    st.text(f"Time taken: {seconds} · {answer.created_at:%Y-%m-%d %H:%M} UTC")
        if case.reason:
            st.text(f"Why it is here: {case.reason}")
        if case.suggestion is not None:  # a suggestion only: the label box never preselects it
            st.text(f"Dawid–Skene suggests: {case.suggestion} (posterior {case.suggestion_p:.2f}); decide for yourself")
        skips = wb.review.skips(project.name, actor=actor, external_id=case.external_id, limit=20)
        if skips:
            st.caption(
                "Skipped by: "
                + " · ".join(render.md(f"{s.annotator} ({s.at:%Y-%m-%d %H:%M} UTC): {s.reason}") for s in skips)
            )
    with decide_col:
        decisions = list(DECISIONS)
        st.radio(
            "Decision",
            decisions,
            index=None,
            key=decision_key,
            horizontal=True,
            format_func=lambda d: DECISIONS[d] + (f" ⟨{HOTKEYS[d]}⟩" if d in HOTKEYS else ""),
        )
        labels = list(project.offered)  # a retired label is not offered for a new decision
        st.selectbox(
            "Label (when choosing a label)",
            labels,
            index=None,
            key=label_key,
            placeholder="press a label's key or choose",
            format_func=lambda x: x + (f" ⟨{keys.key_of(x)}⟩" if keys.key_of(x) not in (None, x) else ""),
        )
        st.text_input(
            "Reason (required, kept in the audit log)", key=reason_key, max_chars=2000, placeholder="why this decision"
        )
        st.button(
            "Adjudicate ⟨Enter⟩",
            type="primary",
            key=f"adjudicate_{case.item_id}",
            on_click=_adjudicate,
            args=(project, case, following),
        )
        error_slot = st.container()  # always there: the caption below keeps its place
        error = st.session_state.pop(ERROR, None)
        if error:
            with error_slot:
                render.error(error)
        st.caption(
            "Keys: "
            + ", ".join(render.md(f"{k} {label}") for label, k in keys.keys if k)
            + "; A ambiguous; X exclude; Enter confirms (also from the reason box)."
        )
    # Once a decision is chosen the reason box holds the focus (a decision key focuses it in the
    # browser at once), so what is typed next is the reason and Enter confirms.
    capture(
        key="review_keys",
        token=case.item_id,
        keys=[*keys.as_dict(), AMBIGUOUS_KEY, EXCLUDE_KEY, "enter"],
        on_press=lambda press: _on_press(project, case, following, press),
        focus=REASON_INPUT if st.session_state.get(decision_key) is not None else None,
        focus_on_press=REASON_INPUT,
        enter_inside=REASON_INPUT,
    )


def _pair(labels: list[str]) -> tuple[tuple[str, str] | None, str | None]:
    """The label-pair filter as the widgets below the case hold it, and a hint if it is incomplete."""
    first = st.session_state.get("review_pair_a", ANY)
    second = st.session_state.get("review_pair_b", ANY)
    if first != ANY and second != ANY:
        if first == second:
            return None, "Pick two different labels to filter by a pair."
        return (first, second), None
    if first != ANY or second != ANY:
        return None, "Pick a second label to filter by the pair."
    return None, None


def _queue_tab(wb, project: ProjectInfo, actor) -> None:
    labels = list(project.labels)
    pair, hint = _pair(labels)
    cases = wb.review.queue(project.name, actor=actor, label_pair=pair, limit=200)
    if not cases:
        st.success("No disagreements waiting" + (" for this pair." if pair else "."))
    else:
        by_id = {c.item_id: c for c in cases}
        ids = list(by_id)
        if st.session_state.get(PICK) not in by_id:  # settled elsewhere, filtered out, or first visit
            st.session_state[PICK] = ids[0]
        waiting = len(cases) if len(cases) < 200 else wb.review.count_waiting(project.name, actor=actor)
        item_col, decide_col = st.columns([3, 2], gap="medium")
        chosen = item_col.selectbox(
            "Case",
            ids,
            key=PICK,
            help=f"{waiting} case(s) waiting",
            format_func=lambda i: f"{by_id[i].external_id} ({_answers(by_id[i])})",
        )
        position = ids.index(chosen)
        following = ids[position + 1] if position + 1 < len(ids) else (ids[position - 1] if position else None)
        _case_view(wb, project, actor, by_id[chosen], following, item_col, decide_col)
    # the filter and the full list sit below the case, so the decision stays above the fold
    with st.expander("Filter by a pair of labels, and the list of cases", expanded=pair is not None or bool(hint)):
        a_col, b_col, n_col = st.columns([2, 2, 1])
        a_col.selectbox("Answers include", [ANY, *labels], key="review_pair_a")
        b_col.selectbox("and", [ANY, *labels], key="review_pair_b")
        n_col.metric("Waiting", wb.review.count_waiting(project.name, actor=actor))
        if hint and "different" in hint:
            st.warning(hint)
        elif hint:
            st.caption(hint)
        if cases:
            st.dataframe(
                pd.DataFrame([{"item": c.external_id, "split": c.split.value, "answers": _answers(c)} for c in cases]),
                hide_index=True,
                key="review_table",
                height=min(38 + 35 * len(cases), 250),
            )


def _agreement_tab(wb, project, actor) -> None:
    try:
        report = wb.agreement.report(project.name, actor=actor)
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
    kappa = pd.DataFrame(
        [
            {
                "annotator A": str(k.annotator_a),
                "annotator B": str(k.annotator_b),
                "common items": k.n_items,
                "kappa": k.kappa,
                "observed": k.observed,
                "chance": k.expected,
            }
            for k in report.cohen_kappa
        ]
    )
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
    vs = pd.DataFrame(
        [
            {"annotator": str(name), "adjudicated items": s.n_items, "agreement": s.agreement}
            for name, s in report.annotator_vs_adjudicated.items()
        ]
    )
    if vs.empty or vs["adjudicated items"].sum() == 0:
        st.caption("No adjudicated item yet.")
    else:
        left, right = st.columns(2)
        left.dataframe(vs, hide_index=True, key="vs_table")
        with right:
            charts.bar(vs.dropna(), "annotator", "agreement", domain=(0, 1), key="vs_chart")


def _history_tab(wb, project, actor) -> None:
    rows = wb.review.history(project.name, actor=actor, limit=200)
    if not rows:
        st.caption("No adjudications yet.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when (UTC)": r.created_at.strftime("%Y-%m-%d %H:%M"),
                    "item": r.external_id,
                    "reviewer": r.reviewer,
                    "decision": r.decision.value,
                    "label": r.label,
                    "reason": r.reason,
                    "before": f"{r.previous_state.value}" + (f" ({r.previous_label})" if r.previous_label else ""),
                }
                for r in rows
            ]
        ),
        hide_index=True,
        key="history_table",
    )


def main() -> None:
    actor = session.require(Role.REVIEWER)
    wb = session.workbench()
    project = session.pick_project(page="review")
    st.header(render.md(f"Review · {project.name}"))
    session.show_flash()
    sections.guidelines_expander(wb.guidelines.current(project, actor=actor))
    names = ["Disagreements", "Agreement", "Adjudication history", "Skips"]
    admin = role_allows(actor.role, Role.ADMIN)
    # Only the open tab runs: a key press on a case reruns the case, not the agreement charts.
    tabs = st.tabs(names + (["Guidelines"] if admin else []), key="review_tabs", on_change="rerun")
    views = [
        lambda: _queue_tab(wb, project, actor),
        lambda: _agreement_tab(wb, project, actor),
        lambda: _history_tab(wb, project, actor),
        lambda: sections.skip_reasons(wb, project, actor),
        lambda: sections.guidelines_editor(wb, project, actor),
    ]
    for tab, view in zip(tabs, views, strict=False):
        if tab.open is not False:
            with tab:
                view()


main()
