"""The one API the UI and the CLI call. Each call opens its own session and returns dataclasses."""

from __future__ import annotations

from functools import cached_property

from sqlalchemy import Engine

from workbench.db.engine import make_engine
from workbench.services.exports import ExportService
from workbench.services.imports import ImportService
from workbench.services.agreement import AgreementService
from workbench.services.jobs import JobService
from workbench.services.projects import ProjectService
from workbench.services.queue import QueueService
from workbench.services.review import ReviewService
from workbench.services.users import UserService
from workbench.services.versions import VersionService


class Workbench:
    """The service facade: holds the engine (the only thing cached across Streamlit reruns)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str | None = None) -> "Workbench":
        return cls(make_engine(url))

    @cached_property
    def users(self) -> UserService:
        return UserService(self.engine)

    @cached_property
    def projects(self) -> ProjectService:
        return ProjectService(self.engine)

    @cached_property
    def queue(self) -> QueueService:
        return QueueService(self.engine)

    @cached_property
    def review(self) -> ReviewService:
        return ReviewService(self.engine)

    @cached_property
    def imports(self) -> ImportService:
        return ImportService(self.engine)

    @cached_property
    def exports(self) -> ExportService:
        return ExportService(self.engine)

    @cached_property
    def agreement(self) -> AgreementService:
        return AgreementService(self.engine)

    @cached_property
    def jobs(self) -> JobService:
        return JobService(self.engine)

    @cached_property
    def versions(self) -> VersionService:
        return VersionService(self.engine)

    @cached_property
    def rounds(self) -> "RoundService":  # noqa: F821
        # Imported here: it pulls in scikit-learn and the strategies, which the queue's hot path
        # (annotator processes, the app's label page) never needs.
        from workbench.services.rounds import RoundService

        return RoundService(self.engine)
