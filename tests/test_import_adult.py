"""The UCI Adult census file as a tabular project: '?' becomes null, income becomes prelabels, and
the test file's label typo ('>50K.') is refused as an unknown label, row by row."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from tests.conftest import shared_dataset
from workbench.db.models import Annotation, AuditLog, Item
from workbench.domain import Actor

COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]
NUMERIC = ["age", "capital-gain", "capital-loss", "education-num", "fnlwgt", "hours-per-week"]
ADULT = {"format": "csv", "columns": COLUMNS, "skip_initial_space": True, "prelabel_col": "income"}


def test_adult_census_income(wb):
    folder = shared_dataset("adult_census_income")
    project = wb.projects.create("adult", "tabular", ["<=50K", ">50K"], actor=Actor.operator())
    report = wb.imports.run("adult", folder / "adult.data", seed=0, actor=Actor.operator(), **ADULT)
    assert report.ok, report.lines()[:5]
    assert (report.rows, report.imported, report.prelabels) == (32561, 32561, 32561)
    assert abs(report.n_eval / report.imported - 0.2) < 0.01
    assert report.options["numeric_columns"] == NUMERIC
    with Session(wb.engine) as session:
        contents = session.exec(select(Item.content).where(Item.project_id == project.id)).all()
        labels = dict(
            session.exec(
                select(Annotation.label, func.count())
                .where(Annotation.project_id == project.id)
                .group_by(Annotation.label)
            ).all()
        )
    assert labels == {"<=50K": 24720, ">50K": 7841}  # PROVENANCE.md
    assert sum(any(v is None for v in c["features"].values()) for c in contents) == 2399  # rows with '?'
    first = contents[0]["features"] if contents[0]["features"]["fnlwgt"] == 77516 else None
    assert first is None or first["workclass"] == "State-gov" and first["age"] == 39
    assert all(isinstance(c["features"]["age"], int) for c in contents)

    # adult.test writes its labels with a trailing period: every row is refused, nothing written.
    wb.projects.create("adult-test", "tabular", ["<=50K", ">50K"], actor=Actor.operator())
    with Session(wb.engine) as session:
        before = (
            session.exec(select(func.count()).select_from(Item)).one(),
            session.exec(select(func.count()).select_from(AuditLog)).one(),
        )
    report = wb.imports.run("adult-test", folder / "adult.test", actor=Actor.operator(), **ADULT)
    assert not report.ok
    assert report.error_counts == {"unknown label": 16281} and len(report.errors) == 1000
    assert str(report.errors[0]).startswith("row 1 (line 1): unknown label: '<=50K.' in column 'income'")
    assert any("'>50K.'" in error.message for error in report.errors)
    with Session(wb.engine) as session:
        after = (
            session.exec(select(func.count()).select_from(Item)).one(),
            session.exec(select(func.count()).select_from(AuditLog)).one(),
        )
    assert after == before
