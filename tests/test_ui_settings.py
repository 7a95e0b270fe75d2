"""The Settings page (admin): labels, queue settings, the settings JSON, archive and delete, each
done through the page's widgets and read back through the services."""

from __future__ import annotations

from pathlib import Path

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

OP = Actor.operator()


def _settings(uwb):
    seed_basic(uwb)
    return go(sign_in("admin"), "settings")


def test_labels_are_added_retired_and_renamed_on_the_page(uwb):
    at = _settings(uwb)
    at.text_input(key="settings_add_name").input("mixed")
    at.button(key="FormSubmitter:settings_add_label-Add label").click().run()
    assert not errors(at) and "label mixed added" in infos(at)[0]
    at.selectbox(key="settings_retire_pick").select("neutral")
    at.button(key="FormSubmitter:settings_retire_label-Retire label").click().run()
    assert "label neutral retired" in infos(at)[0]
    at.selectbox(key="settings_rename_old").select("pos")
    at.text_input(key="settings_rename_new").input("positive")
    at.button(key="FormSubmitter:settings_rename_label-Rename label").click().run()
    assert "label pos renamed to positive" in infos(at)[0]
    info = uwb.projects.get("demo", actor=OP)
    assert info.offered == ("positive", "neg", "mixed") and info.retired == ("neutral",)
    table = at.dataframe[0].value.set_index("label")["status"].to_dict()
    assert table == {"pos": "renamed to positive", "positive": "offered", "neg": "offered",
                     "neutral": "retired", "mixed": "offered"}  # fmt: skip
    at.selectbox(key="settings_rename_old").select("neg")
    at.text_input(key="settings_rename_new").input("positive")
    at.button(key="FormSubmitter:settings_rename_label-Rename label").click().run()
    assert "'positive' is already a label" in errors(at)[0]


def test_queue_settings_and_the_strategy_select(uwb):
    at = _settings(uwb)
    options = at.selectbox(key="settings_strategy").options
    assert "margin" in options and "bald" not in options  # only what the model can serve
    at.number_input(key="settings_overlap").set_value(3)
    at.selectbox(key="settings_strategy").select("entropy")
    at.number_input(key="settings_ttl").set_value(900)
    at.number_input(key="settings_dwell").set_value(400)
    at.number_input(key="settings_control").set_value(0.1)
    at.number_input(key="settings_eval").set_value(0.25)
    at.button(key="FormSubmitter:settings_queue-Save queue settings").click().run()
    assert not errors(at), errors(at)
    info = uwb.projects.get("demo", actor=OP)
    assert (info.overlap, info.strategy) == (3, "entropy")
    assert [info.settings[k] for k in ("lease_ttl_s", "min_dwell_ms", "random_share", "eval_fraction")] == [
        900, 400, 0.1, 0.25,
    ]  # fmt: skip


def test_the_settings_json_refuses_unknown_keys_in_one_line(uwb):
    at = _settings(uwb)
    at.text_area(key="settings_json_demo").input('{"lease_ttl": 3}')
    at.button(key="FormSubmitter:settings_json-Save settings").click().run()
    assert len(errors(at)) == 1 and "unknown project setting(s): lease_ttl" in errors(at)[0]
    at.text_area(key="settings_json_demo").input('{"version_every": 50}')
    at.button(key="FormSubmitter:settings_json-Save settings").click().run()
    assert not errors(at) and "version_every: 0 -> 50" in infos(at)[0]
    assert uwb.projects.get("demo", actor=OP).settings["version_every"] == 50


def test_archive_unarchive_and_delete_with_the_name_typed(uwb, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    at = _settings(uwb)
    at.button(key="settings_archive").click().run()
    assert "Archived demo" in infos(at)[0]
    assert uwb.projects.list(actor=actor(uwb, "ann1")) == []
    at.button(key="settings_unarchive").click().run()
    assert "Unarchived" in infos(at)[0] and len(uwb.projects.list(actor=actor(uwb, "ann1"))) == 1
    at.text_input(key="settings_delete_confirm").input("dem")
    at.button(key="FormSubmitter:settings_delete-Delete project").click().run()
    assert "type the project's name again" in errors(at)[0]
    at.text_input(key="settings_delete_confirm").input("demo")
    at.button(key="FormSubmitter:settings_delete-Delete project").click().run()
    message = infos(at)[0]
    assert message.startswith("Deleted demo; its full export is in ")
    assert Path(message.rsplit(" ", 1)[1].rstrip(".")).is_file()
    assert uwb.projects.list(actor=OP) == []
