"""Key capture bound to the item on screen (a Streamlit custom component, v2 API).

`st.button(shortcut=...)` cannot say which item a key was pressed on: a press that arrives while
the next item is being drawn would answer that next item. This component listens on the page,
and every press it sends carries the token of the item that was on screen (the lease id), the
client time the item was drawn and the client time of the press. The server then checks both:
a press for an item no longer shown, or within the minimum dwell time, stores nothing.

Presses typed into a text box, select box or text area are left alone. Held-down keys (auto
repeat) and presses with Ctrl/Alt/Meta are ignored. The JavaScript holds one document listener for
the whole browser tab; each render updates the token and key map it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import streamlit as st

_JS = r"""
export default function(component) {
  const { data, setTriggerValue } = component;
  const w = window;
  const now = () => performance.timeOrigin + performance.now();
  if (!w.__wbKeys) {
    w.__wbKeys = { seq: 0, token: null, drawnAt: 0, keys: {}, send: null, focus: null };
    document.addEventListener("keydown", (e) => {
      const s = w.__wbKeys;
      if (!s.send || e.repeat || e.ctrlKey || e.altKey || e.metaKey || e.isComposing) return;
      const t = e.target;
      const tag = t && t.tagName ? t.tagName.toLowerCase() : "";
      if (tag === "input" || tag === "textarea" || tag === "select" || (t && t.isContentEditable)) return;
      let key = e.key;
      if (key === "Enter") key = "enter";
      else if (key.length === 1) key = key.toLowerCase();
      else return;
      if (!(key in s.keys)) return;
      e.preventDefault();
      e.stopPropagation();
      s.seq += 1;
      s.send("press", { token: s.token, key: key, drawn_at: s.drawnAt, pressed_at: now(), seq: s.seq });
    }, true);
  }
  const s = w.__wbKeys;
  const token = data && data.token !== undefined ? data.token : null;
  if (token !== s.token) {
    s.token = token;
    s.drawnAt = now();
    // the item counts as drawn from the next painted frame on
    requestAnimationFrame(() => { if (s.token === token) s.drawnAt = now(); });
  }
  s.keys = (data && data.keys) || {};
  s.send = setTriggerValue;
  if (data && data.focus) {
    requestAnimationFrame(() => {
      const el = document.querySelector(data.focus);
      if (el) el.focus();
    });
  } else {
    const a = document.activeElement;
    // a button clicked with the mouse keeps focus; the keys work there too (handled above)
    if (a && a.getAttribute && a.getAttribute("role") === "combobox" && data && data.blur_select) a.blur();
  }
  return () => { if (s.send === setTriggerValue) s.send = null; };
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

    @property
    def dwell_ms(self) -> float:
        return self.pressed_at - self.drawn_at

    @classmethod
    def parse(cls, raw: Any) -> "KeyPress | None":
        if not isinstance(raw, dict):
            return None
        try:
            return cls(token=raw.get("token"), key=str(raw["key"]), drawn_at=float(raw["drawn_at"]),
                       pressed_at=float(raw["pressed_at"]), seq=int(raw.get("seq", 0)))
        except (KeyError, TypeError, ValueError):
            return None


def capture(*, key: str, token: int | str | None, keys: Iterable[str],
            on_press: Callable[[KeyPress], None], focus: str | None = None) -> None:
    """Listen for `keys` (lower-case characters, or "enter") for the item named by `token`;
    `on_press` runs in the press's own rerun, before the page renders."""

    def changed() -> None:
        state = st.session_state.get(key)
        raw = state.get("press") if isinstance(state, dict) or hasattr(state, "get") else None
        press = KeyPress.parse(raw)
        if press is not None:
            on_press(press)

    _component(key=key, data={"token": token, "keys": {k: 1 for k in keys}, "focus": focus,
                              "blur_select": True},
               on_press_change=changed, height=0)
