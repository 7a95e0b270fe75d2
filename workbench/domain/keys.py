"""Keyboard keys for labels: which key answers which label, as a pure rule.

- When every label is a single character (digits, letters) and no two collide, a label's key is
  that character, so pressing `4` on the digits demo stores `4`.
- Otherwise labels get 1-9, then 0, then letters, in label order (letters that a page reserves
  for its own actions are passed over).
- A project may set its own key per label (setting ``label_keys``: {label: key}); the labels it
  does not name get the next free keys of the rule above.

Keys are single characters. Letters match without regard to case (a press of `P` answers the
label whose key is `p`); the label shown on the button keeps its own spelling.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from workbench.errors import WorkbenchError

SKIP_KEY = "s"
UNDO_KEY = "u"
HELP_KEY = "?"
AMBIGUOUS_KEY = "a"
EXCLUDE_KEY = "x"
# Keys the Label and Review pages use for their own actions: never a label's key, so one project
# has one key map on both pages.
RESERVED = frozenset({SKIP_KEY, UNDO_KEY, HELP_KEY, AMBIGUOUS_KEY, EXCLUDE_KEY})
_SEQUENCE = "1234567890" + string.ascii_lowercase
DEFAULT_MIN_DWELL_MS = 250


def norm(key: str) -> str:
    return key.lower()


@dataclass(frozen=True)
class KeyMap:
    """label → key (in label order) and key → label."""

    keys: tuple[tuple[str, str | None], ...]  # (label, key or None when the keys ran out)

    def key_of(self, label: str) -> str | None:
        return dict(self.keys).get(label)

    def label_of(self, key: str) -> str | None:
        wanted = norm(key)
        for label, k in self.keys:
            if k is not None and norm(k) == wanted:
                return label
        return None

    def as_dict(self) -> dict[str, str]:
        """key → label, for the key-capture component."""
        return {norm(k): label for label, k in self.keys if k is not None}


def check_label_keys(labels: Sequence[str], custom: object) -> dict[str, str]:
    """Validate a project's ``label_keys`` setting; returns it cleaned (label → one character)."""
    if custom is None:
        return {}
    if not isinstance(custom, Mapping):
        raise WorkbenchError('label_keys must map labels to keys, e.g. {"spam": "p"}')
    cleaned: dict[str, str] = {}
    seen: dict[str, str] = {}
    for label, key in custom.items():
        if label not in labels:
            raise WorkbenchError(f"label_keys names {label!r}, which is not a label of this project")
        if not isinstance(key, str) or len(key) != 1 or key.isspace():
            raise WorkbenchError(f"the key for {label!r} must be one character, got {key!r}")
        if norm(key) in RESERVED:
            raise WorkbenchError(f"key {key!r} is reserved (S skip, U undo, ? help, A ambiguous, X exclude)")
        if norm(key) in seen:
            raise WorkbenchError(f"key {key!r} is set for both {seen[norm(key)]!r} and {label!r}")
        seen[norm(key)] = label
        cleaned[label] = key
    return cleaned


def key_map(labels: Sequence[str], custom: Mapping[str, str] | None = None) -> KeyMap:
    """The keys of a project's labels (see the module docstring for the rule)."""
    custom = dict(custom or {})
    singles = [label for label in labels if label not in custom]
    taken = {norm(k) for k in custom.values()}
    own = [norm(label) for label in singles]
    if (
        all(len(label) == 1 and not label.isspace() for label in singles)
        and len(set(own)) == len(own)
        and not (set(own) & (RESERVED | taken))
    ):
        return KeyMap(tuple((label, custom.get(label, label)) for label in labels))
    free = iter(k for k in _SEQUENCE if k not in RESERVED and k not in taken)
    return KeyMap(tuple((label, custom[label] if label in custom else next(free, None)) for label in labels))
