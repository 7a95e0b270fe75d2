"""Authorization fails closed: every public method of every service reachable from the Workbench
facade takes a required keyword-only `actor`, refuses a missing or None actor, and refuses an
annotator where its role (recorded by @requires next to the method) demands more.

The methods are found by introspection, so a method added later is covered without touching this
file; one without @requires (or an explicit @unauthenticated) fails here."""

from __future__ import annotations

import inspect
from functools import cached_property
from typing import TYPE_CHECKING

import pytest

from workbench.domain import Actor, Role, role_allows
from workbench.errors import PermissionDenied
from workbench.services import Workbench
from workbench.services._auth import UNAUTHENTICATED_ATTR, required_role, requires

if TYPE_CHECKING:
    from collections.abc import Callable

# Calls made before anyone is signed in. Adding one is a decision, so it is listed here by name.
UNAUTHENTICATED = {
    "UserService.authenticate",
    "SessionService.sign_in",
    "SessionService.adopt",
    "SessionService.resolve",
}

ANNOTATOR = Actor(id=10_001, name="some-annotator", role=Role.ANNOTATOR)


def service_classes(wb: Workbench) -> dict[str, type]:
    """Every service class the facade hands out, and the services those hold (e.g. rounds.jobs)."""
    found: dict[str, type] = {}
    todo = [getattr(wb, name) for name, attr in vars(Workbench).items() if isinstance(attr, cached_property)]
    while todo:
        service = todo.pop()
        cls = type(service)
        if cls.__name__ in found:
            continue
        found[cls.__name__] = cls
        todo += [value for value in vars(service).values() if type(value).__name__.endswith("Service")]
    return found


def public_methods(wb: Workbench) -> list[tuple[str, type, str]]:
    methods = []
    for class_name, cls in sorted(service_classes(wb).items()):
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") or isinstance(inspect.getattr_static(cls, name), property):
                continue
            if callable(member):
                methods.append((f"{class_name}.{name}", cls, name))
    return methods


def _sentinel_arguments(function: Callable[..., object]) -> tuple[list, dict]:
    """Placeholder values for every required parameter but `actor`: the role check comes first,
    so the body never sees them (if it did, it would fail on them with some other error)."""
    args, kwargs = [], {}
    for parameter in list(inspect.signature(function).parameters.values())[1:]:  # past self
        if parameter.default is not parameter.empty or parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            continue
        if parameter.name == "actor":
            continue
        if parameter.kind is parameter.KEYWORD_ONLY:
            kwargs[parameter.name] = object()
        else:
            args.append(object())
    return args, kwargs


def test_the_facade_reaches_every_service_module(wb):
    names = set(service_classes(wb))
    assert {
        "AdvisorService",
        "UserService",
        "ProjectService",
        "QueueService",
        "ReviewService",
        "ImportService",
        "ExportService",
        "AgreementService",
        "JobService",
        "VersionService",
        "RoundService",
    } <= names
    assert len(public_methods(wb)) >= 60  # the enumeration really found the methods


def test_every_public_service_method_declares_a_role_and_requires_an_actor(wb):
    undeclared, bad_signature = [], []
    for qualname, cls, name in public_methods(wb):
        method = getattr(cls, name)
        if qualname in UNAUTHENTICATED:
            assert hasattr(method, UNAUTHENTICATED_ATTR), f"{qualname} is listed as unauthenticated but not marked"
            assert required_role(method) is None
            continue
        if hasattr(method, UNAUTHENTICATED_ATTR):
            undeclared.append(f"{qualname} (marked @unauthenticated but not listed in UNAUTHENTICATED)")
            continue
        if required_role(method) is None:
            undeclared.append(qualname)
            continue
        actor = inspect.signature(method).parameters.get("actor")
        if actor is None or actor.kind is not actor.KEYWORD_ONLY or actor.default is not actor.empty:
            bad_signature.append(qualname)
    assert not undeclared, f"public service methods without @requires(role): {undeclared}"
    assert not bad_signature, f"methods whose actor is not a required keyword: {bad_signature}"


def test_every_method_refuses_a_missing_or_none_actor_and_an_underprivileged_one(wb):
    checked = refused_annotator = 0
    for qualname, cls, name in public_methods(wb):
        if qualname in UNAUTHENTICATED:
            continue
        bound = getattr(getattr(wb, _facade_name(wb, cls)), name)
        role = required_role(getattr(cls, name))
        args, kwargs = _sentinel_arguments(getattr(cls, name))
        with pytest.raises(TypeError, match="actor"):
            bound(*args, **kwargs)
        with pytest.raises(PermissionDenied, match="no actor"):
            bound(*args, **kwargs, actor=None)
        with pytest.raises(PermissionDenied, match="no actor"):
            bound(*args, **kwargs, actor="operator")  # not an Actor: no name or string gets rights
        if not role_allows(ANNOTATOR.role, role):
            with pytest.raises(PermissionDenied, match=f"needs the {role.value} role"):
                bound(*args, **kwargs, actor=ANNOTATOR)
            refused_annotator += 1
        checked += 1
    total = len([m for m in public_methods(wb) if m[0] not in UNAUTHENTICATED])
    assert checked == total  # 100% of the public methods
    assert refused_annotator >= 40  # most of the surface is for reviewers and admins


def _facade_name(wb: Workbench, cls: type) -> str:
    for name, attr in vars(Workbench).items():
        if isinstance(attr, cached_property) and type(getattr(wb, name)) is cls:
            return name
    raise AssertionError(f"{cls.__name__} is not on the facade")


def test_roles_of_the_sensitive_reads(wb):
    """Version rows and diffs carry every final label: reviewers only. Exports likewise."""
    for method in (
        wb.versions.rows,
        wb.versions.diff,
        wb.exports.version,
        wb.exports.payload,
        wb.versions.list,
        wb.exports.items,
        wb.exports.annotations,
        wb.review.queue,
        wb.agreement.report,
    ):
        assert required_role(method) is Role.REVIEWER, method.__qualname__
    for method in (
        wb.users.add,
        wb.users.set_role,
        wb.users.list,
        wb.projects.create,
        wb.imports.run,
        wb.jobs.claim_next,
        wb.rounds.run_retrain,
    ):
        assert required_role(method) is Role.ADMIN, method.__qualname__
    assert required_role(wb.queue.claim) is Role.ANNOTATOR


def test_version_rows_and_diff_refuse_an_annotator_on_real_data(wb):
    operator = Actor.operator()
    wb.projects.create("fc", "text", ["a", "b"], actor=operator)
    annotator = wb.users.authenticate(*_user(wb, "ann", Role.ANNOTATOR))
    reviewer = wb.users.authenticate(*_user(wb, "rev", Role.REVIEWER))
    wb.versions.create("fc", actor=operator)
    with pytest.raises(PermissionDenied):
        wb.versions.rows("fc", 1, actor=annotator)
    with pytest.raises(PermissionDenied):
        wb.versions.diff("fc", 1, 1, actor=annotator)
    assert len(wb.versions.rows("fc", 1, actor=reviewer)) == 0
    assert wb.versions.diff("fc", 1, 1, actor=reviewer).relabeled == ()


def test_users_read_only_their_own_account_unless_admin(wb):
    ann = wb.users.authenticate(*_user(wb, "ann", Role.ANNOTATOR))
    _user(wb, "other", Role.ANNOTATOR)
    assert wb.users.get("ann", actor=ann).role is Role.ANNOTATOR
    with pytest.raises(PermissionDenied):
        wb.users.get("other", actor=ann)
    assert wb.users.get("other", actor=Actor.operator()).name == "other"


def test_requires_refuses_a_method_whose_actor_has_a_default():
    with pytest.raises(TypeError, match="keyword-only"):

        @requires(Role.ADMIN)
        def method(self: object, *, actor: Actor | None = None) -> None: ...

    with pytest.raises(TypeError, match="keyword-only"):

        @requires(Role.ADMIN)
        def positional(self: object, actor: Actor) -> None: ...


def _user(wb: Workbench, name: str, role: Role) -> tuple[str, str]:
    password = f"{name}-long-password"
    wb.users.add(name, role, password, actor=Actor.operator())
    return name, password
