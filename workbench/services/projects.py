"""Projects: kind, label set, overlap, strategy and settings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from workbench.db.models import Item, Project, ProjectLabel, utcnow
from workbench.domain import Actor, ItemState, Progress, ProjectInfo, ProjectKind, Role, Split
from workbench.errors import Conflict, NotFound, WorkbenchError
from workbench.services._auth import requires
from workbench.services._tx import audit, reading, write

DEFAULT_SETTINGS: dict[str, Any] = {
    "eval_fraction": 0.2,  # share of imported items set aside for evaluation
    "lease_ttl_s": 600,  # a claim lapses after this long without renewal
    "random_share": 0.05,  # share of pool claims served at random (the control arm)
    "version_every": 0,  # cut a dataset version every N new final labels (0: only on demand)
    # C=10: on TF-IDF text C=1 underfits (SMS spam: 0.906 vs 0.964 accuracy on the same split).
    "model": {"type": "logreg", "C": 10.0},
    "featurizer": {},
    "limits": {},  # import limits over the defaults of workbench.importing.limits.Limits
    # Personal data in text at import: off | flag | pseudonymize | mask (None: flag for text projects).
    "pii": None,
    "pii_region": "US",  # where phone numbers without a country code are read as local
    "near_duplicate_threshold": 0.9,  # estimated Jaccard of word bigrams above which texts are near copies
    "sensitive_cols": [],  # columns whose groups each round's evaluation reports on
    "health_at_import": True,  # run the data health check after every import
    # Issue 13: overlap policy, aggregation, gold items, label-error queue (workbench.domain.overlap).
    "overlap_policy": "fixed",  # fixed | adaptive
    "min_labels": 1,  # adaptive: labels every pool item gets at least
    "max_labels": 3,  # adaptive: labels no item gets more than; an unsettled item then goes to review
    "overlap_confidence": 0.9,  # adaptive: the posterior that makes a label final
    "lookahead_reliability": 0.8,  # adaptive: review now when agreeing labels at this reliability cannot settle
    "aggregation": "majority",  # majority | dawid_skene
    "posterior_accept": None,  # dawid_skene: items in review whose posterior reaches this take it (None: never)
    "gold_share": 0.05,  # share of claims that serve a gold item (when there are gold items)
    "label_issue_k": 0,  # after each round, send the K likeliest label errors back to review (0: off)
    "pause_flagged": False,  # pause an annotator as soon as quality flags them (else an admin decides)
    "prefer_reliable": True,  # adaptive: annotators reliable enough to settle an item alone start new items
    "model_prior": True,  # adaptive: the latest model's prediction is a prior, trusted by its eval accuracy
    "quality_refresh_labels": 0,  # also re-estimate quality every N new human labels (0: after rounds only)
    # Issue 12: keys per label ({label: key}; unnamed labels get the default keys) and the time an
    # item must be on screen before a key press counts for it.
    "label_keys": {},
    "min_dwell_ms": 250,
    # Issue 16: log each round to this MLflow tracking URI (None: $MLFLOW_TRACKING_URI, else off).
    "mlflow_tracking_uri": None,
    # Issue 17: after a round, replay the project's labels per strategy once it has this many final
    # labels (workbench.services.advisor; 0: only when an admin asks).
    "advisor_min_labels": 200,
}


def check_key_settings(labels: Any, settings: dict[str, Any]) -> None:
    """Refuse label keys that collide or are reserved, and a dwell time outside 0..5000 ms."""
    from workbench.domain.keys import check_label_keys

    if "label_keys" in settings:
        check_label_keys(list(labels), settings["label_keys"])
    if "min_dwell_ms" in settings:
        try:
            dwell = int(settings["min_dwell_ms"])
        except (TypeError, ValueError):
            raise WorkbenchError("min_dwell_ms must be a whole number of milliseconds") from None
        if not 0 <= dwell <= 5000:
            raise WorkbenchError("min_dwell_ms must be within 0..5000")


def check_quality_settings(overlap: int, settings: dict[str, Any]) -> None:
    """Refuse overlap/aggregation settings that cannot work, with a one-line message."""
    from workbench.domain.overlap import Aggregation, OverlapPolicy, OverlapSettings

    merged = {**DEFAULT_SETTINGS, **settings}
    try:
        OverlapPolicy(merged["overlap_policy"])
        Aggregation(merged["aggregation"])
        OverlapSettings.from_project(overlap, merged).check()
    except ValueError as exc:
        raise WorkbenchError(f"bad overlap settings: {exc}") from None
    accept = merged["posterior_accept"]
    if accept is not None and not 0.5 <= float(accept) <= 1.0:
        raise WorkbenchError("posterior_accept must be within [0.5, 1] or null")
    if not 0.0 <= float(merged["gold_share"]) <= 1.0:
        raise WorkbenchError("gold_share must be within 0..1")
    if int(merged["label_issue_k"]) < 0:
        raise WorkbenchError("label_issue_k must not be negative")
    if int(merged["quality_refresh_labels"]) < 0:
        raise WorkbenchError("quality_refresh_labels must not be negative")
    for flag in ("pause_flagged", "prefer_reliable", "model_prior"):
        if not isinstance(merged[flag], bool):
            raise WorkbenchError(f"{flag} must be true or false")


def project_info(
    project: Project,
    labels: list[str],
    retired: tuple[str, ...] = (),
    renamed: tuple[tuple[str, str], ...] = (),
) -> ProjectInfo:
    assert project.id is not None  # a stored project
    return ProjectInfo(
        id=project.id,
        name=project.name,
        kind=ProjectKind(project.kind),
        labels=tuple(labels),
        overlap=project.overlap,
        strategy=project.strategy,
        settings={**DEFAULT_SETTINGS, **project.settings},
        retired=retired,
        archived=project.archived_at is not None,
        renamed=renamed,
    )


def check_writable(project: ProjectInfo) -> None:
    """Refuse any change to an archived project (it is read-only until unarchived)."""
    if project.archived:
        raise Conflict(f"project {project.name!r} is archived and read-only; unarchive it first")


def unoffered(label: str, project: ProjectInfo) -> str:
    """Why a label cannot be given now: retired, renamed, or not a label of the project."""
    if label in project.retired:
        return f"label {label!r} is retired in {project.name!r}; choose one of {', '.join(project.offered)}"
    renamed = dict(project.renamed)
    if label in renamed:
        return f"label {label!r} was renamed to {renamed[label]!r} in {project.name!r}"
    return f"label {label!r} is not in the label set of {project.name!r}: {', '.join(project.offered)}"


def load_project(session: Session, name: str) -> ProjectInfo:
    """The named project with its labels, inside the caller's session. Inside a write transaction
    (services._tx.write) an archived project is refused: every write service loads its project
    this way, so archiving makes all of them refuse."""
    project = session.exec(select(Project).where(Project.name == name)).first()
    if project is None:
        raise NotFound(f"no project named {name!r}")
    return _with_labels(session, project)


def load_project_by_id(session: Session, project_id: int) -> ProjectInfo:
    """The project with this id and its labels, inside the caller's session (archived: as above)."""
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"no project with id {project_id}")
    return _with_labels(session, project)


_LABEL_ROWS = select(
    col(ProjectLabel.project_id), col(ProjectLabel.name), col(ProjectLabel.retired_at), col(ProjectLabel.renamed_to)
)
_LABEL_ORDER = (col(ProjectLabel.position), col(ProjectLabel.retired_at))


def _from_rows(project: Project, rows: list) -> ProjectInfo:
    """ProjectInfo from the project's label rows (name, retired_at, renamed_to) in label order."""
    labels = [name for name, _, renamed_to in rows if renamed_to is None]
    retired = tuple(name for name, retired_at, renamed_to in rows if renamed_to is None and retired_at is not None)
    renamed = tuple((name, renamed_to) for name, _, renamed_to in rows if renamed_to is not None)
    return project_info(project, labels, retired, renamed)


def _with_labels(session: Session, project: Project) -> ProjectInfo:
    rows = session.exec(_LABEL_ROWS.where(ProjectLabel.project_id == project.id).order_by(*_LABEL_ORDER)).all()
    info = _from_rows(project, [row[1:] for row in rows])
    if session.info.get("writing"):
        check_writable(info)
        session.info.setdefault("writable", set()).add(info.id)  # audit() need not look again
    return info


def check_featurizer(kind: ProjectKind, params: Any) -> None:
    """Refuse featurizer settings a round could not use (bad parameters, a missing package) when
    they are set, not at the first retrain."""
    if not isinstance(params, dict):
        raise WorkbenchError(f"the featurizer setting must be an object, got {params!r}")
    from workbench.training.featurizers import make_featurizer  # lazy: scikit-learn

    make_featurizer(kind.value, params, image_root=".")  # the image root is not a parameter


def check_health_settings(settings: dict[str, Any]) -> None:
    """Refuse a personal-data mode or duplicate threshold a health check could not use."""
    from workbench.health.pii import PiiMode

    mode = settings.get("pii")
    if mode not in (None, "") and mode not in set(PiiMode):
        raise WorkbenchError(f"pii must be one of {', '.join(PiiMode)}, got {mode!r}")
    threshold = settings.get("near_duplicate_threshold", 0.9)
    if not isinstance(threshold, (int, float)) or not 0.5 <= float(threshold) <= 1.0:
        raise WorkbenchError(f"near_duplicate_threshold must be a number from 0.5 to 1, got {threshold!r}")


DEFAULT_STRATEGY = "margin"
TEXT_EMBEDDINGS_STRATEGY = "margin_diversity"


def default_strategy(kind: ProjectKind, featurizer: dict[str, Any]) -> str:
    """The strategy a new project gets: margin with diversity for text on sentence embeddings (the
    combination `python -m workbench.bench.simulate_all` measured against margin and random: no
    worse than margin on any labeled set, above random on SMS and weather; docs/simulate/README.md),
    margin otherwise."""
    if kind == ProjectKind.TEXT and featurizer.get("method") == "embeddings":
        return TEXT_EMBEDDINGS_STRATEGY
    return DEFAULT_STRATEGY


def check_strategy(name: str, model: dict[str, Any] | None = None) -> str:
    """Refuse a strategy that is not registered, or that the project's model cannot serve (say, BALD
    on a logistic regression), naming the strategies that model can serve. The model is never
    swapped to suit the strategy: the ranking must come from the model that is evaluated."""
    import strategies  # lazy: SciPy and the registry are not needed to list projects

    strategy = strategies.REGISTRY.get(name)
    if strategy is None:
        raise WorkbenchError(f"unknown strategy {name!r}; choose one of {', '.join(strategies.REGISTRY)}")
    model = model or DEFAULT_SETTINGS["model"]
    family = str(model.get("type", "logreg")) if isinstance(model, dict) else "logreg"
    servable = [other for other in strategies.servable_strategies(family)]
    problem = None
    if not strategy.servable_by(family):
        problem = f"a {family} model cannot supply that"
    elif strategy.input == strategies.Input.MC_SAMPLES and float(model.get("dropout", 1.0)) <= 0:
        problem = f"this {family} model has dropout 0"
        servable = [other for other in servable if strategies.REGISTRY[other].input != strategies.Input.MC_SAMPLES]
    if problem is None:
        return name
    families = " or ".join(sorted(strategy.families or ()))
    raise WorkbenchError(
        f"strategy {name!r} needs {strategy.needs_words}, and {problem}; with this model choose one of "
        f"{', '.join(servable)}" + (f", or set the model type to {families}" if families else "")
    )


def clean_labels(labels: list[str]) -> list[str]:
    cleaned = [str(label).strip() for label in labels]
    if not cleaned or any(not label for label in cleaned):
        raise WorkbenchError("a project needs at least one label, and labels must not be empty")
    duplicates = sorted({label for label in cleaned if cleaned.count(label) > 1})
    if duplicates:
        raise WorkbenchError(f"duplicate labels: {', '.join(duplicates)}")
    return cleaned


class ProjectService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @requires(Role.ADMIN)
    def create(
        self,
        name: str,
        kind: ProjectKind | str,
        labels: list[str],
        *,
        overlap: int = 2,
        strategy: str | None = None,
        settings: dict[str, Any] | None = None,
        actor: Actor,
    ) -> ProjectInfo:
        name = name.strip()
        if not name:
            raise WorkbenchError("project name must not be empty")
        try:
            kind = ProjectKind(kind)
        except ValueError:
            raise WorkbenchError(f"unknown project kind {kind!r}; use text, tabular or image") from None
        labels = clean_labels(labels)
        if not 1 <= overlap <= 10:
            raise WorkbenchError("overlap must be between 1 and 10")
        given: dict[str, Any] = settings or {}
        unknown = set(given) - set(DEFAULT_SETTINGS) - {"image_root"}
        if unknown:
            raise WorkbenchError(f"unknown project settings: {', '.join(sorted(unknown))}")
        if "featurizer" in given:
            check_featurizer(kind, given["featurizer"])
        check_key_settings(labels, given)
        check_health_settings(given)
        if "limits" in given:
            from workbench.importing.limits import Limits

            try:
                Limits.from_settings(given["limits"])
            except ValueError as exc:
                raise WorkbenchError(str(exc)) from None
        # Text projects record their representation when made (sentence embeddings when installed),
        # so installing or removing a package later never switches an existing project's features.
        from workbench.training.featurizers import with_default_method  # lazy: scikit-learn

        settings = {**given, "featurizer": with_default_method(kind.value, given.get("featurizer"))}
        check_quality_settings(overlap, settings)
        if strategy is None:
            strategy = default_strategy(kind, settings["featurizer"])
        check_strategy(strategy, settings.get("model"))

        def work(session: Session) -> ProjectInfo:
            if session.exec(select(Project).where(Project.name == name)).first():
                raise Conflict(f"project {name!r} already exists")
            project = Project(
                name=name, kind=kind.value, overlap=overlap, strategy=strategy, settings=dict(settings or {})
            )
            session.add(project)
            session.flush()
            assert project.id is not None  # flushed
            project_id = project.id
            session.add_all(
                ProjectLabel(project_id=project_id, name=label, position=i) for i, label in enumerate(labels)
            )
            audit(
                session,
                "project.create",
                actor_id=actor.id if actor else None,
                project_id=project.id,
                kind=kind.value,
                labels=labels,
                overlap=overlap,
            )
            return project_info(project, labels)

        return write(self.engine, work)

    @requires(Role.ANNOTATOR)
    def get(self, name: str, *, actor: Actor) -> ProjectInfo:
        from workbench.services.members import load_member_project

        with reading(self.engine) as session:
            return load_member_project(session, name, actor)

    @requires(Role.ANNOTATOR)
    def list(self, *, actor: Actor) -> list[ProjectInfo]:
        """Every project for an admin; everyone else sees the projects they are members of, archived
        ones hidden."""
        from workbench.services.members import visible_project_ids

        # Two statements whatever the number of projects (the picker runs this on every rerun).
        with reading(self.engine, snapshot=False) as session:
            query = select(Project).order_by(col(Project.name))
            if actor.role != Role.ADMIN:
                query = query.where(col(Project.archived_at).is_(None))
            visible = visible_project_ids(actor)
            if visible is not None:
                query = query.where(col(Project.id).in_(visible))
            projects = session.exec(query).all()
            rows: dict[int, list] = {}
            for project_id, *row in session.exec(_LABEL_ROWS.order_by(col(ProjectLabel.project_id), *_LABEL_ORDER)):
                rows.setdefault(project_id, []).append(row)
            infos = []
            for project in projects:
                assert project.id is not None  # a stored project
                infos.append(_from_rows(project, rows.get(project.id, [])))
            return infos

    @requires(Role.ADMIN)
    def update_settings(self, name: str, *, actor: Actor, strategy: str | None = None, **settings: Any) -> ProjectInfo:
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise WorkbenchError(f"unknown project settings: {', '.join(sorted(unknown))}")

        def work(session: Session) -> ProjectInfo:
            project = session.exec(select(Project).where(Project.name == name)).first()
            if project is None:
                raise NotFound(f"no project named {name!r}")
            if strategy is not None or "model" in settings:
                model = settings["model"] if "model" in settings else project.settings.get("model")
                project.strategy = check_strategy(strategy or project.strategy, model)
            if "featurizer" in settings:
                check_featurizer(ProjectKind(project.kind), settings["featurizer"])
            if "label_keys" in settings or "min_dwell_ms" in settings:
                check_key_settings(load_project(session, name).labels, settings)
            check_health_settings(settings)
            check_quality_settings(project.overlap, {**project.settings, **settings})
            project.settings = {**project.settings, **settings}
            project.changed_at = utcnow()
            audit(
                session,
                "project.settings",
                actor_id=actor.id if actor else None,
                project_id=project.id,
                strategy=project.strategy,
                **settings,
            )
            session.flush()
            return load_project(session, name)

        return write(self.engine, work)

    @requires(Role.ANNOTATOR)
    def progress(self, name: str, *, actor: Actor) -> Progress:
        """Counts of items by split and state: what any role may see (no labels)."""
        from workbench.services.members import load_member_project

        with reading(self.engine) as session:
            project = load_member_project(session, name, actor)
            # Grouped in the order of the queue index (state, slots_taken, split), so the database
            # walks the index instead of sorting every item; summed over slots_taken here.
            rows = session.exec(
                select(col(Item.state), col(Item.slots_taken), col(Item.split), func.count())
                .where(col(Item.project_id) == project.id)
                .group_by(col(Item.state), col(Item.slots_taken), col(Item.split))
            ).all()
        counts = {split.value: {state.value: 0 for state in ItemState} for split in Split}
        for state, _, split, n in rows:
            counts[split][state] += n
        return Progress(counts)
