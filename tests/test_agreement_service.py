"""The agreement service reads real labels from the database and matches a direct computation."""

from __future__ import annotations

import csv
import random

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import insert
from sqlmodel import Session

from tests.conftest import shared_dataset
from tests.helpers import add_items, annotators
from workbench.db.models import Item
from workbench.domain import Actor
from workbench.errors import PermissionDenied
from workbench.services.queue import QueueService


def _replay(wb, project_name, answers_by_item, people):
    """Each person claims items and answers with answers_by_item[external_id][person.name]."""
    for person in people:
        queue = QueueService(wb.engine, random.Random(0))
        while (lease := queue.claim(project_name, actor=person)) is not None:
            answer = answers_by_item[lease.external_id].get(person.name)
            if answer is None:
                queue.skip(lease.lease_id, "not one of mine", actor=person)
            else:
                queue.submit(lease.lease_id, answer, actor=person)


def test_report_matches_direct_computation(wb):
    project = wb.projects.create(
        "ag", "text", ["a", "b", "c"], settings={"eval_fraction": 0.0, "random_share": 0.0}, actor=Actor.operator()
    )
    add_items(wb.engine, project.id, 40)
    people = annotators(wb, 3)
    rng = random.Random(3)
    answers = {f"item-{i}": {p.name: rng.choice("abc") for p in people} for i in range(40)}
    _replay(wb, "ag", answers, people)
    (reviewer,) = annotators(wb, 1, role="reviewer", prefix="rev")
    report = wb.agreement.report("ag", actor=reviewer)
    assert report.n_items == 40 and report.n_judgments == 80
    stored = {}
    for case in wb.review.queue("ag", actor=reviewer, limit=1000) + wb.review.queue(
        "ag", actor=reviewer, limit=1000, state="final"
    ):
        stored[case.external_id] = {a.annotator: a.label for a in case.answers}
    for pair in report.cohen_kappa:
        common = [k for k, v in stored.items() if pair.annotator_a in v and pair.annotator_b in v]
        a = [stored[k][pair.annotator_a] for k in common]
        b = [stored[k][pair.annotator_b] for k in common]
        assert pair.n_items == len(common)
        if len(set(a) | set(b)) > 1:
            assert pair.kappa == pytest.approx(cohen_kappa_score(a, b, labels=["a", "b", "c"]))
    with pytest.raises(PermissionDenied):
        wb.agreement.report("ag", actor=people[0])


def test_crowd_replay_gives_the_direct_kappa_and_alpha(wb):
    """Real RTE judgments replayed through the queue: kappa/alpha equal a direct computation."""
    folder = shared_dataset("crowd_snow2008_rte_temp")
    with open(folder / "rte.standardized.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    item_col, worker_col, label_col = "orig_id", "!amt_worker_ids", "response"
    # The two most active workers and the items both judged: a real pair with real disagreement.
    counts: dict[str, int] = {}
    for r in rows:
        counts[r[worker_col]] = counts.get(r[worker_col], 0) + 1
    w1, w2 = sorted(counts, key=counts.get, reverse=True)[:2]
    by_item: dict[str, dict[str, str]] = {}
    for r in rows:
        if r[worker_col] in (w1, w2):
            by_item.setdefault(r[item_col], {})[r[worker_col]] = r[label_col]
    both = dict([(k, v) for k, v in sorted(by_item.items()) if len(v) == 2][:150])
    labels = sorted({x for v in both.values() for x in v.values()})
    project = wb.projects.create(
        "rte", "text", labels, settings={"eval_fraction": 0.0, "random_share": 0.0}, actor=Actor.operator()
    )
    with Session(wb.engine) as s, s.begin():
        s.execute(
            insert(Item),
            [
                {"project_id": project.id, "external_id": k, "content": {"text": k}, "random_key": i / len(both)}
                for i, k in enumerate(both)
            ],
        )
    wb.users.add(w1, "annotator", "password-123", actor=Actor.operator())
    wb.users.add(w2, "annotator", "password-123", actor=Actor.operator())
    people = [wb.users.authenticate(w, "password-123") for w in (w1, w2)]
    _replay(wb, "rte", both, people)
    report = wb.agreement.report("rte", actor=Actor.operator())
    a = [v[w1] for v in both.values()]
    b = [v[w2] for v in both.values()]
    (pair,) = report.cohen_kappa
    assert pair.n_items == len(both) == 150
    assert pair.kappa == pytest.approx(cohen_kappa_score(a, b))
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.array([[index[x] for x in a], [index[x] for x in b]], dtype=float)
    assert report.krippendorff_alpha == pytest.approx(
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    )
