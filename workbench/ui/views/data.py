"""Data (admin): create projects, import files with a row-by-row validation preview before anything
is written, and export items and annotations as downloads."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from workbench.domain import DuplicatePolicy, ExportFormat, ExportKind, ProjectKind, Role
from workbench.errors import WorkbenchError
from workbench.ui import render, session

if TYPE_CHECKING:
    from workbench.importing.report import ImportReport

PREVIEW = "data_preview"  # the HeldPreview of the file being imported
READY = "export_ready"  # the ReadyExport prepared for the download button


@dataclass(frozen=True)
class HeldPreview:
    """The validation report of an uploaded file, for the file and options it was made with."""

    fingerprint: tuple[str, str, int, str]  # project, upload id, size, options as JSON
    report: ImportReport


@dataclass(frozen=True)
class ReadyExport:
    """An export prepared for the download button (the button needs the bytes up front)."""

    project: str
    what: ExportKind
    fmt: str
    data: bytes
    rows: int | None
    digest: str | None
    number: int | None

    def matches(self, project: str, what: ExportKind, fmt: str, number: int | None) -> bool:
        return (self.project, self.what, self.fmt, self.number) == (project, what, fmt, number)


def _safe_name(name: str) -> str:
    """The uploaded file's base name, reduced to harmless characters, suffix kept."""
    base = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".") or "upload"
    return cleaned[-120:]


def _parse_labels(text: str) -> list[str]:
    parts = re.split(r"[\n,]", text)
    return [p.strip() for p in parts if p.strip()]


# -- create a project ---------------------------------------------------------------------------
def _create_project(wb, actor) -> None:
    with st.form("project_create", clear_on_submit=False):
        name = st.text_input("Project name", key="pc_name")
        kind = st.selectbox("Kind", [k.value for k in ProjectKind], key="pc_kind")
        labels = st.text_area("Labels, in shortcut order (one per line, or comma-separated)", key="pc_labels")
        c1, c2, c3 = st.columns(3)
        overlap = c1.number_input("Annotators per item", min_value=1, max_value=10, value=2, key="pc_overlap")
        strategy = c2.text_input(
            "Strategy",
            value="",
            key="pc_strategy",
            placeholder="default",
            help="empty: margin_diversity for text (on sentence embeddings), margin otherwise; "
            "or e.g. margin, entropy, least_confidence, random",
        )
        eval_fraction = c3.number_input(
            "Evaluation share", min_value=0.0, max_value=0.9, value=0.2, step=0.05, key="pc_eval"
        )
        image_root = st.text_input("Image folder on the server (image projects)", key="pc_image_root")
        submitted = st.form_submit_button("Create project", type="primary")
    if not submitted:
        return
    settings: dict[str, Any] = {"eval_fraction": float(eval_fraction)}
    if kind == ProjectKind.IMAGE.value and image_root.strip():
        settings["image_root"] = str(Path(image_root.strip()).expanduser().resolve())
    try:
        info = wb.projects.create(
            name,
            kind,
            _parse_labels(labels),
            overlap=int(overlap),
            strategy=strategy.strip() or None,
            settings=settings,
            actor=actor,
        )
    except WorkbenchError as exc:
        render.error(exc)
    else:
        st.session_state[session.PROJECT] = info.name
        session.flash(f"Created project {info.name} ({info.kind.value}, labels: {', '.join(info.labels)}).")
        st.rerun()


# -- import ----------------------------------------------------------------------------------
_DUPLICATE_CHOICES = {
    DuplicatePolicy.FLAG.value: "Import and flag them",
    DuplicatePolicy.KEEP.value: "Import them unflagged",
    DuplicatePolicy.SKIP.value: "Leave them out",
}


def _duplicate_choice(key: str) -> str:
    """The import's near-duplicate policy, as the admin picks it (default: flag)."""
    return st.radio(
        "Rows that repeat an earlier item, exactly or nearly",
        list(_DUPLICATE_CHOICES),
        format_func=_DUPLICATE_CHOICES.get,
        horizontal=True,
        key=key,
        help="Found by the data health check as the rows are written (near: word-pair Jaccard at or above the "
        "project's near_duplicate_threshold, default 0.9). A copy across the pool and eval splits is still "
        "flagged as leakage when kept.",
    )


def _import_options(project) -> dict:
    opts: dict = {"on_near_duplicate": _duplicate_choice("imp_duplicates")}
    duplicate = st.radio(
        "Rows whose id is already in the project",
        ["error", "skip"],
        format_func=lambda v: {
            "error": "refuse them (nothing is imported)",
            "skip": "leave them alone when their content is the same; import only the new rows",
        }[v],
        horizontal=True,
        key="imp_on_duplicate",
    )
    if duplicate != "error":
        opts["on_duplicate"] = duplicate
    with st.expander("Column options (leave empty for the defaults)"):
        c1, c2, c3 = st.columns(3)
        id_col = c1.text_input("Id column", placeholder="id", key="imp_id")
        if project.kind == ProjectKind.TEXT:
            text_col = c2.text_input("Text column", placeholder="text", key="imp_text")
            if text_col.strip():
                opts["text_col"] = text_col.strip()
        if project.kind == ProjectKind.IMAGE:
            image_col = c2.text_input("Image path column", placeholder="image", key="imp_image")
            if image_col.strip():
                opts["image_col"] = image_col.strip()
        prelabel = c3.text_input("Prelabel column (optional)", key="imp_prelabel")
        e1, e2 = st.columns(2)
        use_eval = e1.checkbox("Override the evaluation share", key="imp_eval_on")
        fraction = e1.number_input(
            "Evaluation share",
            0.0,
            1.0,
            float(project.settings.get("eval_fraction", 0.2)),
            step=0.05,
            key="imp_eval",
            disabled=not use_eval,
        )
        seed = e2.number_input("Seed for the eval split (0 = random)", min_value=0, value=0, step=1, key="imp_seed")
    if id_col.strip():
        opts["id_col"] = id_col.strip()
    if prelabel.strip():
        opts["prelabel_col"] = prelabel.strip()
    if use_eval:
        opts["eval_fraction"] = float(fraction)
    if seed:
        opts["seed"] = int(seed)
    return opts


def _show_report(report, *, original_name: str) -> None:
    if report.file_errors:
        for problem in report.file_errors:
            render.error(f"{original_name}: {problem}")
    a, b, c, d = st.columns(4)
    a.metric("Rows read", report.rows)
    b.metric("Refused rows", report.n_errors)
    c.metric("Pool / eval", f"{report.n_pool} / {report.n_eval}")
    d.metric("Prelabels", report.prelabels)
    if report.ok:
        verb = "would be imported" if report.dry_run else "imported"
        n = report.valid_rows if report.dry_run else report.imported
        render.notice("success", f"{original_name}: every row is good; {n} items {verb}.")
    elif not report.file_errors:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(report.error_counts.items()))
        render.notice(
            "warning",
            f"{original_name}: {report.n_errors} of {report.rows} rows refused ({kinds}); "
            "nothing is written until every row is good.",
        )
    if report.errors:
        st.dataframe(
            pd.DataFrame(
                [
                    {"row": e.row, "line": e.line, "column": e.column, "problem": e.kind, "message": e.message}
                    for e in report.errors
                ]
            ),
            hide_index=True,
            key=f"import_errors_{report.dry_run}",
        )
        if report.n_unlisted:
            st.caption(
                f"... and {report.n_unlisted} more refused rows (only the first {len(report.errors)} are listed)."
            )
    if report.left_alone:
        would = "would be left alone" if report.dry_run else "were left alone"
        render.notice(
            "info",
            f"{report.left_alone} rows {would}: their id is already in the project with the same content.",
        )
    for warning in report.warnings:
        render.notice("info", warning)
    if report.skipped_duplicates:
        render.notice("info", f"{report.skipped_duplicates} rows repeating an earlier item were left out.")
    if report.health is not None:
        render.notice(
            "info", f"Data health of this batch: {report.health.summary()}. The Health page lists the flagged items."
        )
    if report.sample:
        st.caption("The first items as they would be stored:")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        k: (json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v)
                        for k, v in row.items()
                    }
                    for row in report.sample
                ]
            ),
            hide_index=True,
            key=f"import_sample_{report.dry_run}",
        )


def _with_upload(upload, work):
    """Run work(path) on the uploaded bytes written to a temporary file with the original suffix."""
    with tempfile.TemporaryDirectory(prefix="wb-upload-") as tmp:
        path = Path(tmp) / _safe_name(upload.name)
        path.write_bytes(upload.getvalue())
        bar = st.progress(0.0, text="reading")

        def progress(done: int, total: int) -> None:
            bar.progress(min(done / total, 1.0) if total else 1.0, text=f"{done:,} / {total:,}")

        try:
            return work(path, progress)
        finally:
            bar.empty()


def _import(wb, actor, project) -> None:
    upload = st.file_uploader(
        "CSV, TSV, JSONL or Parquet file",
        type=["csv", "tsv", "txt", "jsonl", "json", "ndjson", "parquet"],
        key="import_file",
    )
    options = _import_options(project)
    if upload is None:
        st.caption("Choose a file: it is checked row by row and nothing is written until you confirm.")
        return
    fingerprint = (project.name, upload.file_id, upload.size, json.dumps(options, sort_keys=True))
    held: HeldPreview | None = st.session_state.get(PREVIEW)
    if held is not None and held.fingerprint != fingerprint:
        held = st.session_state[PREVIEW] = None
    if st.button("Check the file", key="import_preview", type="primary" if held is None else "secondary"):
        try:
            report = _with_upload(
                upload,
                lambda path, progress: wb.imports.preview(
                    project.name, path, actor=actor, progress=progress, **options
                ),
            )
        except (WorkbenchError, ValueError) as exc:
            render.error(exc)
            return
        held = st.session_state[PREVIEW] = HeldPreview(fingerprint, report)
    if held is None:
        return
    report = held.report
    st.subheader("Validation report")
    _show_report(report, original_name=upload.name)
    n = report.valid_rows
    if st.button(f"Import {n} item{'' if n == 1 else 's'}", key="import_run", type="primary", disabled=not report.ok):
        try:
            result = _with_upload(
                upload,
                lambda path, progress: wb.imports.run(project.name, path, actor=actor, progress=progress, **options),
            )
        except (WorkbenchError, ValueError) as exc:
            render.error(exc)
            return
        st.session_state[PREVIEW] = None
        if result.ok:
            skipped = f"; {result.skipped_duplicates} duplicate rows left out" if result.skipped_duplicates else ""
            session.flash(
                f"Imported {result.imported} items from {upload.name} ({result.n_pool} pool, {result.n_eval} eval)"
                f"{skipped}."
            )
            st.rerun()
        _show_report(result, original_name=upload.name)


def _import_folder(wb, actor, project) -> None:
    st.caption("Or import a folder of images that is already on the server (the external id is the relative path).")
    folder = st.text_input("Folder on the server", key="folder_path")
    prelabel = st.checkbox("Subfolders named like labels are prelabels", key="folder_prelabel")
    duplicates = _duplicate_choice("folder_duplicates")
    if not folder.strip():
        return
    c1, c2 = st.columns(2)
    if c1.button("Check the folder", key="folder_preview"):
        try:
            report = wb.imports.preview_folder(
                project.name, folder.strip(), prelabel_from_folders=prelabel, actor=actor
            )
        except WorkbenchError as exc:
            render.error(exc)
        else:
            _show_report(report, original_name=folder.strip())
    if c2.button("Import the folder", key="folder_run"):
        try:
            report = wb.imports.run_folder(
                project.name,
                folder.strip(),
                prelabel_from_folders=prelabel,
                on_near_duplicate=duplicates,
                actor=actor,
            )
        except WorkbenchError as exc:
            render.error(exc)
        else:
            _show_report(report, original_name=folder.strip())


# -- export ----------------------------------------------------------------------------------
def _export(wb, actor, project) -> None:
    kinds = {
        ExportKind.ITEMS.value: "Items with final labels",
        ExportKind.ANNOTATIONS.value: "Every human annotation",
        ExportKind.VERSION.value: "A dataset version",
    }
    what = ExportKind(st.radio("Export", list(kinds), horizontal=True, key="export_what", format_func=kinds.get))
    # A download is one file: the hf folder is written by `workbench version export --format hf`.
    formats = [f.value for f in what.formats if f is not ExportFormat.HF]
    fmt = st.radio("Format", formats, horizontal=True, key="export_fmt")
    number = None
    if what == ExportKind.VERSION:
        numbers = [v.number for v in wb.versions.list(project.name, actor=actor)]
        if not numbers:
            st.caption("No dataset version yet: a retrain round cuts one.")
            return
        number = st.selectbox("Version", numbers[::-1], key="export_version")
    if st.button("Prepare the download", key="export_prepare"):
        try:
            data, result = wb.exports.payload(what, project.name, fmt, number=number, actor=actor)
            rows, digest = result.rows, result.sha256
        except WorkbenchError as exc:
            render.error(exc)
            return
        st.session_state[READY] = ReadyExport(project.name, what, fmt, data, rows, digest, number)
    ready: ReadyExport | None = st.session_state.get(READY)
    if ready is not None and ready.matches(project.name, what, fmt, number):
        data, rows, digest = ready.data, ready.rows, ready.digest
        name = f"version-{number}" if what == ExportKind.VERSION else what.value
        count = f" ({rows} rows)" if rows is not None else ""
        st.download_button(
            f"Download {name}.{ExportFormat(fmt).extension}{count}",
            data,
            file_name=f"{_safe_name(project.name)}-{name}.{ExportFormat(fmt).extension}",
            mime=ExportFormat(fmt).mime,
            key="export_download",
            on_click="ignore",
            icon=":material/download:",
        )
        if digest:
            st.caption(f"sha256 {digest}")


def _quarantined(wb, actor, project) -> None:
    """Items taken out of the queue and the rounds (an image that broke at run time), with why."""
    items = wb.quarantine.list_quarantined(project.name, actor=actor)
    if not items:
        return
    st.divider()
    st.subheader(f"Quarantined items ({len(items)})")
    st.caption(
        "These items could not be shown or featurized; they are out of the queue and the rounds. "
        "Fix the file, then release the item to put it back."
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "item": q.external_id,
                    "reason": q.reason,
                    "found by": q.source.value,
                    "reported by": q.reported_by or "worker",
                    "was": q.previous_state.value,
                    "at": q.created_at,
                }
                for q in items
            ]
        ),
        hide_index=True,
        key="quarantine_table",
    )
    choice = st.selectbox("Release an item", [q.external_id for q in items], key="quarantine_pick")
    if st.button("Release", key="quarantine_release"):
        picked = next(q for q in items if q.external_id == choice)
        try:
            state = wb.quarantine.release(project.name, picked.item_id, actor=actor)
        except WorkbenchError as exc:
            render.error(exc)
        else:
            session.flash(f"Released {choice}; it is {state.value} again.")
            st.rerun()


def main() -> None:
    actor = session.require(Role.ADMIN)
    wb = session.workbench()
    st.header("Data")
    session.show_flash()
    create, data = st.tabs(["New project", "Import and export"])
    with create:
        _create_project(wb, actor)
    with data:
        project = session.pick_project(page="data")
        st.subheader(render.md(f"Import into {project.name} ({project.kind.value})"))
        _import(wb, actor, project)
        if project.kind == ProjectKind.IMAGE:
            _import_folder(wb, actor, project)
        st.divider()
        st.subheader(render.md(f"Export from {project.name}"))
        _export(wb, actor, project)
        _quarantined(wb, actor, project)


main()
