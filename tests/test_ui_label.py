"""The label page: claim, answer, next item in the same rerun, skip, undo, renew, progress, images."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.test_ui_support import (  # noqa: F401 - fixtures
    PASSWORD,
    actor,
    add_text_items,
    errors,
    fast_hashing,
    infos,
    seed_basic,
    sign_in,
    texts,
    ui_url,
    uwb,
)
from workbench.domain import Actor
from workbench.ui import render


def _item_text(at) -> str:
    found = [t for t in texts(at) if t.startswith("text number")]
    assert len(found) == 1, texts(at)
    return found[0]


def test_label_buttons_follow_label_order_and_name_their_keys(uwb):
    seed_basic(uwb)
    at = sign_in("ann1")
    buttons = {b.key: b for b in at.button}
    assert [buttons[f"label_btn_{i}"].label for i in range(3)] == ["pos ⟨1⟩", "neg ⟨2⟩", "neutral ⟨3⟩"]
    assert not any(b.proto.shortcut for b in at.button)  # keys go through the item-bound capture
    assert buttons["label_skip"].label == "Skip ⟨S⟩" and buttons["label_undo"].label == "Undo last ⟨U⟩"


def test_digit_labels_are_their_own_keys(uwb):
    """The digits demo: label 4 is answered by the key 4 and its button says just "4"."""
    seed_basic(uwb, n_items=0)
    digits = [str(d) for d in range(10)]
    project = uwb.projects.create("digits", "text", digits, settings={"eval_fraction": 0.0}, actor=Actor.operator())
    add_text_items(uwb, project.id, ["text number 0"])
    at = sign_in("ann1")
    at.sidebar.selectbox(key="project_label").select("digits").run()
    assert [b.label for b in at.button if b.key.startswith("label_btn_")] == digits
    from workbench.domain.keys import key_map

    assert key_map(uwb.projects.get("digits", actor=Actor.operator()).labels).label_of("4") == "4"


def test_submit_stores_the_label_and_shows_the_next_item_in_the_same_rerun(uwb):
    seed_basic(uwb, n_items=3)
    at = sign_in("ann1")
    seen = [_item_text(at)]
    at.button(key="label_btn_1").click().run()
    assert not errors(at)
    seen.append(_item_text(at))
    assert seen[1] != seen[0]
    assert at.metric[1].value == "1"  # my labels in total, already counted in this rerun
    at.button(key="label_btn_0").click().run()
    seen.append(_item_text(at))
    at.button(key="label_btn_0").click().run()
    assert len(set(seen)) == 3
    assert "Nothing left for you" in at.success[0].value
    history = uwb.queue.recent_labels(uwb.projects.get("demo", actor=Actor.operator()), actor=actor(uwb, "ann1"))
    assert sorted(h.label for h in history) == ["neg", "pos", "pos"]


def test_items_held_by_others_are_not_reported_as_done(uwb):
    """Both slots of one item are held by ann2 and ann3; once ann1 has labeled the other item, the
    page says that item may still come back instead of "nothing left", and serves it after a skip."""
    seed_basic(uwb, n_items=2)
    uwb.users.add("ann3", "annotator", PASSWORD, actor=Actor.operator())
    held = [uwb.queue.claim("demo", actor=actor(uwb, name)) for name in ("ann2", "ann3")]
    assert held[0].item_id == held[1].item_id
    at = sign_in("ann1")
    at.button(key="label_btn_0").click().run()
    assert not at.success and "1 item(s) you could still label are claimed" in infos(at)[0]
    uwb.queue.skip(held[0].lease_id, "unsure", actor=actor(uwb, "ann2"))
    at.button(key="label_check_again").click().run()
    assert _item_text(at) and not infos(at)


def test_duration_is_measured_from_when_the_item_was_shown(uwb, monkeypatch):
    seed_basic(uwb, n_items=2)
    at = sign_in("ann1")
    calls = []
    original = uwb.queue.__class__.submit_and_claim

    def spy(self, lease_id, label, *, actor, duration_ms=None):
        calls.append(duration_ms)
        return original(self, lease_id, label, actor=actor, duration_ms=duration_ms)

    monkeypatch.setattr(uwb.queue.__class__, "submit_and_claim", spy)
    at.button(key="label_btn_0").click().run()
    assert len(calls) == 1 and calls[0] is not None and 0 <= calls[0] < 60_000


def _skip(at, reason: str | None = None):
    at.button(key="label_skip").click().run()
    if reason is not None:
        at.text_input(key="label_skip_reason").input(reason)
    next(b for b in at.button if b.label == "Skip this item").click().run()
    return at


def test_skip_asks_for_an_optional_reason_and_moves_on(uwb):
    seed_basic(uwb, n_items=3)
    at = sign_in("ann1")
    first = _item_text(at)
    at.button(key="label_skip").click().run()
    assert _item_text(at) == first  # asked for a reason first; nothing stored yet
    next(b for b in at.button if b.label == "Cancel").click().run()
    assert not [t for t in at.text_input if t.key == "label_skip_reason"]
    _skip(at, "cannot read it")
    second = _item_text(at)
    assert second != first
    _skip(at)
    assert _item_text(at) not in (first, second)
    assert at.metric[2].value == "2"  # my skips
    from sqlmodel import Session, select

    from workbench.db.models import Lease

    with Session(uwb.engine) as s:
        reasons = sorted(r for r in s.exec(select(Lease.skip_reason)).all() if r)
    assert reasons == ["cannot read it", "skipped"]


def test_undo_hands_back_the_last_labelled_item(uwb):
    seed_basic(uwb, n_items=3)
    at = sign_in("ann1")
    first = _item_text(at)
    at.button(key="label_btn_0").click().run()
    assert _item_text(at) != first
    at.button(key="label_undo").click().run()
    assert _item_text(at) == first
    assert "Took back your last label" in infos(at)[0]
    assert at.metric[1].value == "0"
    at.button(key="label_undo").click().run()
    assert "nothing to undo" in infos(at)[0]


def test_other_interactions_renew_the_lease(uwb):
    seed_basic(uwb, n_items=2)
    at = sign_in("ann1")
    claim = at.session_state["label_state"].claim
    before = claim.expires_at
    at.button(key="label_keys_help").click().run()
    from sqlmodel import Session

    from workbench.db.models import Lease

    with Session(uwb.engine) as s:
        after = s.get(Lease, claim.lease_id).expires_at
    assert after.replace(tzinfo=None) > before.replace(tzinfo=None)
    assert at.session_state["label_state"].claim.expires_at.replace(tzinfo=None) == after.replace(tzinfo=None)
    assert "Keys" in infos(at)[0] and "undo your last label" in infos(at)[0]  # the key map
    assert any(c.value.startswith("Held for you until") for c in at.caption)


def test_a_lapsed_claim_is_replaced_with_a_notice(uwb):
    seed_basic(uwb, n_items=2)
    at = sign_in("ann1")
    from datetime import timedelta

    from sqlalchemy import update
    from sqlmodel import Session

    from workbench.db.models import Lease, utcnow

    with Session(uwb.engine) as s, s.begin():
        s.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=5)))
    at.run()
    assert "lapsed" in infos(at)[0]
    assert _item_text(at)


def test_progress_and_why_this_item_are_shown(uwb):
    seed_basic(uwb, n_items=3)
    at = sign_in("ann1")
    labels = [m.label for m in at.metric]
    assert labels[:3] == ["My labels today", "My labels in total", "My skips"]
    assert at.metric[3].value == "0 / 3"
    assert any("pool: 3 items" in c.value.replace("\\", "") for c in at.caption)
    assert any("drawn at random" in t for t in texts(at))


def test_context_columns_are_shown_beside_the_text(uwb):
    seed_basic(uwb, n_items=0)
    project = uwb.projects.get("demo", actor=Actor.operator())
    add_text_items(uwb, project.id, ["text number 0"], contexts=[{"author": "ann", "source": "mail"}])
    at = sign_in("ann1")
    assert "author: ann" in texts(at) and "source: mail" in texts(at)


def test_tabular_item_is_a_one_row_table(uwb):
    seed_basic(uwb, n_items=0)
    project = uwb.projects.create("tab", "tabular", ["a", "b"], settings={"eval_fraction": 0.0}, actor=Actor.operator())
    from sqlalchemy import insert
    from sqlmodel import Session

    from workbench.db.models import Item

    with Session(uwb.engine) as s, s.begin():
        s.execute(
            insert(Item),
            [
                {
                    "project_id": project.id,
                    "external_id": "r1",
                    "split": "pool",
                    "state": "open",
                    "slots_taken": 0,
                    "n_annotations": 0,
                    "random_key": 0.5,
                    "content": {"features": {"age": 41, "city": "Oslo"}},
                }
            ],
        )
    at = sign_in("ann1")
    at.sidebar.selectbox(key="project_label").select("tab").run()
    frame = at.dataframe[0].value
    assert list(frame.columns) == ["age", "city"] and frame.iloc[0].tolist() == [41, "Oslo"]


def _image_project(uwb, tmp_path, rel):
    root = tmp_path / "images"
    root.mkdir(exist_ok=True)
    Image.new("L", (8, 8), 200).save(root / "digit.png")
    project = uwb.projects.create(
        "img", "image", ["0", "1"], settings={"eval_fraction": 0.0, "image_root": str(root)}, actor=Actor.operator()
    )
    from sqlalchemy import insert
    from sqlmodel import Session

    from workbench.db.models import Item

    with Session(uwb.engine) as s, s.begin():
        s.execute(
            insert(Item),
            [
                {
                    "project_id": project.id,
                    "external_id": "d1",
                    "split": "pool",
                    "state": "open",
                    "slots_taken": 0,
                    "n_annotations": 0,
                    "random_key": 0.5,
                    "content": {"image": rel},
                }
            ],
        )
    return root


def test_small_image_is_upscaled_with_nearest_neighbour(uwb, tmp_path):
    seed_basic(uwb, n_items=0)
    _image_project(uwb, tmp_path, "digit.png")
    at = sign_in("ann1")
    at.sidebar.selectbox(key="project_label").select("img").run()
    assert not errors(at)
    assert len(at.image) == 1
    image = render.load_image(tmp_path / "images" / "digit.png")
    assert image.size == (256, 256) and image.getextrema() == ((200, 200), (200, 200), (200, 200))


@pytest.mark.parametrize("rel", ["../secret.png", "/etc/passwd", "sub/../../secret.png"])
def test_image_paths_outside_the_root_are_refused(uwb, tmp_path, rel):
    seed_basic(uwb, n_items=0)
    Image.new("L", (8, 8), 0).save(tmp_path / "secret.png")
    _image_project(uwb, tmp_path, rel)
    at = sign_in("ann1")
    at.sidebar.selectbox(key="project_label").select("img").run()
    # The item is set aside (quarantined) with the reason, and the annotator moves on.
    said = " ".join(infos(at))
    assert "set aside" in said and ("leaves image_root" in said or "absolute" in said)
    assert not at.image and not at.exception


def test_symlink_out_of_the_root_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.png").write_bytes(b"x")
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    with pytest.raises(render.ImageProblem, match="leaves image_root"):
        render.resolve_image({"image_root": str(root)}, "link.png")


def test_label_flow_on_sqlite_and_postgresql(db_url, monkeypatch, fast_hashing):
    """The same press-to-next-item flow against both databases (PostgreSQL claims use SKIP LOCKED)."""
    from workbench.services import Workbench
    from workbench.ui import session

    monkeypatch.setenv("WORKBENCH_DATABASE_URL", db_url)
    wb = Workbench.open(db_url)
    try:
        seed_basic(wb, n_items=2)
        at = sign_in("ann1")
        first = _item_text(at)
        at.button(key="label_btn_2").click().run()
        assert _item_text(at) != first
        at.button(key="label_btn_2").click().run()
        assert "Nothing left for you" in at.success[0].value
        assert wb.queue.my_stats("demo", actor=actor(wb, "ann1")).labels_total == 2
    finally:
        session._open.clear()
        wb.engine.dispose()


@pytest.mark.parametrize("revoke", ["disable", "sign_out_elsewhere"])
def test_a_press_after_the_session_was_revoked_stores_nothing(uwb, revoke):
    """Widget callbacks run before the page checks the session: they check it themselves, so a
    session revoked a moment ago (the user disabled, or signed out from another tab) stores no
    further label, and the page asks to sign in."""
    from sqlalchemy import func, select, update
    from sqlmodel import Session

    from workbench.db.models import Annotation, UserSession, utcnow

    seed_basic(uwb, n_items=4)
    at = sign_in("ann1")
    at.button(key="label_btn_0").click().run()
    with Session(uwb.engine) as s:
        stored = s.exec(select(func.count()).select_from(Annotation)).one()[0]
    assert stored == 1
    if revoke == "disable":
        uwb.users.set_active("ann1", False, actor=Actor.operator())
    else:
        with Session(uwb.engine) as s, s.begin():
            s.exec(update(UserSession).values(revoked_at=utcnow(), revoke_reason="signed out"))
    at.button(key="label_btn_1").click().run()
    assert not at.exception
    with Session(uwb.engine) as s:
        assert s.exec(select(func.count()).select_from(Annotation)).one()[0] == stored
    assert at.text_input(key="signin_name") is not None
