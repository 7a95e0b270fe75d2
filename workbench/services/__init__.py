"""The one API the UI and the CLI call. Each call opens its own session and returns dataclasses.

Service modules are imported on first use of their property, so ``import workbench.services``
(and the CLI's parser) stays cheap: scikit-learn, pandas and the strategies load only in the
code paths that need them.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from workbench.services.advisor import AdvisorService
    from workbench.services.agreement import AgreementService
    from workbench.services.alerts import AlertService
    from workbench.services.browse import BrowseService
    from workbench.services.exports import ExportService
    from workbench.services.guidelines import GuidelinesService
    from workbench.services.health import HealthService
    from workbench.services.imports import ImportService
    from workbench.services.jobs import JobService
    from workbench.services.members import MemberService
    from workbench.services.models import ModelService
    from workbench.services.overview import OverviewService
    from workbench.services.project_settings import ProjectSettingsService
    from workbench.services.projects import ProjectService
    from workbench.services.quarantine import QuarantineService
    from workbench.services.queue import QueueService
    from workbench.services.review import ReviewService
    from workbench.services.rounds import RoundService
    from workbench.services.sessions import SessionService
    from workbench.services.stats import StatsService
    from workbench.services.users import UserService
    from workbench.services.versions import VersionService


class Workbench:
    """The service facade: holds the engine (the only thing cached across Streamlit reruns)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str | None = None) -> Workbench:
        from workbench.db.engine import make_engine

        return cls(make_engine(url))

    @cached_property
    def users(self) -> UserService:
        from workbench.services.users import UserService

        return UserService(self.engine)

    @cached_property
    def overview(self) -> OverviewService:
        from workbench.services.overview import OverviewService

        return OverviewService(self.engine)

    @cached_property
    def sessions(self) -> SessionService:
        from workbench.services.sessions import SessionService

        return SessionService(self.engine)

    @cached_property
    def projects(self) -> ProjectService:
        from workbench.services.projects import ProjectService

        return ProjectService(self.engine)

    @cached_property
    def project_settings(self) -> ProjectSettingsService:
        from workbench.services.project_settings import ProjectSettingsService

        return ProjectSettingsService(self.engine)

    @cached_property
    def queue(self) -> QueueService:
        from workbench.services.queue import QueueService

        return QueueService(self.engine)

    @cached_property
    def review(self) -> ReviewService:
        from workbench.services.review import ReviewService

        return ReviewService(self.engine)

    @cached_property
    def guidelines(self) -> GuidelinesService:
        from workbench.services.guidelines import GuidelinesService

        return GuidelinesService(self.engine)

    @cached_property
    def imports(self) -> ImportService:
        from workbench.services.imports import ImportService

        return ImportService(self.engine)

    @cached_property
    def exports(self) -> ExportService:
        from workbench.services.exports import ExportService

        return ExportService(self.engine)

    @cached_property
    def agreement(self) -> AgreementService:
        from workbench.services.agreement import AgreementService

        return AgreementService(self.engine)

    @cached_property
    def jobs(self) -> JobService:
        from workbench.services.jobs import JobService

        return JobService(self.engine)

    @cached_property
    def versions(self) -> VersionService:
        from workbench.services.versions import VersionService

        return VersionService(self.engine)

    @cached_property
    def rounds(self) -> RoundService:
        # It pulls in scikit-learn and the strategies, which the queue's hot path (annotator
        # processes, the app's label page) never needs.
        from workbench.services.rounds import RoundService

        return RoundService(self.engine)

    @cached_property
    def models(self) -> ModelService:
        # MLflow registry and export for serving; mlflow is imported only when registering.
        from workbench.services.models import ModelService

        return ModelService(self.engine)

    @cached_property
    def health(self) -> HealthService:
        from workbench.services.health import HealthService

        return HealthService(self.engine)

    @cached_property
    def quarantine(self) -> QuarantineService:
        from workbench.services.quarantine import QuarantineService

        return QuarantineService(self.engine)

    @cached_property
    def browse(self) -> BrowseService:
        from workbench.services.browse import BrowseService

        return BrowseService(self.engine)

    @cached_property
    def alerts(self) -> AlertService:
        from workbench.services.alerts import AlertService

        return AlertService(self.engine)

    @cached_property
    def members(self) -> MemberService:
        from workbench.services.members import MemberService

        return MemberService(self.engine)

    @cached_property
    def advisor(self) -> AdvisorService:
        from workbench.services.advisor import AdvisorService

        return AdvisorService(self.engine)

    @cached_property
    def stats(self) -> StatsService:
        from workbench.services.stats import StatsService

        return StatsService(self.engine)
