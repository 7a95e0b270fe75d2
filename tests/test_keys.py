"""Keys that mean what they say: the key rule, a project's own keys, and their validation."""

from __future__ import annotations

import pytest

from workbench.domain import Actor
from workbench.domain.keys import key_map
from workbench.errors import WorkbenchError


def test_single_character_labels_are_their_own_keys():
    digits = [str(d) for d in range(10)]
    keys = key_map(digits)
    assert [k for _, k in keys.keys] == digits and keys.label_of("4") == "4" and keys.label_of("9") == "9"
    assert key_map(["a1", "b"]).label_of("1") == "a1"  # not all single characters: 1-9 order


def test_otherwise_one_to_nine_then_zero_then_letters_skipping_reserved_ones():
    labels = [f"label {i}" for i in range(14)]
    keys = [k for _, k in key_map(labels).keys]
    assert keys == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "b", "c", "d", "e"]  # a is ambiguous
    # a single-character label set that uses a reserved key (s: skip) falls back to the sequence
    assert [k for _, k in key_map(["s", "h"]).keys] == ["1", "2"]
    assert key_map(["P", "n"]).label_of("p") == "P"  # letters match without regard to case


def test_a_project_sets_its_own_keys_and_bad_ones_are_refused(wb):
    op = Actor.operator()
    project = wb.projects.create(
        "k", "text", ["spam", "ham", "other"], settings={"label_keys": {"spam": "p"}}, actor=Actor.operator()
    )
    keys = key_map(project.labels, project.settings["label_keys"])
    assert keys.key_of("spam") == "p" and keys.key_of("ham") == "1" and keys.label_of("2") == "other"
    for bad, message in (
        ({"spam": "s"}, "reserved"),
        ({"spam": "pp"}, "one character"),
        ({"nope": "q"}, "not a label"),
        ({"spam": "q", "ham": "Q"}, "both"),
    ):
        with pytest.raises(WorkbenchError, match=message):
            wb.projects.update_settings("k", actor=op, label_keys=bad)
    with pytest.raises(WorkbenchError, match="min_dwell_ms"):
        wb.projects.update_settings("k", actor=op, min_dwell_ms=-1)
    assert wb.projects.update_settings("k", actor=op, min_dwell_ms=400).settings["min_dwell_ms"] == 400
