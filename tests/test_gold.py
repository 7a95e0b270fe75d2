"""Gold items (issue 13, deliverable 4): `import --gold-col` marks items with a known answer; they
are served at the project's gold_share of claims looking like any other item, and nothing an
annotator can reach (the claim, the Label page, "My recent labels", exports) says which are gold.
Gold stays out of eval metrics (moved to the pool) and rankings (final from the start)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from tests.helpers import annotators
from tests.test_ui_support import PASSWORD, sign_in, ui_url, uwb  # noqa: F401 - fixtures
from workbench.db.models import Item
from workbench.domain import Actor
from workbench.errors import PermissionDenied

if TYPE_CHECKING:
    from pathlib import Path

    from workbench.domain import ProjectInfo
    from workbench.services import Workbench

OPERATOR = Actor.operator()


def _csv(path: Path, rows: list[tuple[str, str, str]]) -> str:
    path.write_text("id,text,answer\n" + "".join(f"{i},{t},{a}\n" for i, t, a in rows))
    return str(path)


def _project(wb: Workbench, name: str = "gold", gold_share: float = 0.05) -> ProjectInfo:
    return wb.projects.create(
        name,
        "text",
        ["pos", "neg"],
        settings={"eval_fraction": 0.5, "random_share": 0.0, "gold_share": gold_share, "health_at_import": False},
        actor=OPERATOR,
    )


def _rows(n: int, gold_every: int = 4) -> list[tuple[str, str, str]]:
    return [(f"i{k}", f"text number {k}", ("pos", "neg")[k % 2] if k % gold_every == 0 else "") for k in range(n)]


def test_import_gold_col_marks_pool_gold_items_and_refuses_bad_answers(wb, tmp_path):
    info = _project(wb)
    report = wb.imports.run("gold", _csv(tmp_path / "a.csv", _rows(40)), gold_col="answer", seed=1, actor=OPERATOR)
    assert report.ok and report.imported == 40 and report.gold_items == 10
    assert ", 10 gold)" in report.summary()
    with Session(wb.engine) as s:
        items = s.execute(select(Item).where(Item.project_id == info.id)).scalars().all()
    gold = {i.external_id: i for i in items if i.gold_label is not None}
    assert sorted(gold) == sorted(f"i{k}" for k in range(0, 40, 4))
    # Every gold item is a pool item (eval_fraction 0.5 put some in eval first), final with its answer.
    assert all(i.split == "pool" and i.state == "final" and i.final_label == i.gold_label for i in gold.values())
    assert any(i.split == "eval" for i in items)  # the others keep their split
    assert all("answer" not in i.content.get("context", {}) and "answer" not in i.content for i in items)

    # A gold answer outside the label set refuses the file: nothing written.
    bad = _csv(tmp_path / "b.csv", [("j1", "one", "pos"), ("j2", "two", "maybe")])
    refused = wb.imports.run("gold", bad, gold_col="answer", actor=OPERATOR)
    assert not refused.ok and refused.imported == 0 and "'maybe' in column 'answer'" in refused.errors[0].message
    with pytest.raises(Exception, match="gold_col 'answer' is also a content column"):
        out = wb.imports.run("gold", bad, gold_col="answer", context_cols=["answer"], actor=OPERATOR)
        raise AssertionError(out.file_errors[0]) if out.file_errors else AssertionError("accepted")
    with Session(wb.engine) as s:
        assert s.execute(select(func.count()).where(Item.project_id == info.id)).scalar_one() == 40


def test_gold_claims_look_like_any_other_and_nothing_an_annotator_reaches_reveals_them(wb, tmp_path):
    info = _project(wb, gold_share=1.0)  # every claim serves gold while there is gold left for them
    wb.imports.run("gold", _csv(tmp_path / "a.csv", _rows(12)), gold_col="answer", eval_fraction=0.0, actor=OPERATOR)
    (ann,) = annotators(wb, 1)
    project = wb.projects.get("gold", actor=OPERATOR)
    served = []
    for _ in range(4):
        claimed = wb.queue.claim("gold", actor=ann)
        served.append(claimed)
        assert "gold" not in repr(claimed).lower() and "answer" not in repr(claimed.content)
        wb.queue.submit(claimed.lease_id, "pos", actor=ann)
    with Session(wb.engine) as s:
        gold_ids = set(
            s.execute(select(Item.id).where(Item.project_id == info.id, Item.gold_label.is_not(None))).scalars()
        )
    assert {c.item_id for c in served[:3]} == gold_ids and served[3].item_id not in gold_ids
    assert {c.reason for c in served[:3]} == {"random"}  # recorded and shown as a random pick
    recent = wb.queue.recent_labels(project, actor=ann)
    assert len(recent) == 4 and all(r.changeable for r in recent)  # a gold item is not "already decided"
    assert "gold" not in repr(recent).lower()
    assert "gold" not in repr(wb.queue.label_view(project, actor=ann)).lower()
    with pytest.raises(PermissionDenied):
        wb.exports.annotations("gold", "csv", tmp_path / "mine.csv", actor=ann)
    with pytest.raises(PermissionDenied):
        wb.exports.items("gold", "csv", tmp_path / "items.csv", actor=ann)


def test_label_page_shows_a_gold_item_like_any_other(uwb, tmp_path):
    uwb.users.add("ann1", "annotator", PASSWORD, actor=OPERATOR)
    _project(uwb, gold_share=1.0)
    uwb.imports.run("gold", _csv(tmp_path / "a.csv", _rows(4, 1)), gold_col="answer", eval_fraction=0.0, actor=OPERATOR)
    at = sign_in("ann1")
    shown = [t.value for t in at.text] + [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert any("text number" in v for v in shown), shown
    assert not any("gold" in str(v).lower() for v in shown), shown
    assert not any("gold" in str(b.label).lower() for b in at.button)
    at.button(key="label_btn_0").click().run()
    shown = [t.value for t in at.text] + [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert not any("gold" in str(v).lower() for v in shown), shown
