"""Project members, on SQLite and PostgreSQL: an annotator sees, claims from and reads only the
projects they belong to, a reviewer reviews and exports only theirs, admins see all; the checks
are in the services, so every public service method is walked with an outsider here."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select, text
from sqlmodel import Session

from tests.helpers import add_items
from tests.test_fail_closed import UNAUTHENTICATED, public_methods
from workbench.db.models import AuditLog, Lease
from workbench.domain import Actor, ProjectInfo, Role, role_allows
from workbench.errors import Conflict, NotFound, PermissionDenied, WorkbenchError
from workbench.services._auth import required_role

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.explicit_members

OP = Actor.operator()
PASSWORD = "password-123"


def _people(wb, *names_roles: tuple[str, Role]) -> dict[str, Actor]:
    for name, role in names_roles:
        wb.users.add(name, role, PASSWORD, actor=OP)
    return {name: wb.users.authenticate(name, PASSWORD) for name, _ in names_roles}


def _two_projects(wb) -> tuple[ProjectInfo, ProjectInfo]:
    settings = {"eval_fraction": 0.0, "random_share": 0.0}
    mine = wb.projects.create("mine", "text", ["a", "b"], settings=settings, actor=OP)
    theirs = wb.projects.create("theirs", "text", ["a", "b"], settings=settings, actor=OP)
    add_items(wb.engine, mine.id, 4)
    add_items(wb.engine, theirs.id, 4, start=100)
    return mine, theirs


def test_an_annotator_sees_and_claims_only_their_projects(wb):
    _two_projects(wb)
    people = _people(wb, ("ann", Role.ANNOTATOR), ("admin", Role.ADMIN))
    ann = people["ann"]
    assert wb.projects.list(actor=ann) == []  # a new project starts with no members
    wb.members.add("mine", "ann", actor=OP)
    assert [p.name for p in wb.projects.list(actor=ann)] == ["mine"]
    assert [p.name for p in wb.projects.list(actor=people["admin"])] == ["mine", "theirs"]
    assert wb.queue.claim("mine", actor=ann) is not None
    for call in (
        lambda: wb.queue.claim("theirs", actor=ann),
        lambda: wb.projects.get("theirs", actor=ann),
        lambda: wb.projects.progress("theirs", actor=ann),
        lambda: wb.queue.my_stats("theirs", actor=ann),
    ):
        with pytest.raises(PermissionDenied, match="ann is not a member of project 'theirs'"):
            call()


def test_a_reviewer_reviews_and_exports_only_where_they_review(wb, tmp_path):
    _two_projects(wb)
    rev = _people(wb, ("rev", Role.REVIEWER))["rev"]
    wb.members.add("mine", "rev", actor=OP)  # default: their user role, reviewer
    wb.members.add("theirs", "rev", role="annotator", actor=OP)  # labels there, does not review
    assert wb.review.queue("mine", actor=rev) == []
    wb.exports.items("mine", "csv", tmp_path / "mine.csv", actor=rev)
    assert wb.queue.claim("theirs", actor=rev) is not None  # a reviewer member may also label
    with pytest.raises(PermissionDenied, match="rev is an annotator on project 'theirs', not a reviewer"):
        wb.review.queue("theirs", actor=rev)
    with pytest.raises(PermissionDenied, match="not a reviewer"):
        wb.exports.items("theirs", "csv", tmp_path / "theirs.csv", actor=rev)
    assert not (tmp_path / "theirs.csv").exists()
    from workbench.services.quality import QualityService  # not on the facade (CLI and rounds use it)

    with pytest.raises(PermissionDenied, match="not a reviewer"):
        QualityService(wb.engine).stored("theirs", actor=rev)
    assert QualityService(wb.engine).stored("mine", actor=rev) == []
    assert [(m.user, m.role) for m in wb.members.list("theirs", actor=OP)] == [("rev", Role.ANNOTATOR)]


def test_adding_and_removing_members_refuses_what_cannot_hold(wb):
    _two_projects(wb)
    people = _people(wb, ("ann", Role.ANNOTATOR), ("boss", Role.ADMIN), ("rev", Role.REVIEWER))
    with pytest.raises(WorkbenchError, match="boss is an admin and sees every project"):
        wb.members.add("mine", "boss", actor=OP)
    with pytest.raises(WorkbenchError, match="ann is an annotator; only a reviewer can be a reviewer member"):
        wb.members.add("mine", "ann", role="reviewer", actor=OP)
    with pytest.raises(WorkbenchError, match="unknown member role 'admin'"):
        wb.members.add("mine", "rev", role="admin", actor=OP)
    with pytest.raises(NotFound, match="no user named 'nobody'"):
        wb.members.add("mine", "nobody", actor=OP)
    with pytest.raises(NotFound, match="no project named 'nope'"):
        wb.members.add("nope", "ann", actor=OP)
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        wb.members.add("mine", "ann", actor=people["rev"])
    assert wb.members.list("mine", actor=OP) == []  # nothing was written by any refusal
    wb.members.add("mine", "ann", actor=OP)
    with pytest.raises(Conflict, match="already an annotator member"):
        wb.members.add("mine", "ann", actor=OP)
    wb.members.add("mine", "rev", role="annotator", actor=OP)
    assert wb.members.add("mine", "rev", role="reviewer", actor=OP).role is Role.REVIEWER  # role changed
    # removing ends their claims there and they no longer see the project
    claimed = wb.queue.claim("mine", actor=people["ann"])
    wb.members.remove("mine", "ann", actor=OP)
    with Session(wb.engine) as session:
        assert session.get(Lease, claimed.lease_id).state == "expired"
        actions = session.exec(select(AuditLog.action).where(AuditLog.action.like("project.member.%"))).scalars().all()
    assert actions.count("project.member.add") == 3 and actions.count("project.member.remove") == 1
    assert wb.projects.list(actor=people["ann"]) == []
    with pytest.raises(PermissionDenied, match="not a member"):
        wb.queue.submit(claimed.lease_id, "a", actor=people["ann"])
    with pytest.raises(NotFound, match="ann is not a member of 'mine'"):
        wb.members.remove("mine", "ann", actor=OP)


def test_the_migration_makes_existing_people_members_of_existing_projects(engine):
    """Databases from before members keep working: every annotator and reviewer joins every project."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from workbench.db.migrate import MIGRATIONS, alembic_config, upgrade

    before = ScriptDirectory(str(MIGRATIONS)).get_revision("0014_members").down_revision
    command.downgrade(alembic_config(engine), before)
    with engine.begin() as conn:
        for i, role in enumerate(("annotator", "reviewer", "admin")):
            conn.execute(
                text(
                    "INSERT INTO app_user (name, role, password_hash, active, failed_logins, created_at) "
                    "VALUES (:n, :r, '!', true, 0, CURRENT_TIMESTAMP)"
                ),
                {"n": f"u{i}", "r": role},
            )
        for name in ("p1", "p2"):
            conn.execute(
                text(
                    "INSERT INTO project (name, kind, overlap, strategy, settings, created_at) "
                    "VALUES (:n, 'text', 2, 'margin', '{}', CURRENT_TIMESTAMP)"
                ),
                {"n": name},
            )
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.name, u.name, m.role FROM project_member m JOIN project p ON p.id = m.project_id "
                "JOIN app_user u ON u.id = m.user_id ORDER BY p.name, u.name"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("p1", "u0", "annotator"),
        ("p1", "u1", "reviewer"),
        ("p2", "u0", "annotator"),
        ("p2", "u1", "reviewer"),
    ]


def test_cli_project_member_add_list_remove(db_url, wb, capsys):
    from workbench.cli import main

    wb.projects.create("p", "text", ["a", "b"], actor=OP)
    _people(wb, ("ann", Role.ANNOTATOR), ("rev", Role.REVIEWER))
    base = ["--database-url", db_url, "project", "member"]
    assert main([*base, "add", "p", "ann"]) == 0
    assert main([*base, "add", "p", "rev", "--role", "annotator"]) == 0
    out = capsys.readouterr().out
    assert "ann is an annotator member of p" in out and "rev is an annotator member of p" in out
    assert main([*base, "list", "p"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["ann", "annotator"], ["rev", "annotator"]]
    assert main([*base, "remove", "p", "ann"]) == 0
    assert "ann is no longer a member of p" in capsys.readouterr().out
    assert main([*base, "add", "p", "ann", "--role", "reviewer"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "workbench: error: ann is an annotator; only a reviewer can be a reviewer member"
    assert [m.user for m in wb.members.list("p", actor=OP)] == ["rev"]


# -- every public service method, called by someone who is not a member ---------------------------
# Methods that concern no project (the caller's own account, session and leases, the worker list).
NOT_ABOUT_A_PROJECT = {
    "UserService.get",
    "UserService.change_password",
    "SessionService.current",
    "SessionService.sign_out",
    "QueueService.release_leases",
    "JobService.live_workers",
}


# Listings of projects: they leave out the projects the caller does not belong to (not an error).
LISTINGS = {"ProjectService.list": "name", "OverviewService.projects": "project"}

# Arguments that keep a call within the role the method declares (a stored health check is for admins).
EXTRA = {"HealthService.check": {"store": False}, "JobService.enqueue": {"kind": "retrain"}}


def _world(wb, tmp_path) -> dict:
    """A project 'walled' with items, a job, a version and an annotation and a lease of the outsider,
    who was a member, labeled, claimed again, and was then taken off the project."""
    project = wb.projects.create("walled", "text", ["a", "b"], settings={"eval_fraction": 0.0}, actor=OP)
    add_items(wb.engine, project.id, 6)
    people = _people(wb, ("outsider", Role.ANNOTATOR), ("other-reviewer", Role.REVIEWER))
    wb.members.add("walled", "outsider", actor=OP)
    first = wb.queue.claim("walled", actor=people["outsider"])
    annotation = wb.queue.submit(first.lease_id, "a", actor=people["outsider"]).annotation_id
    lease = wb.queue.claim("walled", actor=people["outsider"]).lease_id
    wb.members.remove("walled", "outsider", actor=OP)
    job = wb.jobs.enqueue("walled", "retrain", actor=OP)
    wb.versions.create("walled", actor=OP)
    data = tmp_path / "rows.csv"
    data.write_text("id,text\nx1,hello\n")
    return {
        "project": project,
        "people": people,
        "values": {
            "lease_id": lease,
            "annotation_id": annotation,
            "item_id": first.item_id,
            "job_id": job.id,
            "external_id": first.external_id,
            "external_ids": [first.external_id],
            "label": "a",
            "reason": "a reason",
            "decision": "label",
            "kind": "items",
            "fmt": "csv",
            "out_path": tmp_path / "out.csv",
            "number": 1,
            "a": 1,
            "b": 1,
            "run_a": 1,
            "run_b": 1,
            "relative": "x.png",
            "text": "guidelines",
            "path": data,
            "folder": tmp_path,
        },
    }


def _arguments(function: Callable[..., object], world: dict, extra: dict) -> tuple[list, dict]:
    """Real values for every required parameter but `actor` (the project is 'walled')."""
    args, kwargs = [], {}
    for parameter in list(inspect.signature(function).parameters.values())[1:]:
        if parameter.name == "actor" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is not parameter.empty and parameter.name not in ("label",):
            continue
        if parameter.name in ("project", "project_name", "name"):
            wants_info = "ProjectInfo" in str(parameter.annotation) and "str" not in str(parameter.annotation)
            value = world["project"] if wants_info else "walled"
        elif parameter.name in extra:
            value = extra.pop(parameter.name)
        elif parameter.name in world["values"]:
            value = world["values"][parameter.name]
        else:
            value = object()  # only reached by methods an annotator is refused by role anyway
        if parameter.kind is parameter.KEYWORD_ONLY:
            kwargs[parameter.name] = value
        else:
            args.append(value)
    return args, kwargs | extra


def test_every_service_method_refuses_someone_who_is_not_a_member(wb, tmp_path):
    world = _world(wb, tmp_path)
    outsider, reviewer = world["people"]["outsider"], world["people"]["other-reviewer"]
    walked, refused_as_member, reviewer_refused = [], [], []
    for qualname, cls, name in public_methods(wb):
        if qualname in UNAUTHENTICATED or qualname in NOT_ABOUT_A_PROJECT:
            continue
        service = next(
            getattr(wb, attr) for attr in dir(type(wb)) if not attr.startswith("_") and type(getattr(wb, attr)) is cls
        )
        method = getattr(service, name)
        role = required_role(getattr(cls, name))
        args, kwargs = _arguments(getattr(cls, name), world, dict(EXTRA.get(qualname, {})))
        if qualname in LISTINGS:
            for who in (outsider, reviewer):
                if role_allows(who.role, role):
                    assert [getattr(row, LISTINGS[qualname]) for row in method(actor=who)] == [], qualname
            walked.append(qualname)
            continue
        with pytest.raises(PermissionDenied) as refusal:
            method(*args, **kwargs, actor=outsider)
        walked.append(qualname)
        if role_allows(Role.ANNOTATOR, role):
            # the role allowed the call, so the refusal must be the membership
            assert "outsider is not a member of project 'walled'" in str(refusal.value), qualname
            refused_as_member.append(qualname)
        if role is Role.REVIEWER:
            with pytest.raises(PermissionDenied) as refusal:
                method(*args, **kwargs, actor=reviewer)
            assert "other-reviewer is not a member of project 'walled'" in str(refusal.value), (qualname, refusal.value)
            reviewer_refused.append(qualname)
    total = [q for q, _, _ in public_methods(wb) if q not in UNAUTHENTICATED | NOT_ABOUT_A_PROJECT]
    assert walked == total  # every method that concerns a project
    assert len(refused_as_member) >= 15 and len(reviewer_refused) >= 30
    # the outsider's past work is still there: refusals wrote nothing, removal deleted nothing
    with Session(wb.engine) as session:
        assert session.get(Lease, world["values"]["lease_id"]).state == "expired"
