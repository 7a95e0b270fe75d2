"""The data page (admin): create a project, preview an import row by row before anything is
written, import, and export downloads."""

from __future__ import annotations

import json

from tests.test_ui_support import (  # noqa: F401 - fixtures
    actor,
    errors,
    go,
    infos,
    seed_basic,
    sign_in,
    ui_url,
    uwb,
)
from workbench.domain import Actor

GOOD = b"id,text,source\na1,first text,mail\na2,second text,web\na3,third text,mail\n"
BAD = b"id,text,source\nb1,fine,mail\nb2,,web\nb1,again,mail\n"


def _count(uwb, project="news"):
    return uwb.projects.progress(project, actor=Actor.operator()).total()


def _create(at, name="news", labels="sports\npolitics, weather", kind="text"):
    at.text_input(key="pc_name").input(name)
    at.selectbox(key="pc_kind").select(kind)
    at.text_area(key="pc_labels").input(labels)
    at.number_input(key="pc_eval").set_value(0.0)
    at.button(key="FormSubmitter:project_create-Create project").click().run()
    return at


def test_admin_creates_a_project(uwb):
    seed_basic(uwb)
    at = _create(go(sign_in("admin"), "data"))
    assert not errors(at)
    assert "Created project news" in infos(at)[0]
    info = uwb.projects.get("news", actor=Actor.operator())
    assert info.labels == ("sports", "politics", "weather") and info.overlap == 2
    assert info.settings["eval_fraction"] == 0.0
    _create(at)
    assert "already exists" in errors(at)[0]


def _upload(at, name, data):
    at.file_uploader(key="import_file").set_value((name, data, "text/csv")).run()
    assert not at.exception
    return at


def test_preview_lists_bad_rows_and_writes_nothing(uwb):
    seed_basic(uwb)
    at = _create(go(sign_in("admin"), "data"))
    at.sidebar.selectbox(key="project_data").select("news").run()
    _upload(at, "bad.csv", BAD)
    at.button(key="import_preview").click().run()
    assert not errors(at)
    table = next(df.value for df in at.dataframe if "problem" in df.value.columns)
    assert table["row"].tolist() == [2, 3]
    assert table["problem"].tolist() == ["empty text", "duplicate id"]
    assert at.button(key="import_run").disabled
    assert _count(uwb) == 0


def test_preview_then_import(uwb):
    seed_basic(uwb)
    at = _create(go(sign_in("admin"), "data"))
    at.sidebar.selectbox(key="project_data").select("news").run()
    _upload(at, "good.csv", GOOD)
    at.button(key="import_preview").click().run()
    assert (
        "every row is good; 3 items would be imported"
        in [m for m in (s.value.replace("\\", "") for s in at.success)][0]
    )
    sample = next(df.value for df in at.dataframe if "external_id" in df.value.columns)
    assert sample["external_id"].tolist()[:3] == ["a1", "a2", "a3"]
    assert _count(uwb) == 0  # the preview wrote nothing
    run = at.button(key="import_run")
    assert not run.disabled and run.label == "Import 3 items"
    run.click().run()
    assert "Imported 3 items from good.csv" in infos(at)[0]
    assert _count(uwb) == 3
    claim = uwb.queue.claim("news", actor=actor(uwb, "ann1"))
    assert claim.content["context"] == {"source": claim.content["context"]["source"]}


COPIES = (
    b"id,text\n"
    b"c1,the quick brown fox jumps over the lazy dog by the river\n"
    b"c2,a different line of text\n"
    b"c3,the quick brown fox jumps over the lazy dog by the river\n"
)


def test_import_can_leave_out_rows_that_repeat_an_earlier_item(uwb):
    seed_basic(uwb)
    at = _create(go(sign_in("admin"), "data"))
    at.sidebar.selectbox(key="project_data").select("news").run()
    assert at.radio(key="imp_duplicates").value == "flag"  # the default
    at.radio(key="imp_duplicates").set_value("skip").run()
    _upload(at, "copies.csv", COPIES)
    at.button(key="import_preview").click().run()
    at.button(key="import_run").click().run()
    assert not errors(at)
    assert "Imported 2 items from copies.csv" in infos(at)[0] and "1 duplicate rows left out" in infos(at)[0]
    assert _count(uwb) == 2


def test_changing_the_file_drops_the_old_preview(uwb):
    seed_basic(uwb)
    at = _create(go(sign_in("admin"), "data"))
    at.sidebar.selectbox(key="project_data").select("news").run()
    _upload(at, "good.csv", GOOD)
    at.button(key="import_preview").click().run()
    assert at.button(key="import_run")
    _upload(at, "bad.csv", BAD)
    assert "import_run" not in [b.key for b in at.button]


def test_exports_are_downloads(uwb):
    seed_basic(uwb, n_items=2)
    ann = actor(uwb, "ann1")
    claim = uwb.queue.claim("demo", actor=ann)
    uwb.queue.submit(claim.lease_id, "pos", actor=ann)
    at = go(sign_in("admin"), "data")
    at.radio(key="export_what").set_value("annotations")
    at.radio(key="export_fmt").set_value("jsonl")
    at.button(key="export_prepare").click().run()
    assert not errors(at)
    assert at.get("download_button")[0].label.startswith("Download annotations.jsonl (1 rows)")
    rows = [json.loads(line) for line in at.session_state["export_ready"].data.decode().splitlines()]
    assert [(r["annotator"], r["label"]) for r in rows] == [("ann1", "pos")]
    at.radio(key="export_what").set_value("items")
    at.radio(key="export_fmt").set_value("csv")
    at.button(key="export_prepare").click().run()
    data = at.session_state["export_ready"].data.decode()
    assert data.splitlines()[0].startswith("external_id,item_id,split,state,final_label,text")


def test_reimport_can_skip_rows_already_there(uwb):
    seed_basic(uwb)
    at = _create(go(sign_in("admin"), "data"))
    at.sidebar.selectbox(key="project_data").select("news").run()
    _upload(at, "good.csv", GOOD)
    at.button(key="import_preview").click().run()
    at.button(key="import_run").click().run()
    assert _count(uwb) == 3
    again = GOOD + b"a4,fourth text,web\n"
    _upload(at, "again.csv", again)
    at.button(key="import_preview").click().run()
    assert at.button(key="import_run").disabled  # by default an id already there is refused
    at.radio(key="imp_on_duplicate").set_value("skip").run()
    at.button(key="import_preview").click().run()
    assert any("3 rows would be left alone" in m for m in infos(at))
    at.button(key="import_run").click().run()
    assert _count(uwb) == 4
