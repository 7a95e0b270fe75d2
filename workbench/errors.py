"""Errors the services raise; the CLI and the UI show their message to the user as one line."""


class WorkbenchError(Exception):
    """A refused action or bad input: the message says why, and nothing was written."""


class NotFound(WorkbenchError):
    """A named project, item, user, version or run does not exist."""


class PermissionDenied(WorkbenchError):
    """The actor's role does not allow the action."""


class Conflict(WorkbenchError):
    """The action collides with the current state (already complete, lease expired, ...)."""
