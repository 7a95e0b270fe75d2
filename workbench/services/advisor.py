"""The strategy advisor: replay the project's own labels through ``workbench simulate`` and say
whether some strategy beats random on them (workbench.domain.advice).

It runs as the ``advise`` job in a worker process, never in the Streamlit server. The job takes the
project's final-labeled items (their contents, and the final labels as the truth), and hands them
to the simulator unchanged (workbench.simulate.runner): one template database, the items split once
into pool and eval, then one run per strategy and seed through the real queue and rounds. The
project's own model and featurizer settings are used; sentence embeddings come from the project's
content-hashed chunk cache (``features/embedding-chunks`` under WORKBENCH_HOME), as rounds use it.

Which runs (chosen so a few hundred labels take about a minute on two cores):

- the strategies the project's model can serve (``check_strategy``), plus random; ``cold_start``
  is left out (every run already starts from its seed set). With two labels, least confidence,
  margin and entropy rank identically (each is a decreasing function of the margin), so one of
  them is replayed and stands for the others (``StrategyAdvice.same_as``);
- SEEDS seeds (paired: the same seed gives every strategy the same cold-start set);
- the whole pool as the budget, in about ROUNDS rounds (batch = (pool − seed set) / ROUNDS,
  at least MIN_BATCH), one annotator who answers the final label (overlap 1, no review).

After a round (``queue_if_due``) the job is queued when the project has at least
``advisor_min_labels`` final labels (0 turns that off) and no advice was queued within the last
REFRESH_LABELS labels. The advice never changes the project's strategy.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from workbench.db.models import Item, Job, Project
from workbench.domain import Actor, ItemState, JobInfo, JobKind, JobState, ProjectInfo, ProjectKind, Role
from workbench.domain.advice import RANDOM, Advice, CurvePoint, StrategyAdvice, Verdict, recommend
from workbench.errors import WorkbenchError
from workbench.services._auth import requires
from workbench.services._home import HomeBound
from workbench.services._tx import reading, write
from workbench.services.jobs import JobService, complete_job, job_info
from workbench.services.members import load_member_project

log = logging.getLogger("workbench.advisor")

DEFAULT_MIN_LABELS = 200  # the project setting advisor_min_labels
MIN_LABELS_ENV = "WORKBENCH_ADVISOR_MIN_LABELS"  # its default where a project does not set it
REFRESH_LABELS = 100  # after a round, advise again once this many labels came in since the last advice
SEEDS = (0, 1, 2)
ROUNDS = 6  # rounds per run after the cold-start seed set
MIN_BATCH = 10
MIN_ITEMS = 20  # below this, a replay has no eval split worth the name
NOT_REPLAYED = ("cold_start",)  # every run starts from its seed set already
ProgressFn = Callable[[float, str], None]


def _quiet(_: float, __: str) -> None:
    return None


@dataclass(frozen=True)
class AdvisorStatus:
    """What the Rounds page shows: the threshold, how far the project is, the latest advice."""

    min_labels: int  # the project's advisor_min_labels (0: not queued after rounds)
    n_labels: int  # final labels now
    advice: Advice | None  # the latest finished advice
    advice_job_id: int | None = None
    advised_at: Any = None  # when that advice finished (UTC)
    active: JobInfo | None = None  # an advise job queued or running
    failed: JobInfo | None = None  # the latest advise job, when it failed

    @property
    def needed(self) -> int:
        """Final labels still needed before the advisor runs after a round."""
        return max(0, self.min_labels - self.n_labels)


def min_labels(session: Session, project_id: int) -> int:
    """The project's advisor_min_labels as set on it, else $WORKBENCH_ADVISOR_MIN_LABELS, else 200.

    (The test suite sets the variable to 0 so that rounds in tests of other things never start a
    replay; the advisor's own tests set the project setting.)"""
    row = session.get(Project, project_id)
    value = (row.settings or {}).get("advisor_min_labels") if row is not None else None
    if value is None:
        value = os.environ.get(MIN_LABELS_ENV) or DEFAULT_MIN_LABELS
    return int(value)


def _final_count(session: Session, project_id: int) -> int:
    return int(
        session.execute(
            select(func.count()).where(
                col(Item.project_id) == project_id,
                col(Item.state) == ItemState.FINAL,
                col(Item.final_label).is_not(None),
            )
        ).scalar_one()
    )


def _advise_jobs(session: Session, project_id: int, *states: JobState) -> Any:
    query = select(Job).where(col(Job.project_id) == project_id, col(Job.kind) == JobKind.ADVISE)
    if states:
        query = query.where(col(Job.state).in_(list(states)))
    return session.execute(query.order_by(col(Job.id).desc()).limit(1)).scalar_one_or_none()


def is_due(session: Session, project: ProjectInfo) -> int | None:
    """The final-label count when an advise job should be queued after a round, else None."""
    threshold = min_labels(session, project.id)
    if threshold <= 0:
        return None
    n = _final_count(session, project.id)
    if n < threshold:
        return None
    latest = _advise_jobs(session, project.id)
    if latest is None:
        return n
    if latest.state in (JobState.QUEUED, JobState.RUNNING):
        return None
    at = int((latest.payload or {}).get("labels") or 0)
    return n if n - at >= REFRESH_LABELS else None


def queue_if_due(engine: Engine, project_id: int) -> int | None:
    """After a round has committed: queue the advise job when it is due (see ``is_due``). Never
    raises (advice must not fail the round); returns the job id, or None."""
    from workbench.services.projects import load_project_by_id

    try:
        with reading(engine) as session:
            project = load_project_by_id(session, project_id)
            n = is_due(session, project)
        if n is None:
            return None
        job = JobService(engine).enqueue(project.name, JobKind.ADVISE, actor=Actor.operator(), payload={"labels": n})
        return job.id
    except Exception as exc:  # the round is committed; the next round checks again
        log.warning("could not queue the strategy advisor for project %s: %s: %s", project_id, type(exc).__name__, exc)
        return None


# -- what is replayed ---------------------------------------------------------------------------
def candidate_strategies(project: ProjectInfo) -> tuple[list[str], dict[str, str], list[str]]:
    """(strategies to replay with random first, {strategy: the replayed one standing for it},
    [left out, with why])."""
    import strategies
    from workbench.services.projects import check_strategy

    model = project.settings.get("model")
    family = str((model or {}).get("type", "logreg"))
    names, skipped = [], []
    for name in strategies.servable_strategies(family):
        if name == RANDOM:
            continue
        if name in NOT_REPLAYED:
            skipped.append(f"{name}: every run starts from its seed set")
            continue
        try:
            check_strategy(name, model)
        except WorkbenchError as exc:
            skipped.append(f"{name}: {exc}")
            continue
        names.append(name)
    aliases: dict[str, str] = {}
    if len(project.labels) == 2:
        # With two labels these rank by a decreasing function of |p1 - p0|: the same items.
        same = [n for n in names if strategies.REGISTRY[n].decreasing_in_binary_margin]
        if len(same) > 1:
            keep = project.strategy if project.strategy in same else ("margin" if "margin" in same else same[0])
            aliases = {n: keep for n in same if n != keep}
            names = [n for n in names if n not in aliases]
    return [RANDOM, *names], aliases, skipped


def plan(n_items: int, n_labels: int, eval_fraction: float) -> tuple[int, int]:
    """(seed-set size, batch size) for a replay of ``n_items`` items with ``n_labels`` labels."""
    from workbench.services.round_pipeline import SEEDS_PER_LABEL

    pool = int(round(n_items * (1 - eval_fraction)))
    initial = min(SEEDS_PER_LABEL * n_labels, max(1, pool // 4))
    return initial, max(MIN_BATCH, math.ceil((pool - initial) / ROUNDS))


def labeled_data(session: Session, project: ProjectInfo) -> Any:
    """The project's final-labeled items as the simulator's input: contents as imported, the
    final label as the truth (in item id order)."""
    import pandas as pd

    from workbench.simulate.data import LabeledData

    rows = session.execute(
        select(col(Item.external_id), col(Item.content), col(Item.final_label))
        .where(
            col(Item.project_id) == project.id, col(Item.state) == ItemState.FINAL, col(Item.final_label).is_not(None)
        )
        .order_by(col(Item.id))
    ).all()
    if project.kind == ProjectKind.TEXT:
        content = pd.DataFrame({"text": [str((c or {}).get("text", "")) for _, c, _ in rows]})
    elif project.kind == ProjectKind.IMAGE:
        content = pd.DataFrame({"image": [str((c or {}).get("image", "")) for _, c, _ in rows]})
    else:
        features = [dict((c or {}).get("features") or {}) for _, c, _ in rows]
        content = pd.DataFrame(features).astype(object)
        content = content.where(content.notna(), "").astype(str)
    return LabeledData(
        name=project.name,
        kind=project.kind.value,
        ids=[str(external_id) for external_id, _, _ in rows],
        labels=[str(label) for *_, label in rows],
        content=content.reset_index(drop=True),
        image_root=project.settings.get("image_root"),
    )


def _advice(
    report: dict[str, Any], project: ProjectInfo, aliases: dict[str, str], skipped: list[str], seconds: float
) -> Advice:
    paired = report.get("against_random") or {}
    replayed: dict[str, StrategyAdvice] = {}
    for name, st in report["strategies"].items():
        curve = tuple(
            CurvePoint(int(p["labels"]), float(p["accuracy_mean"]), float(p["accuracy_std"])) for p in st["curve"]
        )
        if name == RANDOM:
            replayed[name] = StrategyAdvice(name, curve, st["aubc"], Verdict.BASELINE)
            continue
        p = paired.get(name) or {}
        low, high = (p.get("aubc_minus_random_ci95") or [None, None])[:2]
        replayed[name] = StrategyAdvice(
            name,
            curve,
            st["aubc"],
            Verdict(p.get("verdict", Verdict.NO_DIFFERENCE.value)),
            diff_mean=p.get("aubc_minus_random_mean"),
            diff_low=low,
            diff_high=high,
            diffs_by_seed=tuple(p.get("aubc_minus_random_by_seed") or ()),
        )
    out = []
    for name, advice in replayed.items():
        out.append(replace(advice, is_current=name == project.strategy))
        out += [
            replace(advice, strategy=alias, same_as=name, is_current=alias == project.strategy)
            for alias, stands_for in aliases.items()
            if stands_for == name
        ]
    strategies_advice = tuple(out)
    recommended, sentence = recommend(strategies_advice, project.strategy)
    signal = report.get("model_signal") or {}
    settings = report["settings"]
    return Advice(
        n_labels=int(report["n_items"]),
        n_pool=int(report["n_pool"]),
        n_eval=int(report["n_eval"]),
        seeds=tuple(settings["seeds"]),
        batch_size=int(settings["batch_size"]),
        initial=int(settings["initial"]),
        current_strategy=project.strategy,
        strategies=strategies_advice,
        recommended=recommended,
        sentence=sentence,
        featurizer=str(report.get("featurizer") or ""),
        full_pool_accuracy=report.get("full_pool_accuracy"),
        model_above_majority=bool(signal.get("above_majority", True)),
        seconds=round(seconds, 2),
        skipped=tuple(skipped),
    )


class AdvisorService(HomeBound):
    @requires(Role.REVIEWER)
    def status(self, project_name: str, *, actor: Actor) -> AdvisorStatus:
        """The latest advice, the threshold and how many labels the project has (reviewers and
        admins of the project; annotators never see it)."""
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            n = _final_count(session, project.id)
            done = _advise_jobs(session, project.id, JobState.DONE)
            active = _advise_jobs(session, project.id, JobState.QUEUED, JobState.RUNNING)
            latest = _advise_jobs(session, project.id)
            return AdvisorStatus(
                min_labels=min_labels(session, project.id),
                n_labels=n,
                advice=Advice.from_json(done.result) if done is not None and done.result else None,
                advice_job_id=done.id if done is not None else None,
                advised_at=done.finished_at if done is not None else None,
                active=job_info(active) if active is not None else None,
                failed=job_info(latest) if latest is not None and latest.state == JobState.FAILED else None,
            )

    @requires(Role.ADMIN)
    def queue(self, project_name: str, *, actor: Actor) -> JobInfo:
        """Queue the advise job now (admins only); one already queued or running is returned."""
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.ADMIN)
            n = _final_count(session, project.id)
        return JobService(self.engine).enqueue(project.name, JobKind.ADVISE, actor=actor, payload={"labels": n})

    @requires(Role.ADMIN)
    def run(
        self,
        project: ProjectInfo | int | str,
        *,
        actor: Actor,
        job_id: int | None = None,
        progress: ProgressFn = _quiet,
        seeds: tuple[int, ...] | None = None,
        jobs: int = 0,
    ) -> Advice:
        """Replay the project's final labels with each strategy and random (worker side); the
        job, when given, is completed with the advice. Reads the project; never changes it."""
        from workbench.services.projects import load_project, load_project_by_id
        from workbench.services.round_pipeline import RoundPipeline
        from workbench.simulate import SimulationConfig, simulate
        from workbench.training.featurizers import EMBEDDING_CACHE_ENV

        started = time.perf_counter()
        seeds = SEEDS if seeds is None else tuple(seeds)
        with reading(self.engine) as session:
            if isinstance(project, str):
                project = load_project(session, project)
            elif isinstance(project, int):
                project = load_project_by_id(session, project)
            data = labeled_data(session, project)
        if len(data.ids) < MIN_ITEMS:
            raise WorkbenchError(
                f"the advisor needs at least {MIN_ITEMS} final labels; the project has {len(data.ids)}"
            )
        if len(data.label_set) < 2:
            raise WorkbenchError("the advisor needs final labels of at least two labels")
        names, aliases, skipped = candidate_strategies(project)
        eval_fraction = 0.2
        initial, batch = plan(len(data.ids), len(data.label_set), eval_fraction)
        config = SimulationConfig(
            strategies=tuple(names),
            seeds=tuple(seeds),
            budget=None,
            batch_size=batch,
            initial=initial,
            overlap=1,
            annotators=1,
            annotator_accuracy=(1.0,),
            adjudicator="gold",
            eval_fraction=eval_fraction,
            model=dict(project.settings.get("model") or {"type": "logreg"}),
            featurizer=RoundPipeline.featurizer_params(project),
            random_share=0.0,
            jobs=jobs,
        )
        progress(5.0, f"replaying {len(names)} strategies x {len(seeds)} seeds on {len(data.ids)} labels")
        previous = os.environ.get(EMBEDDING_CACHE_ENV)
        if previous is None:  # the project's content-hashed embedding chunks, as its rounds use them
            os.environ[EMBEDDING_CACHE_ENV] = str(self.home / "features" / "embedding-chunks")
        try:
            report = simulate(data, config, show_progress=False, log=lambda line: log.info("%s", line))
        finally:
            if previous is None:
                os.environ.pop(EMBEDDING_CACHE_ENV, None)
        advice = _advice(report, project, aliases, skipped, time.perf_counter() - started)
        progress(99.0, "storing the advice")
        if job_id is not None:
            write(self.engine, lambda session: complete_job(session, job_id, advice))
        return advice
