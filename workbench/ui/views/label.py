"""Label: one claimed item at a time; answer with a button or keys 1-9, skip (S), undo (U).

The submit callback stores the answer and claims the next item before the page renders, so the
next item appears in the same rerun. Any other interaction renews the lease.
"""

from __future__ import annotations

import time
from dataclasses import replace

import streamlit as st

from workbench.domain import ClaimedItem, Role
from workbench.errors import Conflict, NotFound, WorkbenchError
from workbench.ui import render, session

CLAIM = "label_claim"  # (project name, ClaimedItem or None, monotonic time it was shown)
WAITING = "label_waiting"  # with no claim: items other annotators hold that may come back to this one
FRESH = "label_fresh"  # set by a callback that just claimed: no renew in this rerun
SKIP_REASON = "label_skip_reason"
DEFAULT_SKIP_REASON = "skipped"
MAX_SHORTCUTS = 9


def _store(project: str, found: ClaimedItem | int) -> None:
    """Keep what a claim found: the item, or how many items others hold (0: nothing can come back)."""
    claim = found if isinstance(found, ClaimedItem) else None
    st.session_state[CLAIM] = (project, claim, time.monotonic())
    st.session_state[WAITING] = 0 if claim is not None else found
    st.session_state[FRESH] = True


def _claim_next(project: str) -> None:
    actor = session.current_actor(refresh=False)
    _store(project, session.workbench().queue.claim_or_wait(project, actor))


def _on_label(project: str, lease_id: int, label: str) -> None:
    wb, actor = session.workbench(), session.current_actor(refresh=False)
    held = st.session_state.get(CLAIM)
    shown_at = held[2] if held and held[1] is not None and held[1].lease_id == lease_id else None
    duration_ms = int((time.monotonic() - shown_at) * 1000) if shown_at is not None else None
    try:
        result = wb.queue.submit(lease_id, label, actor, duration_ms=duration_ms)
    except Conflict as exc:  # the claim lapsed meanwhile: say so and move on
        session.flash(str(exc))
        _claim_next(project)
        return
    except WorkbenchError as exc:
        session.flash(str(exc))
        return
    if result.duplicate and (held is None or held[1] is None or held[1].lease_id != lease_id):
        return  # a repeated press for an item already answered: keep the item on screen
    _claim_next(project)


def _on_skip(project: str, lease_id: int) -> None:
    wb, actor = session.workbench(), session.current_actor(refresh=False)
    reason = (st.session_state.get(SKIP_REASON) or "").strip() or DEFAULT_SKIP_REASON
    try:
        wb.queue.skip(lease_id, actor, reason)
    except WorkbenchError as exc:
        session.flash(str(exc))
    st.session_state[SKIP_REASON] = ""
    _claim_next(project)


def _on_undo(project: str) -> None:
    wb, actor = session.workbench(), session.current_actor(refresh=False)
    try:
        claim = wb.queue.undo_last(project, actor)
    except WorkbenchError as exc:
        session.flash(str(exc))
        return
    _store(project, claim)
    session.flash(f"Took back your last label for {claim.external_id}; answer it again.")


def _current_claim(project: str, wb, actor) -> ClaimedItem | None:
    """The claim to show: the held one (renewed unless a callback just claimed it), else a new one."""
    held = st.session_state.get(CLAIM)
    fresh = st.session_state.pop(FRESH, False)
    if held is not None and held[0] == project:
        claim = held[1]
        if claim is None:
            if fresh:
                return None  # the callback just found nothing left
        elif fresh:
            return claim
        else:
            try:
                claim = replace(claim, expires_at=wb.queue.renew(claim.lease_id, actor))
                st.session_state[CLAIM] = (project, claim, held[2])
                return claim
            except (Conflict, NotFound):
                session.flash("Your claim on the last item lapsed; here is the next one.")
    _store(project, wb.queue.claim_or_wait(project, actor))
    st.session_state.pop(FRESH, None)
    return st.session_state[CLAIM][1]


def _keep_alive(project_name: str) -> None:
    """While the page is open, renew the held lease now and then (a closed tab stops renewing, and
    the lease then lapses after the project's lease time) and say until when the item is held."""
    held = st.session_state.get(CLAIM)
    if not held or held[0] != project_name or held[1] is None:
        return
    claim = held[1]
    if st.session_state.pop(FRESH + "_keepalive", True):
        expires = claim.expires_at  # the first run follows a claim or renew of this same rerun
    else:
        try:
            expires = session.workbench().queue.renew(claim.lease_id, session.current_actor(refresh=False))
            st.session_state[CLAIM] = (held[0], replace(claim, expires_at=expires), held[2])
        except WorkbenchError:
            st.caption("Your claim on this item has lapsed; your next answer gets a fresh item.")
            return
    st.session_state[FRESH + "_keepalive"] = False
    st.caption(f"Held for you until {expires:%H:%M} UTC while this page is open.")


def _progress(wb, project, actor) -> None:
    stats = wb.queue.my_stats(project.name, actor)
    counts = wb.projects.progress(project.name)
    a, b, c, d = st.columns(4)
    a.metric("My labels today", stats.labels_today)
    b.metric("My labels in total", stats.labels_total)
    c.metric("My skips", stats.skips_total)
    pool = counts.get("pool", {})
    total = sum(pool.values())
    done = total - pool.get("open", 0)
    d.metric("Pool items done", f"{done} / {total}",
             help="pool items whose labels are complete: agreed, adjudicated or waiting for review")
    st.caption(render.md(" · ".join(render.progress_line(counts, split) for split in ("pool", "eval"))))


def main() -> None:
    actor = session.require(Role.ANNOTATOR)
    wb = session.workbench()
    project = session.pick_project(page="label")
    st.header(render.md(f"Label · {project.name}"))
    try:
        claim = _current_claim(project.name, wb, actor)
    except WorkbenchError as exc:
        render.error(exc)
        st.stop()
    session.show_flash()

    if claim is None:
        held = st.session_state.get(WAITING, 0)
        if held:
            st.info(f"Nothing for you at this moment: {held} item(s) you could still label are claimed by "
                    "other annotators. They come back here if skipped or left unanswered; check again shortly.")
        else:
            st.success("Nothing left for you in this project. Thank you!")
        st.button("Check again", key="label_check_again")
        st.button("Undo last", key="label_undo", shortcut="U", on_click=_on_undo,
                  args=(project.name,), icon=":material/undo:")
        _progress(wb, project, actor)
        return

    st.caption(render.md(f"Item {claim.external_id} · {claim.split.value} split · slot {claim.slot}"))
    with st.container(border=True):
        render.render_content(project, claim.content, key=f"label_{claim.lease_id}")

    cols = st.columns(min(len(claim.labels), MAX_SHORTCUTS) or 1)
    for i, label in enumerate(claim.labels):
        shortcut = str(i + 1) if i < MAX_SHORTCUTS else None
        with cols[i % len(cols)]:
            st.button(render.md(label), key=f"label_btn_{i}", shortcut=shortcut, type="primary",
                      on_click=_on_label, args=(project.name, claim.lease_id, label),
                      width="stretch")

    skip_col, reason_col, undo_col = st.columns([1, 3, 1])
    with reason_col:
        st.text_input("Skip reason", key=SKIP_REASON, placeholder=DEFAULT_SKIP_REASON,
                      label_visibility="collapsed")
    with skip_col:
        st.button("Skip", key="label_skip", shortcut="S", on_click=_on_skip,
                  args=(project.name, claim.lease_id), icon=":material/skip_next:", width="stretch")
    with undo_col:
        st.button("Undo last", key="label_undo", shortcut="U", on_click=_on_undo,
                  args=(project.name,), icon=":material/undo:", width="stretch")

    with st.expander("Why this item?"):
        st.text(render.why(claim))
    st.session_state[FRESH + "_keepalive"] = True
    ttl = float(project.settings.get("lease_ttl_s", 600))
    st.fragment(_keep_alive, run_every=max(15.0, min(120.0, ttl / 3)))(project.name)
    _progress(wb, project, actor)


main()
