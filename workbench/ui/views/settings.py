"""Settings (admin): a project's labels (add, retire, rename), overlap, strategy, lease time,
dwell time, control-arm share, evaluation share of future imports, the settings JSON, archive,
unarchive, and delete (name typed again; a full export is written first). Every change is made
by the project settings service, which validates and audits it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import pandas as pd
import streamlit as st

from workbench.domain import Actor, ProjectInfo, Role
from workbench.errors import WorkbenchError
from workbench.ui import render, session

if TYPE_CHECKING:
    from workbench.services import Workbench
    from workbench.services.project_settings import UpdateResult

_R = TypeVar("_R")


def _attempt(action: Callable[[], _R], done: Callable[[_R], str]) -> None:
    """Run a service call; on success flash `done(result)` and rerun, else show why not."""
    try:
        result = action()
    except WorkbenchError as exc:
        render.error(exc)
    else:
        session.flash(done(result))
        st.rerun()


def _changes(result: UpdateResult) -> str:
    return "Saved: " + "; ".join(result.changes) + "."


def _labels(wb: Workbench, actor: Actor, project: ProjectInfo) -> None:
    st.subheader("Labels")
    rows = wb.project_settings.labels(project.name, actor=actor)
    st.dataframe(
        pd.DataFrame([{"label": r.name, "status": r.status} for r in rows]),
        hide_index=True,
        key="settings_labels_table",
    )
    add, retire, rename = st.columns(3)
    with add, st.form("settings_add_label", clear_on_submit=True):
        name = st.text_input("New label (or a retired one, to offer it again)", key="settings_add_name")
        if st.form_submit_button("Add label"):
            _attempt(lambda: wb.project_settings.update(project.name, add_labels=[name], actor=actor), _changes)
    with retire, st.form("settings_retire_label"):
        label = st.selectbox("Label to retire (its labels are kept)", project.offered, key="settings_retire_pick")
        if st.form_submit_button("Retire label"):
            _attempt(lambda: wb.project_settings.update(project.name, retire_labels=[label], actor=actor), _changes)
    with rename, st.form("settings_rename_label", clear_on_submit=True):
        old = st.selectbox("Label to rename", project.labels, key="settings_rename_old")
        new = st.text_input("New name", key="settings_rename_new")
        if st.form_submit_button("Rename label"):
            _attempt(
                lambda: wb.project_settings.update(project.name, rename_labels=[(old, new.strip())], actor=actor),
                _changes,
            )
    st.caption(
        "A retired label keeps its annotations and final labels and is no longer offered on Label and "
        "Review. A rename makes current annotations and final labels read the new name; dataset "
        "versions keep the name they were cut with."
    )


def _queue(wb: Workbench, actor: Actor, project: ProjectInfo) -> None:
    st.subheader("Queue")
    strategies = wb.project_settings.strategies(project.name, actor=actor)
    s = project.settings
    with st.form("settings_queue"):
        c1, c2, c3 = st.columns(3)
        overlap = c1.number_input(
            "Annotators per item", 1, 10, int(project.overlap), key="settings_overlap",
            help="applies to items not yet complete",
        )  # fmt: skip
        index = strategies.index(project.strategy) if project.strategy in strategies else 0
        strategy = c2.selectbox(
            "Strategy", strategies, index=index, key="settings_strategy",
            help="only the strategies this project's model can serve",
        )  # fmt: skip
        ttl = c3.number_input("Lease time (seconds)", 30, 86_400, int(s["lease_ttl_s"]), key="settings_ttl")
        d1, d2, d3 = st.columns(3)
        dwell = d1.number_input("Dwell time (ms)", 0, 5000, int(s["min_dwell_ms"]), step=50, key="settings_dwell")
        control = d2.number_input(
            "Control-arm share", 0.0, 1.0, float(s["random_share"]), step=0.01, key="settings_control"
        )
        evals = d3.number_input(
            "Evaluation share of future imports", 0.0, 1.0, float(s["eval_fraction"]), step=0.05, key="settings_eval"
        )
        if st.form_submit_button("Save queue settings", type="primary"):
            wanted = {"lease_ttl_s": int(ttl), "min_dwell_ms": int(dwell), "random_share": float(control),
                      "eval_fraction": float(evals)}  # fmt: skip
            changed = {key: value for key, value in wanted.items() if s.get(key) != value}
            _attempt(
                lambda: wb.project_settings.update(
                    project.name,
                    overlap=int(overlap) if int(overlap) != project.overlap else None,
                    strategy=strategy if strategy != project.strategy else None,
                    settings=changed or None,
                    actor=actor,
                ),
                _changes,
            )


def _settings_json(wb: Workbench, actor: Actor, project: ProjectInfo) -> None:
    st.subheader("All settings (JSON)")
    with st.form("settings_json"):
        text = st.text_area(
            "Keys to change, as a JSON object (unknown keys and bad values are refused)",
            value=json.dumps(project.settings, indent=2, ensure_ascii=False, default=str),
            height=260,
            key=f"settings_json_{project.name}",
        )
        if st.form_submit_button("Save settings"):
            try:
                given = json.loads(text)
            except json.JSONDecodeError as exc:
                render.error(f"not JSON: {exc.msg} at line {exc.lineno}")
                return
            if not isinstance(given, dict):
                render.error("the settings must be a JSON object")
                return
            changed = {key: value for key, value in given.items() if project.settings.get(key, object()) != value}
            if not changed:
                render.notice("info", "Nothing changed.")
                return
            _attempt(lambda: wb.project_settings.update(project.name, settings=changed, actor=actor), _changes)


def _archive_and_delete(wb: Workbench, actor: Actor, project: ProjectInfo) -> None:
    st.subheader("Archive or delete")
    left, right = st.columns(2)
    with left:
        if project.archived:
            st.write("This project is archived: read-only, hidden from annotators and reviewers.")
            if st.button("Unarchive project", key="settings_unarchive"):
                _attempt(lambda: wb.project_settings.unarchive(project.name, actor=actor), lambda _: "Unarchived.")
        else:
            st.write("Archiving makes the project read-only and hides it from annotators and reviewers.")
            if st.button("Archive project", key="settings_archive"):
                _attempt(
                    lambda: wb.project_settings.archive(project.name, actor=actor),
                    lambda _: f"Archived {project.name}: read-only, hidden from annotators and reviewers.",
                )
    with right, st.form("settings_delete", clear_on_submit=True):
        st.write("Delete writes a full export (items, annotations, adjudications, versions) first.")
        typed = st.text_input(f"Type {project.name} to delete it", key="settings_delete_confirm")
        if st.form_submit_button("Delete project", type="secondary"):
            _attempt(
                lambda: wb.project_settings.delete(project.name, confirm=typed, actor=actor),
                lambda r: f"Deleted {r.name}; its full export is in {r.export_path}.",
            )


def main() -> None:
    actor = session.require(Role.ADMIN)
    wb = session.workbench()
    st.header("Settings")
    session.show_flash()
    project = session.pick_project(page="settings")
    status = "archived (read-only)" if project.archived else "active"
    st.caption(
        f"{project.name}: {project.kind.value}, {status}; {project.overlap} annotators per item, "
        f"strategy {project.strategy}"
    )
    _labels(wb, actor, project)
    _queue(wb, actor, project)
    _settings_json(wb, actor, project)
    _archive_and_delete(wb, actor, project)


main()
