"""Key capture bound to the item on screen (a Streamlit custom component, v2 API).

`st.button(shortcut=...)` cannot say which item a key was pressed on: a press that arrives while
the next item is being drawn would answer that next item. This component listens on the page,
and every press it sends carries the token of the item that was on screen (the lease id), the
client time the item was drawn and the client time of the press. The server then checks both:
a press for an item no longer shown, or within the minimum dwell time, stores nothing.

Presses typed into a text box or text area, or into an open select box, are left alone; a closed
select box that kept focus after a choice (the sidebar's project picker) does not swallow them. Held-down keys (auto
repeat) and presses with Ctrl/Alt/Meta are ignored. The JavaScript holds one document listener for
the whole browser tab; each render updates the token and key map it reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import streamlit as st

_JS = r"""
export default function(component) {
  const { data, setStateValue } = component;
  const w = window;
  const now = () => performance.timeOrigin + performance.now();
  if (!w.__wbKeys) {
    w.__wbKeys = { seq: 0, token: null, drawnAt: 0, keys: {}, send: null, want: null, suspended: null, log: [],
                   sid: Math.random().toString(36).slice(2), drawnSel: null, painted: new Map() };
    // When each item was drawn: the first painted frame in which its container (the element the
    // page names by `drawn`) is in the document with its content (and its images loaded). Kept for
    // every such container, so an item drawn before this component hears of it still counts from
    // its own drawing, not from when the component received it.
    const seenPaint = () => {
      const s = w.__wbKeys;
      document.querySelectorAll('[class*="st-key-wb_item_"]').forEach((el) => {
        const name = [...el.classList].find((c) => c.startsWith("st-key-wb_item_"));
        if (!name || s.painted.has(name) || el.closest('[data-stale="true"]')) return;
        // the page draws a marker naming the lease as the container's last element: until it is
        // there, the container may still hold the previous item's content (Streamlit swaps the
        // key's class before the content deltas arrive)
        const lease = name.slice("st-key-wb_item_".length);
        if (!el.querySelector(".st-key-wb_drawn_" + lease)) return;
        if ([...el.querySelectorAll("img")].some((img) => !img.complete)) return;
        s.painted.set(name, null);  // in the document now; painted with the next frame
        requestAnimationFrame(() => {
          s.painted.set(name, now());
          if (s.painted.size > 200) s.painted.delete(s.painted.keys().next().value);
          s.settle();
        });
      });
    };
    w.__wbKeys.settle = () => {
      const s = w.__wbKeys;
      if (s.drawnAt === null && s.drawnSel && s.painted.get(s.drawnSel)) s.drawnAt = s.painted.get(s.drawnSel);
    };
    w.__wbKeys.seenPaint = seenPaint;
    new MutationObserver(seenPaint).observe(document, { subtree: true, childList: true, attributes: true,
                                                        attributeFilter: ["data-stale"] });
    document.addEventListener("load", seenPaint, true);  // an image of the item finished loading
    // The box that is to keep the focus (s.want) gets it back when a re-render takes it away
    // (focus dropped to nothing); a click or Tab elsewhere moves it for good.
    document.addEventListener("focusout", (e) => {
      if (w.__wbKeys.want && e.relatedTarget === null) setTimeout(() => w.__wbKeys.hold(false), 0);
    }, true);
    document.addEventListener("keydown", (e) => {
      const s = w.__wbKeys;
      if (!s.send || e.repeat || e.ctrlKey || e.altKey || e.metaKey || e.isComposing) return;
      const t = e.target;
      const tag = t && t.tagName ? t.tagName.toLowerCase() : "";
      const idle = !t || t === document.body || t === document.documentElement;
      if (s.want && e.key === "Escape") {
        // Escape gives the keys back to the page: the box is not refocused for this item
        s.suspended = { sel: s.want.sel, token: s.token };
        s.want = null;
        if (t && t.blur && !idle) t.blur();
        return;
      }
      if (s.want && idle && e.key.length === 1 && s.hold(true)) {
        // A letter typed while the box that should hold the focus had lost it (a re-render took
        // it): it goes into that box, as the person meant, and is not a key for the item.
        return;
      }
      let key = e.key;
      if (key === "Enter") key = "enter";
      else if (key.length === 1) key = key.toLowerCase();
      else return;
      if (!(key in s.keys)) return;
      // A closed select box keeps focus after a choice (the sidebar's project picker): keys then
      // answer the item instead of starting a search in it.
      const closedSelect = t && t.getAttribute && t.getAttribute("role") === "combobox"
        && t.getAttribute("aria-expanded") !== "true";
      const typing = !closedSelect
        && (tag === "input" || tag === "textarea" || tag === "select" || (t && t.isContentEditable));
      if (closedSelect && key !== "enter") t.blur();
      const pressedAt = now();
      // not drawn yet: a press now is one made 0 ms after the item appeared (refused by the dwell)
      const press = { token: s.token, key: key, drawn_at: s.drawnAt === null ? pressedAt : s.drawnAt,
                      pressed_at: pressedAt, seq: 0 };
      if (typing) {
        // Enter in the one box named by enter_inside confirms, after the box has committed its text
        if (key !== "enter" || !s.enterInside || !t.matches || !t.matches(s.enterInside)) return;
        press.text = t.value;  // what the box holds now, whether or not it has committed it yet
        setTimeout(() => { s.seq += 1; press.seq = s.seq; s.push(press); }, 80);
        return;
      }
      e.preventDefault();
      e.stopPropagation();
      s.seq += 1;
      press.seq = s.seq;
      if (key === "enter" && s.enterInside) {
        const box = s.visible(s.enterInside);  // Enter outside the box confirms what the box holds
        if (box) press.text = box.value;
      }
      if (key !== "enter" && s.focusOnPress) {
        // focused at once, before the server answers: what is typed next goes into the box
        s.want = { sel: s.focusOnPress, token: s.token, seq: press.seq };
        s.suspended = null;
        s.hold(true);
      }
      s.push(press);
    }, true);
  }
  const s = w.__wbKeys;
  // A render older than one already seen (a stale copy Streamlit keeps for a moment) changes nothing.
  const rev = (data && data.rev) || 0;
  if (rev < (s.rev || 0)) return () => {};
  s.rev = rev;
  const token = data && data.token !== undefined ? data.token : null;
  if (token !== s.token) {
    s.token = token;
    // a new item: a box that kept the focus from the last one (a reason typed there, a select
    // box just chosen in) gives it up, so the keys answer the new item at once
    const a = document.activeElement;
    if (a && a.blur && a !== document.body && a.getAttribute && a.getAttribute("aria-expanded") !== "true") a.blur();
    s.drawnSel = data && data.drawn ? "st-key-" + data.drawn : null;
    if (s.drawnSel) {
      s.drawnAt = null;  // set by the paint watch above, from the item's own drawing
      // a container already in the page before this component watched it (after a reload, the
      // item is drawn before the component mounts) counts from the next frame painted from now
      s.seenPaint();
      s.settle();
    } else {
      // no container named: the item counts as drawn from the next frame painted after this render
      s.drawnAt = now();
      requestAnimationFrame(() => { if (s.token === token) s.drawnAt = now(); });
    }
  }
  s.keys = (data && data.keys) || {};
  s.enterInside = (data && data.enter_inside) || null;
  // Every press is kept in a short log sent as the component's state: presses that arrive while
  // the server is busy are all delivered (a trigger value would keep only the last one).
  const send = setStateValue;
  s.send = send;
  s.push = (press) => {
    if (!s.send) return;
    s.log.push(press);
    if (s.log.length > 40) s.log.shift();
    s.send("presses", { sid: s.sid, items: s.log.slice() });
  };
  s.focusOnPress = (data && data.focus_on_press) || null;
  // The visible match (a copy of the page kept from an earlier render may hold a hidden twin).
  s.visible = (selector) =>
    [...document.querySelectorAll(selector)].reverse().find((x) => x.offsetParent !== null) || null;
  // Give the focus to the wanted box: always (force), or only if the focus is on nothing.
  s.hold = (force) => {
    const want = s.want;
    if (!want || want.token !== s.token) return false;
    const a = document.activeElement;
    if (!force && a && a !== document.body && a !== document.documentElement) return false;
    const el = s.visible(want.sel);
    if (!el) return false;
    if (a !== el) el.focus();
    return true;
  };
  // The server names the box to hold the focus in every render that wants it; a box focused by a
  // press (before the server answered) is kept until a render has seen that press.
  const seen = (data && data.seen) || 0;
  const suspended = s.suspended && s.suspended.token === token ? s.suspended : null;
  if (data && data.focus && !(suspended && suspended.sel === data.focus)) {
    s.want = { sel: data.focus, token: token, seq: 0 };
  } else if (s.want && (s.want.token !== token || seen >= s.want.seq)) {
    s.want = null;
  }
  if (s.want) {
    // again for a moment, in case the page re-renders the box right after this component
    requestAnimationFrame(() => s.hold(false));
    [100, 300, 700].forEach((ms) => setTimeout(() => s.hold(false), ms));
  }
  if (s.off) { clearTimeout(s.off); s.off = null; }
  // A new render calls the cleanup and then this function again, asynchronously: keep sending
  // through the gap (a press then is not lost), and stop only if no render follows (page left).
  return () => { s.off = setTimeout(() => { if (s.send === send) s.send = null; s.off = null; }, 1500); };
}
"""

_component = st.components.v2.component("workbench_keys", js=_JS)


@dataclass(frozen=True)
class KeyPress:
    """One key press as the browser sent it (times are the browser's clock, in ms)."""

    token: int | str | None
    key: str
    drawn_at: float
    pressed_at: float
    seq: int
    text: str | None = None  # Enter in a text box: what the box held when it was pressed

    @property
    def dwell_ms(self) -> float:
        return self.pressed_at - self.drawn_at

    @classmethod
    def parse(cls, raw: Any) -> KeyPress | None:
        if not isinstance(raw, dict):
            return None
        try:
            return cls(
                token=raw.get("token"),
                key=str(raw["key"]),
                drawn_at=float(raw["drawn_at"]),
                pressed_at=float(raw["pressed_at"]),
                seq=int(raw.get("seq", 0)),
                text=str(raw["text"])[:2000] if isinstance(raw.get("text"), str) else None,
            )
        except (KeyError, TypeError, ValueError):
            return None


def capture(
    *,
    key: str,
    token: int | str | None,
    keys: Iterable[str],
    on_press: Callable[[KeyPress], None],
    focus: str | None = None,
    focus_on_press: str | None = None,
    enter_inside: str | None = None,
    drawn: str | None = None,
) -> None:
    """Listen for `keys` (lower-case characters, or "enter") for the item named by `token`;
    `on_press` runs once per press, in order, before the page renders.

    `focus` (a CSS selector) is the box that holds the focus while this render stands: focused
    after the render, and again whenever a re-render drops the focus (a click elsewhere or Escape
    moves it for good); letters typed while it had lost the focus go into it, not to the keys.
    `focus_on_press` is focused in the browser right after any listened key but Enter, before the
    server answers. Enter inside the input matching `enter_inside` is sent too, and every Enter
    carries what that input holds.

    `drawn` is the key of the container that shows the item (it must start with "wb_item_"): the
    dwell time counts from the first painted frame in which that container holds its content. Without
    it, it counts from the frame after this component received the token."""

    seen_key = f"{key}__seen"

    def changed() -> None:
        state = st.session_state.get(key)
        raw = state.get("presses") if state is not None and hasattr(state, "get") else None
        if not isinstance(raw, dict) or not isinstance(raw.get("items"), list):
            return
        sid = str(raw.get("sid"))
        seen_sid, seen_seq = st.session_state.get(seen_key, (None, 0))
        last = seen_seq if seen_sid == sid else 0
        for item in raw["items"]:
            press = KeyPress.parse(item)
            if press is None or press.seq <= last:
                continue
            last = press.seq
            st.session_state[seen_key] = (sid, last)
            on_press(press)

    _component(
        key=key,
        data={
            "token": token,
            "keys": {k: 1 for k in keys},
            "focus": focus,
            "focus_on_press": focus_on_press,
            "seen": st.session_state.get(seen_key, (None, 0))[1],
            "rev": time.time_ns() // 1000,
            "enter_inside": enter_inside,
            "drawn": drawn,
        },
        on_presses_change=changed,
        height=0,
    )
