"""Members and statistics in the app (AppTest): the project picker lists only an annotator's
projects, an admin adds and removes members on the Users page, the statistics show an annotator
their own figures and reviewers everyone's."""

from __future__ import annotations

import pytest

from tests.test_ui_support import (  # noqa: F401 - fixtures
    PASSWORD,
    actor,
    add_text_items,
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


@pytest.mark.explicit_members
def test_the_picker_shows_an_annotator_only_their_projects_and_admin_adds_a_member(uwb):
    seed_basic(uwb)  # admin, rev, ann1, ann2 and project demo, with no members (explicit_members)
    uwb.projects.create("other", "text", ["x", "y"], actor=OP)
    at = go(sign_in("ann1"), "label")
    assert "you are not a member of any open project" in infos(at)[0]
    assert not at.sidebar.selectbox

    admin = go(sign_in("admin"), "users")
    admin.selectbox(key="members_project").select("other").run()
    assert "other has no members yet" in infos(admin)[0]
    admin.selectbox(key="member_add_user").select("ann1")
    admin.button(key="FormSubmitter:member_add-Add member").click().run()
    assert not errors(admin) and "ann1 works on other now" in infos(admin)[0]
    assert admin.dataframe[-1].value["user"].tolist() == ["ann1"]
    # a refusal is one line and changes nothing
    admin.selectbox(key="member_add_user").select("ann2")
    admin.selectbox(key="member_add_role").select("reviewer")
    admin.button(key="FormSubmitter:member_add-Add member").click().run()
    assert errors(admin) == ["ann2 is an annotator; only a reviewer can be a reviewer member"]
    assert [m.user for m in uwb.members.list("other", actor=OP)] == ["ann1"]

    at = go(sign_in("ann1"), "label")
    assert at.sidebar.selectbox(key="project_label").options == ["other"]
    assert admin.session_state["wb_actor"].name == "admin"
    admin.selectbox(key="member_remove_user").select("ann1")
    admin.button(key="member_remove").click().run()
    assert "ann1 no longer works on other" in infos(admin)[0]
    assert uwb.members.list("other", actor=OP) == []


def _label_some(uwb) -> None:
    one, two = actor(uwb, "ann1"), actor(uwb, "ann2")
    for label_one, label_two in (("pos", "pos"), ("neg", "pos"), ("neg", "neg")):
        first = uwb.queue.claim("demo", actor=one)
        uwb.queue.submit(first.lease_id, label_one, actor=one, duration_ms=3000)
        second = uwb.queue.claim("demo", actor=two)
        uwb.queue.submit(second.lease_id, label_two, actor=two, duration_ms=6000)


def test_an_annotator_sees_their_own_statistics_only(uwb):
    seed_basic(uwb, n_items=4)
    _label_some(uwb)
    at = go(sign_in("ann1"), "stats")
    assert at.header[0].value == "My statistics"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Labels"] == "3" and metrics["Median seconds per item"] == "3.0"
    assert metrics["Kappa with the other labeler"] == "0.40"
    assert not at.dataframe  # no table of everyone
    charts = at.get("vega_lite_chart")
    assert len(charts) == 4  # one per figure over days; nothing was adjudicated yet:
    assert "No agreement with adjudication yet." in [c.value for c in at.caption]
    assert all("ann2" not in str(c.proto) and "ann1" in str(c.proto) for c in charts)


def test_reviewer_sees_every_annotator_on_the_overview(uwb):
    seed_basic(uwb, n_items=4)
    _label_some(uwb)
    at = go(sign_in("rev"), "overview")
    assert not errors(at)
    table = at.dataframe[-1].value.set_index("annotator")
    assert sorted(table.index) == ["ann1", "ann2"]
    assert table.loc["ann2", "median seconds per item"] == 6.0
    assert table.loc["ann1", "labels"] == 3
