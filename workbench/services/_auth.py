"""Authorization that fails closed: every public service method declares its minimum role.

``@requires(Role.X)`` on a method checks, before the body runs, that the required keyword
argument ``actor`` is an ``Actor`` whose role is at least X, and records X on the method
(``required_role(method)``), where tests/test_fail_closed.py reads it. A method without the
decorator fails that test, so a new method cannot be forgotten. The few calls made before anyone
is signed in (signing in itself) are marked ``@unauthenticated("why")`` instead.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from workbench.domain import Actor, Role, role_allows
from workbench.errors import PermissionDenied

F = TypeVar("F", bound=Callable[..., Any])

ROLE_ATTR = "__workbench_role__"
UNAUTHENTICATED_ATTR = "__workbench_unauthenticated__"


def require_role(actor: Actor, role: Role) -> None:
    """Refuse unless `actor` is an Actor whose role is at least `role`. There is no default actor:
    None (a forgotten argument) is refused, never treated as the local operator."""
    if not isinstance(actor, Actor):
        raise PermissionDenied(
            "no actor: say who acts (a signed-in user, or Actor.operator() for the CLI and the worker)"
        )
    if not role_allows(actor.role, role):
        raise PermissionDenied(f"this needs the {role.value} role; {actor.name} is {actor.role.value}")


def requires(role: Role) -> Callable[[F], F]:
    """Give a service method its minimum role; the method must take ``*, actor: Actor`` (no default)."""

    def decorate(method: F) -> F:
        actor = inspect.signature(method).parameters.get("actor")
        if actor is None or actor.kind is not inspect.Parameter.KEYWORD_ONLY or actor.default is not actor.empty:
            raise TypeError(f"{method.__qualname__} must take a keyword-only `actor: Actor` with no default")

        @functools.wraps(method)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if "actor" not in kwargs:
                raise TypeError(f"{method.__qualname__}() missing required keyword-only argument: 'actor'")
            require_role(kwargs["actor"], role)
            return method(*args, **kwargs)

        setattr(checked, ROLE_ATTR, role)
        return checked  # type: ignore[return-value]

    return decorate


def unauthenticated(why: str) -> Callable[[F], F]:
    """Mark a method that runs before anyone is signed in (it takes no actor); `why` says why."""

    def decorate(method: F) -> F:
        setattr(method, UNAUTHENTICATED_ATTR, why)
        return method

    return decorate


def required_role(method: Callable[..., Any]) -> Role | None:
    """The minimum role recorded by @requires, or None when the method has none."""
    return getattr(method, ROLE_ATTR, None)
