"""`workbench retrain PROJECT [--wait]`: queue a round; with --wait, follow it with a progress bar."""

from __future__ import annotations

import argparse
import sys
import time

from workbench.commands._common import open_workbench, operator
from workbench.errors import WorkbenchError

NO_WORKER_S = 3.0  # a starting worker registers within this; then --wait says none is running


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "retrain",
        help="queue a retrain round",
        description="Queue a round: cut a dataset version, train, evaluate on the eval "
        "split and rescore the pool. A worker runs it.",
    )
    parser.add_argument("project")
    parser.add_argument("--wait", action="store_true", help="follow the round until it ends")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from workbench.domain import Actor, JobState, RoundResult

    wb = open_workbench(args)
    job = wb.rounds.start(args.project, actor=Actor.operator(), seed=args.seed)
    print(f"round queued as job {job.id}")
    if not args.wait:
        return 0
    no_worker_since: float | None = None
    with tqdm(total=100, desc=f"job {job.id}", unit="%", file=sys.stderr) as bar:
        while job.state in (JobState.QUEUED, JobState.RUNNING):
            if job.state == JobState.QUEUED and not wb.jobs.live_workers(actor=Actor.operator()):
                no_worker_since = no_worker_since or time.monotonic()
                if time.monotonic() - no_worker_since >= NO_WORKER_S:
                    raise WorkbenchError(
                        f"no worker is running, so round job {job.id} stays queued; start one with "
                        "`workbench worker` (or run `workbench serve`, which starts one) and it will run"
                    )
            else:
                no_worker_since = None
            time.sleep(0.5)
            job = wb.jobs.get(job.id, actor=operator())
            bar.set_postfix_str(job.message)
            bar.update(job.progress - bar.n)
    if job.state == JobState.FAILED:
        raise WorkbenchError(f"round failed: {job.error}")
    result = job.result
    assert isinstance(result, RoundResult)  # a retrain job that is done has its round's result
    metrics = result.metrics
    if metrics is not None and metrics.evaluated:
        low, high = metrics.accuracy_ci95 or (metrics.accuracy, metrics.accuracy)
        quality = f"{metrics.n} eval items, accuracy {metrics.accuracy:.3f} (95% CI {low:.3f}–{high:.3f})"
    else:
        quality = "no eval metrics (no model, or no labeled eval item)"
    print(
        f"version {result.version}: {result.n_train} training labels, {quality}; "
        f"ranked {result.ranked} items by {result.ranked_by.describe()}"
    )
    return 0
