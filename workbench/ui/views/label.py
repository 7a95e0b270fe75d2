"""Label: one claimed item at a time; answer with a button or the label's key, skip (S), undo (U),
see the key map (?), read the guidelines, and change your own recent labels.

Keys are captured by a small component that sends, with every press, the item that was on screen
and how long it had been shown (workbench/ui/components/keys.py). A press for an item that is no
longer shown, or within the project's minimum dwell time, stores nothing and says so briefly.

The submit callback stores the answer and claims the next item before the page renders, so the
next item appears in the same rerun. Any other interaction renews the lease.
"""

from __future__ import annotations

import time
from dataclasses import replace

import streamlit as st

from workbench.domain import Actor, ClaimedItem, GuidelinesInfo, LabelView, ProjectInfo, Role, Split
from workbench.domain.keys import (
    DEFAULT_MIN_DWELL_MS,
    HELP_KEY,
    SKIP_KEY,
    UNDO_KEY,
    KeyMap,
    key_map,
)
from workbench.errors import Conflict, NotFound, WorkbenchError
from workbench.services import Workbench
from workbench.ui import render, sections, session
from workbench.ui.components.keys import KeyPress, capture
from workbench.ui.state import Shown

STATE = "label_state"  # a Shown
NOTE = "label_note"  # a brief message for a toast (an ignored key press)
HELP = "label_help"  # show the key map
ASK_SKIP = "label_ask_skip"  # the lease id whose skip reason is being asked for
SKIP_REASON = "label_skip_reason"
KEEPALIVE_FIRST = "label_keepalive_first"
RECENT_OPEN = "label_recent"
DEFAULT_SKIP_REASON = "skipped"
SKIP_INPUT = 'input[aria-label="Skip reason (optional)"]'
FULL_RUN = "label_full_run"  # set by a whole-page run; absent when the label area reruns alone
GUIDE = "label_guide"  # the guidelines as read after the last item (the buttons' help)
GUIDE_PROJECT = "label_guide_project"


def _held() -> Shown | None:
    held = st.session_state.get(STATE)
    return held if isinstance(held, Shown) else None


def _store(project: ProjectInfo, found: ClaimedItem | int) -> None:
    """Keep what a claim found: the item, or how many items others hold (0: nothing can come back)."""
    claim = found if isinstance(found, ClaimedItem) else None
    st.session_state[STATE] = Shown(
        project.id, claim, 0 if isinstance(found, ClaimedItem) else int(found), time.monotonic(), fresh=True
    )
    st.session_state.pop(ASK_SKIP, None)


def _actor() -> Actor:
    actor = session.current_actor(refresh=False)
    if actor is None:
        raise WorkbenchError("please sign in again")
    return actor


def _claim_next(project: ProjectInfo) -> None:
    _store(project, session.workbench().queue.claim_or_wait(project.name, actor=_actor()))


def _set_aside(project: ProjectInfo, claim: ClaimedItem, problem: str) -> None:
    """The item cannot be shown: quarantine it (an admin sees why) and move on to the next one."""
    try:
        session.workbench().quarantine.quarantine_claim(claim.lease_id, problem, actor=_actor())
    except WorkbenchError as exc:
        session.flash(str(exc))
        return
    end = "" if problem.endswith((".", "?", "!")) else "."
    session.flash(f"Item {claim.external_id} was set aside for an admin: {problem}{end} Here is the next one.")
    _claim_next(project)
    st.rerun()


def keys_of(project: ProjectInfo) -> KeyMap:
    return key_map(project.offered, project.settings.get("label_keys") or {})


def min_dwell_ms(project: ProjectInfo) -> int:
    return int(project.settings.get("min_dwell_ms", DEFAULT_MIN_DWELL_MS))


# -- callbacks (run before the page renders) --------------------------------------------------
def _on_label(project: ProjectInfo, lease_id: int, label: str) -> None:
    wb = session.workbench()
    try:
        actor = session.checked_actor()
    except WorkbenchError as exc:
        session.flash(str(exc))
        return
    held = _held()
    current = held is not None and held.claim is not None and held.claim.lease_id == lease_id
    duration_ms = int((time.monotonic() - held.shown_at) * 1000) if current and held else None
    try:
        if not current:  # a button of an earlier rendering: store (idempotently), keep what is shown
            wb.queue.submit(lease_id, label, actor=actor, duration_ms=None)
            return
        _, found = wb.queue.submit_and_claim(lease_id, label, actor=actor, duration_ms=duration_ms)
    except Conflict as exc:  # the claim lapsed meanwhile: say so and move on
        session.flash(str(exc))
        _claim_next(project)
        return
    except WorkbenchError as exc:
        session.flash(str(exc))
        return
    _store(project, found)  # the next item, claimed in the same transaction


def _ask_skip(lease_id: int) -> None:
    st.session_state[ASK_SKIP] = lease_id
    st.session_state[SKIP_REASON] = ""


def _on_skip(project: ProjectInfo, lease_id: int) -> None:
    reason = (st.session_state.get(SKIP_REASON) or "").strip() or DEFAULT_SKIP_REASON
    try:
        actor = session.checked_actor()
    except WorkbenchError as exc:  # the session ended: nothing stored, the page asks to sign in
        session.flash(str(exc))
        return
    try:
        session.workbench().queue.skip(lease_id, reason, actor=actor)
    except WorkbenchError as exc:
        session.flash(str(exc))
    st.session_state[SKIP_REASON] = ""
    _claim_next(project)


def _cancel_skip() -> None:
    st.session_state.pop(ASK_SKIP, None)


def _on_undo(project: ProjectInfo) -> None:
    try:
        claim = session.workbench().queue.undo_last(project.name, actor=session.checked_actor())
    except WorkbenchError as exc:
        session.flash(str(exc))
        return
    _store(project, claim)
    session.flash(f"Took back your last label for {claim.external_id}; answer it again.")


def judge_press(press: KeyPress, held: Shown | None, dwell_ms: int) -> str | None:
    """Why a key press for an item must store nothing (None: it may act on the item shown)."""
    if held is None or held.claim is None or press.token != held.claim.lease_id:
        return "Key ignored: it was pressed for an item that is no longer on screen."
    if press.dwell_ms < dwell_ms:
        return (
            f"Key ignored: pressed {max(press.dwell_ms, 0):.0f} ms after the item appeared "
            f"(the minimum is {dwell_ms} ms). Press again."
        )
    return None


def _on_press(project: ProjectInfo, press: KeyPress) -> None:
    """A key from the capture component, bound to the item it was pressed on."""
    if press.key == HELP_KEY:
        st.session_state[HELP] = not st.session_state.get(HELP, False)
        return
    if press.key == UNDO_KEY:
        _on_undo(project)
        return
    held = _held()
    refusal = judge_press(press, held, min_dwell_ms(project))
    if refusal is not None or held is None or held.claim is None:
        st.session_state[NOTE] = refusal
        return
    if press.key == SKIP_KEY:
        _ask_skip(held.claim.lease_id)
        return
    label = keys_of(project).label_of(press.key)
    if label is not None:
        _on_label(project, held.claim.lease_id, label)


def _on_change_label(project: ProjectInfo) -> None:
    choice = st.session_state.get("recent_pick")
    new = st.session_state.get("recent_label")
    if choice is None or new is None:
        return
    try:
        changed = session.workbench().queue.change_label(int(choice), new, actor=session.checked_actor())
    except WorkbenchError as exc:
        session.flash(str(exc))
        return
    session.flash(f"Your label for {changed.external_id} is now {changed.label}.")


# -- the page ---------------------------------------------------------------------------------
def _current_claim(project: ProjectInfo, wb: Workbench, actor: Actor) -> Shown:
    """The claim to show: the held one (renewed unless a callback just claimed it), else a new one."""
    held = _held()
    if held is not None and held.project_id == project.id:
        if held.fresh:
            st.session_state[STATE] = replace(held, fresh=False)
            return held
        if held.claim is not None:
            try:
                expires = wb.queue.renew(held.claim.lease_id, actor=actor)
                held = replace(held, claim=replace(held.claim, expires_at=expires))
                st.session_state[STATE] = held
                return held
            except (Conflict, NotFound):
                session.flash("Your claim on the last item lapsed; here is the next one.")
    _store(project, wb.queue.claim_or_wait(project.name, actor=actor))
    held = _held()
    assert held is not None
    st.session_state[STATE] = replace(held, fresh=False)
    return held


def _keep_alive(project_id: int) -> None:
    """While the page is open, renew the held lease now and then (a closed tab stops renewing, and
    the lease then lapses after the project's lease time) and say until when the item is held."""
    held = _held()
    if held is None or held.project_id != project_id or held.claim is None:
        return
    claim = held.claim
    if st.session_state.pop(KEEPALIVE_FIRST, False):
        expires = claim.expires_at  # the first run follows a claim or renew of this same rerun
    else:
        try:
            expires = session.workbench().queue.renew(claim.lease_id, actor=_actor())
            st.session_state[STATE] = replace(held, claim=replace(claim, expires_at=expires))
        except WorkbenchError:
            st.caption("Your claim on this item has lapsed; your next answer gets a fresh item.")
            return
    st.caption(f"Held for you until {expires:%H:%M} UTC while this page is open.")


def _progress(view: LabelView) -> None:
    stats, counts = view.stats, view.counts
    a, b, c, d = st.columns(4)
    a.metric("My labels today", stats.labels_today)
    b.metric("My labels in total", stats.labels_total)
    c.metric("My skips", stats.skips_total)
    done, total = counts.done(Split.POOL), counts.total(Split.POOL)
    d.metric(
        "Pool items done",
        f"{done} / {total}",
        help="pool items whose labels are complete: agreed, adjudicated or waiting for review",
    )
    st.caption(render.md(" · ".join(render.progress_line(counts, split) for split in ("pool", "eval"))))


def _key_help(keys: KeyMap, dwell: int) -> None:
    lines = [f"`{render.md(k) if k else '—'}` {render.md(label)}" for label, k in keys.keys]
    lines += ["`S` skip (asks for an optional reason)", "`U` undo your last label", "`?` show or hide this map"]
    st.info(
        "**Keys**  \n"
        + "  \n".join(lines)
        + f"  \nA key counts only for the item on screen, and from {dwell} ms after it appeared.",
        icon=":material/keyboard:",
    )


def _label_buttons(project: ProjectInfo, claim: ClaimedItem, keys: KeyMap, guide: GuidelinesInfo | None) -> None:
    """One button per label, in label order at any width (a wrapping row, never columns that stack
    out of order), each naming its key; the label's note is its help."""
    notes = guide.label_notes if guide else {}
    with st.container(horizontal=True, gap="small", key="label_buttons"):
        for i, label in enumerate(claim.labels):
            key = keys.key_of(label)
            text = render.md(label) + (f" ⟨{render.md(key)}⟩" if key and key != label else "")
            st.button(
                text,
                key=f"label_btn_{i}",
                type="primary",
                on_click=_on_label,
                args=(project, claim.lease_id, label),
                help=render.md(notes[label]) if label in notes else None,
                width="content",
            )


def _skip_prompt(project: ProjectInfo, claim: ClaimedItem) -> None:
    with st.form("skip_form", border=True):
        st.text_input("Skip reason (optional)", key=SKIP_REASON, placeholder=DEFAULT_SKIP_REASON, max_chars=500)
        left, right = st.columns(2)
        left.form_submit_button(
            "Skip this item",
            type="primary",
            on_click=_on_skip,
            args=(project, claim.lease_id),
            icon=":material/skip_next:",
        )
        right.form_submit_button("Cancel", on_click=_cancel_skip)
    st.caption("Enter skips; an empty reason is stored as “skipped”.")


def drawn_key(claim: ClaimedItem) -> str:
    """The key of the container that shows the item: the browser counts the dwell time from the
    first frame painted with it (workbench/ui/components/keys.py)."""
    return f"wb_item_{claim.lease_id}"


def _listen(project: ProjectInfo, claim: ClaimedItem | None, keys: KeyMap, asking: bool) -> None:
    """The key capture, bound to the item on screen; the dwell time counts from when the item's
    container was painted in the browser."""
    listen = ([*keys.as_dict(), SKIP_KEY] if claim is not None else []) + [UNDO_KEY, HELP_KEY]
    capture(
        key="label_keys",
        token=claim.lease_id if claim else None,
        keys=[] if asking else listen,
        on_press=lambda press: _on_press(project, press),
        focus=SKIP_INPUT if asking else None,
        drawn=drawn_key(claim) if claim else None,
    )


def _recent(wb: Workbench, project: ProjectInfo, actor: Actor) -> None:
    box = st.expander("My recent labels", key=RECENT_OPEN, on_change="rerun", icon=":material/history:")
    if not box.open:
        return
    with box:
        rows = wb.queue.recent_labels(project, actor=actor, limit=50)
        if not rows:
            st.caption("You have not labeled anything in this project yet.")
            return
        st.dataframe(
            [
                {
                    "item": r.external_id,
                    "your label": r.label,
                    "when (UTC)": f"{r.created_at:%Y-%m-%d %H:%M:%S}",
                    "can change": "yes" if r.changeable else "no (a reviewer acted)",
                }
                for r in rows
            ],
            hide_index=True,
            key="recent_table",
            height=min(38 + 35 * len(rows), 300),
        )
        changeable = {r.annotation_id: r for r in rows if r.changeable}
        if not changeable:
            return
        left, mid, right = st.columns([3, 2, 1], vertical_alignment="bottom")
        left.selectbox(
            "Change the label of",
            list(changeable),
            key="recent_pick",
            format_func=lambda i: f"{changeable[i].external_id} (now {changeable[i].label})",
        )
        mid.selectbox("to", list(project.offered), key="recent_label")
        right.button("Change", key="recent_change", on_click=_on_change_label, args=(project,))


def _label_area(project: ProjectInfo) -> None:
    """Everything a label press changes, run as a fragment: a press (key or button) reruns only
    this, not the navigation, the sidebar and the project picker. The item is drawn as early as the
    rerun allows; the counts and the guidelines are read after it and filled in above and below."""
    wb = session.workbench()
    if not st.session_state.pop(FULL_RUN, False):
        # a rerun of this fragment alone: app.py did not check the session, so check it here
        if session.current_actor() is None:
            st.rerun(scope="app")
    actor = _actor()
    flash_slot = st.container()  # filled once the claim is known (a lapsed claim says so)
    note = st.session_state.pop(NOTE, None)
    if note:
        st.toast(render.md(note), icon=":material/block:")
    keys = keys_of(project)
    dwell = min_dwell_ms(project)
    with st.container():  # always there, so the item below keeps its place in the page
        if st.session_state.get(HELP):
            _key_help(keys, dwell)
    guide_slot = st.container()
    try:
        held = _current_claim(project, wb, actor)
    except WorkbenchError as exc:
        render.error(exc)
        return
    with flash_slot:
        session.show_flash()
    if GUIDE not in st.session_state:  # the first rendering: the buttons' help needs them now
        st.session_state[GUIDE] = wb.guidelines.current(project, actor=actor)
    guide = st.session_state.get(GUIDE)  # as read after the last item; refreshed below
    claim = held.claim
    asking = claim is not None and st.session_state.get(ASK_SKIP) == claim.lease_id

    if claim is None:
        if held.waiting:
            st.info(
                f"Nothing for you at this moment: {held.waiting} item(s) you could still label are claimed "
                "by other annotators. They come back here if skipped or left unanswered; check again shortly."
            )
        else:
            st.success("Nothing left for you in this project. Thank you!")
        st.button("Check again", key="label_check_again")
        st.button("Undo last ⟨U⟩", key="label_undo", on_click=_on_undo, args=(project,), icon=":material/undo:")
        _listen(project, None, keys, False)
    else:
        st.caption(render.md(f"Item {claim.external_id} · {claim.split.value} split · slot {claim.slot}"))
        with st.container(border=True, key=drawn_key(claim)):
            problem = render.render_content(project, claim.content, key=f"label_{claim.lease_id}")
            # the last element of the item: the key capture counts the dwell time from when it is drawn
            with st.container(key=f"wb_drawn_{claim.lease_id}"):
                st.empty()
        if problem is not None:
            _set_aside(project, claim, problem)
        _label_buttons(project, claim, keys, guide if isinstance(guide, GuidelinesInfo) else None)
        if asking:
            _skip_prompt(project, claim)
        else:
            with st.container(horizontal=True, gap="small", key="label_actions"):
                st.button(
                    "Skip ⟨S⟩",
                    key="label_skip",
                    on_click=_ask_skip,
                    args=(claim.lease_id,),
                    icon=":material/skip_next:",
                )
                st.button("Undo last ⟨U⟩", key="label_undo", on_click=_on_undo, args=(project,), icon=":material/undo:")
                st.button(
                    "Keys ⟨?⟩",
                    key="label_keys_help",
                    icon=":material/keyboard:",
                    on_click=lambda: st.session_state.__setitem__(HELP, not st.session_state.get(HELP, False)),
                )
        _listen(project, claim, keys, asking)
        with st.expander("Why this item?"):
            st.text(render.why(claim, project))
    try:
        view = wb.queue.label_view(project, actor=actor)
    except WorkbenchError as exc:
        render.error(exc)
        return
    st.session_state[GUIDE] = view.guidelines
    with guide_slot:
        sections.guidelines_expander(view.guidelines)
    _progress(view)


def main() -> None:
    actor = session.require(Role.ANNOTATOR)
    wb = session.workbench()
    project = session.pick_project(page="label")
    st.header(render.md(f"Label · {project.name}"))
    if st.session_state.get(GUIDE_PROJECT) != project.id:
        st.session_state.pop(GUIDE, None)
        st.session_state[GUIDE_PROJECT] = project.id
    st.session_state[FULL_RUN] = True
    st.fragment(_label_area)(project)
    held = _held()
    if held is not None and held.claim is not None and held.project_id == project.id:
        st.session_state[KEEPALIVE_FIRST] = True
        ttl = float(project.settings.get("lease_ttl_s", 600))
        st.fragment(_keep_alive, run_every=max(15.0, min(120.0, ttl / 3)))(project.id)
    _recent(wb, project, actor)


main()
