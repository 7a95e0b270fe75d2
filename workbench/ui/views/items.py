"""Items (reviewers and admins): find items by state, split, label, annotator, disagreement, skip
reason, health flag, the latest model's prediction and confidence, or words in the text; page
through them; export what is filtered; open one item's whole history."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench.domain import Role, Split
from workbench.errors import WorkbenchError
from workbench.services.browse import PAGE_SIZE, BrowseFilter, BrowseState, PredictionSource, SortKey
from workbench.ui import render, session

STATE_NAMES = {
    BrowseState.OPEN: "open",
    BrowseState.PARTLY_LABELED: "partly labeled",
    BrowseState.FINAL: "final",
    BrowseState.REVIEW: "in review",
    BrowseState.AMBIGUOUS: "ambiguous",
    BrowseState.EXCLUDED: "excluded",
    BrowseState.QUARANTINED: "quarantined",
}
FLAGS = {
    "duplicate": "duplicate",
    "near_duplicate": "near duplicate",
    "leakage": "pool/eval leakage",
    "outlier": "outlier",
    "pii": "personal data",
}
SORTS = {
    SortKey.ID: "import order",
    SortKey.EXTERNAL_ID: "item id",
    SortKey.STATE: "state",
    SortKey.LABELS: "number of labels",
}
PREDICTION_SOURCES = {
    PredictionSource.LATEST: "latest run (scored items)",
    PredictionSource.EVAL: "eval split",
    PredictionSource.STOP: "stop set",
}
OFFSET = "items_offset"
SHOWN = "items_shown"


def _filters(project) -> BrowseFilter:
    a, b, c, d = st.columns(4)
    state = a.selectbox(
        "State", [None, *STATE_NAMES], format_func=lambda s: "any" if s is None else STATE_NAMES[s], key="items_state"
    )
    split = b.selectbox(
        "Split", [None, *Split], format_func=lambda s: "any" if s is None else s.value, key="items_split"
    )
    label = c.selectbox(
        "Final label", [None, *project.labels], format_func=lambda s: "any" if s is None else s, key="items_label"
    )
    flag = d.selectbox(
        "Health flag", [None, *FLAGS], format_func=lambda s: "any" if s is None else FLAGS[s], key="items_flag"
    )
    e, f, g, h = st.columns([3, 2, 2, 2])
    search = e.text_input("Words in the text", key="items_search", placeholder="all words must occur")
    annotator = f.text_input("Labeled by (user name)", key="items_annotator")
    skip = g.text_input("Skip reason", key="items_skip", placeholder="any skip: *")
    sort = h.selectbox("Sort by", list(SORTS), format_func=lambda s: SORTS[s], key="items_sort")
    k, m, i, j = st.columns([2, 3, 2, 2], vertical_alignment="bottom")
    predicted = k.selectbox(
        "Model predicts",
        [None, *project.labels],
        format_func=lambda s: "any" if s is None else s,
        key="items_predicted",
        help="the latest model run's predicted label (items it has scored)",
    )
    low, high = m.slider(
        "Model confidence",
        0.0,
        1.0,
        (0.0, 1.0),
        step=0.01,
        key="items_confidence",
        help="the latest model run's largest class probability",
    )
    disagreement = i.checkbox("Labels disagree", key="items_disagree")
    descending = j.checkbox("Descending", key="items_desc")
    skip_reason = None if not skip.strip() else ("" if skip.strip() == "*" else skip.strip())
    return BrowseFilter(
        state=state,
        split=split,
        final_label=label,
        annotator=annotator.strip() or None,
        disagreement=disagreement,
        skip_reason=skip_reason,
        flag=flag,
        search=search if search.strip() else None,
        predicted_label=predicted,
        confidence_min=low if low > 0.0 else None,
        confidence_max=high if high < 1.0 else None,
        sort=sort,
        descending=descending,
    )


def _detail(wb, actor, project, external_id: str) -> None:
    try:
        item = wb.browse.detail(project.name, external_id, actor=actor)
    except WorkbenchError as exc:
        render.error(exc)
        return
    st.subheader(render.md(f"Item {item.external_id}"))
    st.caption(
        render.md(
            f"{item.split.value} split · {item.state.value}"
            + (f" · final label {item.final_label}" if item.final_label else "")
        )
    )
    with st.container(border=True):
        render.render_content(project, item.content, key=f"items_detail_{item.item_id}")
    for kind, reason in item.flags:
        st.caption(render.md(f"Health flag ({FLAGS.get(kind, kind)}): {reason}"))
    tabs = st.tabs(["Annotations", "Claims and skips", "Adjudications", "Model predictions", "Audit trail"])
    with tabs[0]:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "annotator": a.annotator or "(prelabel)",
                        "label": a.label,
                        "source": a.source.value,
                        "at": a.at,
                        "seconds": (a.duration_ms or 0) / 1000,
                    }
                    for a in item.annotations
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    with tabs[1]:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "annotator": lease.annotator,
                        "state": lease.state,
                        "served as": lease.reason,
                        "claimed": lease.claimed_at,
                        "closed": lease.closed_at,
                        "skip reason": lease.skip_reason,
                    }
                    for lease in item.leases
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    with tabs[2]:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "reviewer": a.reviewer,
                        "decision": a.decision,
                        "label": a.label,
                        "reason": a.reason,
                        "before": f"{a.previous_state} {a.previous_label or ''}",
                        "at": a.at,
                    }
                    for a in item.adjudications
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    with tabs[3]:
        if not item.predictions:
            st.caption("No model run has predicted this item yet.")
        else:
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "model run": p.model_run_id,
                            "trained": p.at,
                            "kept as": PREDICTION_SOURCES[p.source],
                            "predicted": p.label,
                            "confidence": p.confidence,
                        }
                        for p in item.predictions
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
    with tabs[4]:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "at": e.at,
                        "action": e.action,
                        "by": e.actor or "operator",
                        "details": ", ".join(f"{k}={v}" for k, v in e.details.items()),
                    }
                    for e in item.audit
                ]
            ),
            hide_index=True,
            width="stretch",
        )


def main() -> None:
    actor = session.require(Role.REVIEWER)
    wb = session.workbench()
    project = session.pick_project(page="items")
    st.header(render.md(f"Items · {project.name}"))
    filters = _filters(project)
    if st.session_state.get(SHOWN) != filters:  # a new filter starts at the first page
        st.session_state[SHOWN] = filters
        st.session_state[OFFSET] = 0
    offset = int(st.session_state.get(OFFSET, 0))
    try:
        page = wb.browse.page(project.name, actor=actor, filters=filters, offset=offset, limit=PAGE_SIZE)
    except WorkbenchError as exc:
        render.error(exc)
        st.stop()
    total = f"more than {page.total:,}" if page.more_than_total else f"{page.total:,}"
    st.caption(f"{total} matching item(s); showing {offset + 1 if page.rows else 0}–{offset + len(page.rows)}")
    frame = pd.DataFrame(
        [
            {
                "item": r.external_id,
                "split": r.split.value,
                "state": r.state.value,
                "final label": r.final_label or "",
                "labels": r.n_labels,
                "predicted": r.predicted_label or "",
                "confidence": r.confidence,
                "content": r.preview,
            }
            for r in page.rows
        ]
    )
    picked = st.dataframe(
        frame, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row", key="items_table"
    )
    prev, nxt, export, _ = st.columns([1, 1, 2, 4])
    if prev.button("Previous", disabled=offset == 0, key="items_prev", icon=":material/chevron_left:"):
        st.session_state[OFFSET] = max(0, offset - PAGE_SIZE)
        st.rerun()
    more = offset + len(page.rows) < page.total or page.more_than_total
    if nxt.button("Next", disabled=not more, key="items_next", icon=":material/chevron_right:"):
        st.session_state[OFFSET] = offset + PAGE_SIZE
        st.rerun()
    export.download_button(
        "Export these as CSV",
        key="items_export",
        mime="text/csv",
        file_name=f"{project.name}-items.csv",
        icon=":material/download:",
        data=lambda: wb.browse.export_csv(project.name, actor=actor, filters=filters),
    )
    rows = picked.selection.rows if picked is not None else []
    if rows:
        _detail(wb, actor, project, page.rows[rows[0]].external_id)
    else:
        st.caption("Select a row to see the item's whole history.")


main()
