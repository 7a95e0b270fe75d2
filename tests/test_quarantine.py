"""Quarantine: an item whose image breaks at run time leaves the queue and the rounds, with the
reason, for admins; the annotator gets the next item, never a traceback."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import func, insert, select
from sqlmodel import Session

from tests.test_ui_support import (  # noqa: F401 - fixtures
    PASSWORD,
    errors,
    fast_hashing,
    infos,
    sign_in,
    ui_url,
    uwb,
)
from workbench.db.models import Item, Lease, RankEntry
from workbench.domain import Actor, ItemState, LeaseState, QuarantineSource
from workbench.errors import Conflict, NotFound, PermissionDenied

OPERATOR = Actor.operator()


def _png(color: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def _image_project(wb, root, names, *, project="img"):
    root.mkdir(exist_ok=True)
    info = wb.projects.create(
        project,
        "image",
        ["0", "1"],
        actor=OPERATOR,
        settings={"eval_fraction": 0.0, "random_share": 0.0, "image_root": str(root)},
    )
    with Session(wb.engine) as s, s.begin():
        s.execute(
            insert(Item),
            [
                {
                    "project_id": info.id,
                    "external_id": name,
                    "split": "pool",
                    "state": "open",
                    "slots_taken": 0,
                    "n_annotations": 0,
                    "random_key": i / 10,
                    "content": {"image": name},
                }
                for i, name in enumerate(names)
            ],
        )
    return info


def _users(wb):
    for name, role in (("admin", "admin"), ("ann1", "annotator"), ("ann2", "annotator")):
        wb.users.add(name, role, PASSWORD, actor=OPERATOR)
    return {name: wb.users.authenticate(name, PASSWORD) for name in ("admin", "ann1", "ann2")}


def _state(wb, external_id):
    with Session(wb.engine) as s:
        return s.execute(select(Item.state, Item.slots_taken).where(Item.external_id == external_id)).one()


def test_quarantine_takes_the_item_out_and_release_puts_it_back(wb, tmp_path):
    people = _users(wb)
    info = _image_project(wb, tmp_path / "imgs", ["a.png", "b.png"])
    claim = wb.queue.claim("img", actor=people["ann1"])
    other = wb.queue.claim("img", actor=people["ann2"])  # the partial item first: same item
    assert other.item_id == claim.item_id
    with Session(wb.engine) as s, s.begin():
        s.execute(
            insert(RankEntry),
            [{"project_id": info.id, "position": 0, "item_id": claim.item_id, "score": 1.0, "strategy": "margin"}],
        )
    with pytest.raises(PermissionDenied):
        wb.quarantine.list_quarantined("img", actor=people["ann1"])
    with pytest.raises(NotFound):  # not ann2's claim
        wb.quarantine.quarantine_claim(claim.lease_id, "x", actor=people["ann2"])
    wb.quarantine.quarantine_claim(claim.lease_id, "the image data is truncated", actor=people["ann1"])
    assert _state(wb, claim.external_id) == ("quarantined", 0)  # both leases closed, slots freed
    with Session(wb.engine) as s:
        assert (
            s.execute(
                select(func.count())
                .select_from(Lease)
                .where(Lease.item_id == claim.item_id, Lease.state == LeaseState.ACTIVE)
            ).scalar_one()
            == 0
        )
        assert s.execute(select(func.count()).select_from(RankEntry)).scalar_one() == 0
    listed = wb.quarantine.list_quarantined("img", actor=people["admin"])
    assert [(q.external_id, q.reason, q.source, q.reported_by, q.previous_state) for q in listed] == [
        (claim.external_id, "the image data is truncated", QuarantineSource.RENDER, "ann1", ItemState.OPEN)
    ]
    # Both annotators now get the other item, never the quarantined one.
    for name in ("ann1", "ann2"):
        nxt = wb.queue.claim("img", actor=people[name])
        assert nxt is not None and nxt.item_id != claim.item_id
    assert wb.quarantine.release("img", claim.item_id, actor=people["admin"]) == ItemState.OPEN
    assert wb.quarantine.list_quarantined("img", actor=OPERATOR) == []
    with pytest.raises(Conflict):
        wb.quarantine.release("img", claim.item_id, actor=OPERATOR)


def test_a_round_quarantines_items_it_cannot_featurize(wb, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    _users(wb)
    root = tmp_path / "imgs"
    names = [f"{i}.png" for i in range(12)]
    _image_project(wb, root, names + ["fake.png", "bomb.png"])
    for i, name in enumerate(names):
        (root / name).write_bytes(_png(20 * i))
    (root / "fake.png").write_text("not an image")
    Image.new("1", (9000, 9000)).save(root / "bomb.png")  # 81 MP: over the 40 MP limit
    from tests.helpers import set_final_labels

    info = wb.projects.get("img", actor=Actor.operator())
    set_final_labels(wb.engine, info.id, {name: str(i % 2) for i, name in enumerate(names[:6])})
    set_final_labels(wb.engine, info.id, {"fake.png": "0"})  # even a labeled item leaves the version
    result = wb.rounds.run_retrain("img", actor=OPERATOR)
    assert result.n_train == 6  # fake.png was final, but is quarantined before the version is cut
    listed = {q.external_id: q for q in wb.quarantine.list_quarantined("img", actor=OPERATOR)}
    assert set(listed) == {"fake.png", "bomb.png"}
    assert listed["fake.png"].source == QuarantineSource.FEATURIZE
    assert listed["fake.png"].previous_state == ItemState.FINAL
    assert "pixels" in listed["bomb.png"].reason and str(root) not in listed["bomb.png"].reason
    assert wb.rounds.run_retrain("img", actor=OPERATOR).n_train == 6  # the next round runs too


def test_label_page_sets_a_broken_image_aside_and_serves_the_next(uwb, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    people = _users(uwb)
    root = tmp_path / "images"
    info = _image_project(uwb, root, ["broken.png", "good.png"])
    with Session(uwb.engine) as s, s.begin():  # the ranking serves the broken one first
        broken_id = s.execute(select(Item.id).where(Item.external_id == "broken.png")).scalar_one()
        s.execute(
            insert(RankEntry),
            [{"project_id": info.id, "position": 0, "item_id": broken_id, "score": 1.0, "strategy": "margin"}],
        )
    (root / "broken.png").write_bytes(_png(10)[:30])  # truncated
    (root / "good.png").write_bytes(_png(200))
    at = sign_in("ann1")  # the only project: its label page opens at once
    assert not at.exception
    said = " ".join(infos(at))
    assert "broken.png was set aside for an admin: the image" in said
    assert len(at.image) == 1 and "good.png" in " ".join(t.value for t in at.text)
    assert [b.key for b in at.button if b.key and b.key.startswith("label_btn_")] == ["label_btn_0", "label_btn_1"]
    assert "Traceback" not in " ".join(errors(at) + said.split()) and str(root) not in said
    listed = uwb.quarantine.list_quarantined("img", actor=people["admin"])
    assert [q.external_id for q in listed] == ["broken.png"]
    # The rendition, not the original, is served: a cached PNG under WORKBENCH_HOME.
    made = list((tmp_path / "home" / "renditions").rglob("*.png"))
    assert len(made) == 1
    with Image.open(made[0]) as shown:
        assert shown.size == (256, 256)  # the 8x8 original, upscaled for the eye


def test_cli_lists_and_releases(tmp_path, capsys):
    from workbench.cli import main
    from workbench.db.engine import make_engine
    from workbench.services import Workbench

    url = f"sqlite:///{tmp_path / 'w.db'}"
    wb = Workbench(make_engine(url))
    people = _users(wb)
    _image_project(wb, tmp_path / "imgs", ["a.png", "b.png"])
    claim = wb.queue.claim("img", actor=people["ann1"])
    wb.quarantine.quarantine_claim(claim.lease_id, "the image data is truncated", actor=people["ann1"])
    wb.engine.dispose()
    assert main(["--database-url", url, "quarantine", "list", "img"]) == 0
    listed = capsys.readouterr().out
    assert claim.external_id in listed and "render" in listed and "truncated" in listed
    assert main(["--database-url", url, "quarantine", "release", "img", "nope.png"]) == 1
    assert "no quarantined item" in capsys.readouterr().err
    assert main(["--database-url", url, "quarantine", "release", "img", claim.external_id]) == 0
    assert "open again" in capsys.readouterr().out
    assert main(["--database-url", url, "quarantine", "list", "img"]) == 0
    assert "no quarantined items" in capsys.readouterr().out
