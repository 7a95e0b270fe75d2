"""The item browser: filters, full-text search, sorting, paging, CSV export of what is filtered, an
item's whole history, and roles; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

import pytest

from tests.helpers import add_text_items, annotators
from workbench.domain import Actor
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.services.browse import BrowseFilter, BrowseState, SortKey

OPERATOR = Actor.operator()
TEXTS = [
    "the cat sat on the mat",
    "a dog in the park",
    '=HYPERLINK("http://x") cat again',
    "weather report for monday",
    "cats and dogs living together",
    "nothing to see here",
]


@pytest.fixture
def labeled(wb):
    """Six items, overlap 2, two annotators who label whatever the queue serves them: "pos", except
    that ann1 says "neg" on t1 (a disagreement) and ann0 skips t2 once ("unclear text")."""
    info = wb.projects.create(
        "browse", "text", ["pos", "neg"], actor=OPERATOR, settings={"eval_fraction": 0.0, "random_share": 0.0}
    )
    add_text_items(wb.engine, info.id, TEXTS, eval_fraction=0.0)
    people = annotators(wb, 2)
    skipped = False
    for _ in range(30):
        served = 0
        for k, person in enumerate(people):
            claim = wb.queue.claim("browse", actor=person)
            if claim is None:
                continue
            served += 1
            if claim.external_id == "t2" and k == 0 and not skipped:
                wb.queue.skip(claim.lease_id, "unclear text", actor=person)
                skipped = True
            else:
                wb.queue.submit(claim.lease_id, "neg" if (k, claim.external_id) == (1, "t1") else "pos", actor=person)
        if not served:
            break
    return wb, people


def _ids(page) -> list[str]:
    return [row.external_id for row in page.rows]


def test_filters_search_sort_and_page(labeled):
    wb, people = labeled
    page = wb.browse.page("browse", actor=OPERATOR)
    assert page.total == 6 and not page.more_than_total and _ids(page) == [f"t{i}" for i in range(6)]
    finals = ["t0", "t3", "t4", "t5"]
    assert _ids(wb.browse.page("browse", actor=OPERATOR, filters=BrowseFilter(state=BrowseState.FINAL))) == finals
    assert _ids(wb.browse.page("browse", actor=OPERATOR, filters=BrowseFilter(state=BrowseState.PARTLY_LABELED))) == [
        "t2"
    ]
    assert _ids(wb.browse.page("browse", actor=OPERATOR, filters=BrowseFilter(state=BrowseState.REVIEW))) == ["t1"]
    assert _ids(wb.browse.page("browse", actor=OPERATOR, filters=BrowseFilter(final_label="pos"))) == finals
    assert _ids(wb.browse.page("browse", actor=OPERATOR, filters=BrowseFilter(disagreement=True))) == ["t1"]
    assert _ids(wb.browse.page("browse", actor=OPERATOR, filters=BrowseFilter(annotator=people[0].name))) == [
        "t0",
        "t1",
        "t3",
        "t4",
        "t5",
    ]
    assert _ids(wb.browse.page("browse", actor=OPERATOR, filters=BrowseFilter(skip_reason="unclear text"))) == ["t2"]
    assert _ids(wb.browse.page("browse", actor=OPERATOR, filters=BrowseFilter(search="cat"))) == ["t0", "t2"]
    assert _ids(wb.browse.page("browse", actor=OPERATOR, filters=BrowseFilter(search="cat again"))) == ["t2"]
    assert _ids(
        wb.browse.page("browse", actor=OPERATOR, filters=BrowseFilter(search="cat", state=BrowseState.FINAL))
    ) == ["t0"]
    # Items added after a search are found by the next one (the SQLite index catches up).
    from tests.helpers import add_items

    info = (
        next(p for p in wb.projects.list(actor=OPERATOR) if p.name == "browse")
        if "actor" in wb.projects.list.__code__.co_varnames
        else wb.projects.get("browse", actor=Actor.operator())
    )

    add_items(wb.engine, info.id, 3, start=100)
    assert _ids(wb.browse.page("browse", actor=OPERATOR, filters=BrowseFilter(search="number 101"))) == ["item-101"]
    by_labels = wb.browse.page("browse", actor=OPERATOR, filters=BrowseFilter(sort=SortKey.LABELS, descending=True))
    assert set(_ids(by_labels)[:5]) == {"t0", "t1", "t3", "t4", "t5"}
    second = wb.browse.page("browse", actor=OPERATOR, offset=4, limit=4)
    assert _ids(second) == ["t4", "t5", "item-100", "item-101"] and second.total == 9
    with pytest.raises(WorkbenchError):
        wb.browse.page("browse", actor=OPERATOR, filters=BrowseFilter(search="!!!"))


def test_export_is_exactly_what_is_filtered_and_formula_safe(labeled):
    wb, _ = labeled
    data = wb.browse.export_csv("browse", actor=OPERATOR, filters=BrowseFilter(search="cat"))
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert [r[0] for r in rows[1:]] == ["t0", "t2"]
    assert rows[2][5].startswith("'=HYPERLINK")


def test_item_detail_has_the_whole_history(labeled):
    wb, people = labeled
    detail = wb.browse.detail("browse", "t1", actor=OPERATOR)
    assert sorted((a.annotator, a.label) for a in detail.annotations) == sorted(
        [(people[0].name, "pos"), (people[1].name, "neg")]
    )
    assert {lease.state for lease in detail.leases} >= {"submitted"}
    assert (
        any(
            e.action.startswith("annotation") or e.action.startswith("queue") or "submit" in e.action
            for e in detail.audit
        )
        or detail.audit == ()
    )
    skipped = wb.browse.detail("browse", "t2", actor=OPERATOR)
    assert any(lease.skip_reason == "unclear text" and lease.annotator == people[0].name for lease in skipped.leases)


def test_annotators_cannot_browse(labeled):
    wb, people = labeled
    with pytest.raises(PermissionDenied):
        wb.browse.page("browse", actor=people[0])
    with pytest.raises(PermissionDenied):
        wb.browse.detail("browse", "t0", actor=people[0])
    with pytest.raises(PermissionDenied):
        wb.browse.export_csv("browse", actor=people[0])
    (reviewer,) = annotators(wb, 1, role="reviewer", prefix="rev")  # a reviewer of the project
    assert wb.browse.page("browse", actor=reviewer).total == 6
