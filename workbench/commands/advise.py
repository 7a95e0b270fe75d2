"""`workbench advise PROJECT [--wait]`: queue the strategy advisor; with --wait, follow it and print
each strategy's AUBC against random with its paired interval, and the recommendation."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from workbench.commands._common import open_workbench, operator
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.domain.advice import Advice

NO_WORKER_S = 3.0  # a starting worker registers within this; then --wait says none is running


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "advise",
        help="replay the project's labels per strategy against random (the strategy advisor)",
        description="Queue the strategy advisor: a worker replays the project's final-labeled items "
        "through `workbench simulate` with every strategy the project's model can serve and random, "
        "over a few seeds, and recommends the best strategy whose AUBC beats random's (paired 95% "
        "interval above zero). It never changes the project's strategy.",
    )
    parser.add_argument("project")
    parser.add_argument("--wait", action="store_true", help="follow the job and print the advice")
    parser.set_defaults(func=run)


def _f(value: float | None) -> str:
    return "—" if value is None else f"{value:+.4f}"


def format_advice(advice: Advice) -> str:
    """The advice as a table: strategy, AUBC, AUBC minus random with its interval, verdict."""
    header = ["strategy", "AUBC", "minus random", "95% interval", "verdict"]
    rows = []
    for s in advice.strategies:
        interval = "—" if s.diff_low is None else f"{s.diff_low:+.4f} to {s.diff_high:+.4f}"
        verdict = s.verdict.value + (f" (same ranking as {s.same_as})" if s.same_as else "")
        name = s.strategy + (" (current)" if s.is_current else "")
        aubc = "—" if s.aubc is None else f"{s.aubc:.4f}"
        rows.append([name, aubc, _f(s.diff_mean), interval, verdict])
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(len(header))]
    lines = [
        f"{advice.n_labels} final labels replayed ({advice.n_pool} pool, {advice.n_eval} eval), "
        f"seeds {', '.join(map(str, advice.seeds))}, seed set {advice.initial}, batch {advice.batch_size}, "
        f"{advice.seconds:.1f} s",
        "  ".join(h.ljust(w) for h, w in zip(header, widths)),
    ]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    lines.append(advice.sentence)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from workbench.domain import JobState
    from workbench.domain.advice import Advice

    wb = open_workbench(args)
    job = wb.advisor.queue(args.project, actor=operator())
    print(f"strategy advisor queued as job {job.id}")
    if not args.wait:
        return 0
    no_worker_since: float | None = None
    last = ""
    while job.state in (JobState.QUEUED, JobState.RUNNING):
        if job.state == JobState.QUEUED and not wb.jobs.live_workers(actor=operator()):
            no_worker_since = no_worker_since or time.monotonic()
            if time.monotonic() - no_worker_since >= NO_WORKER_S:
                raise WorkbenchError(
                    f"no worker is running, so advise job {job.id} stays queued; start one with "
                    "`workbench worker` (or run `workbench serve`, which starts one) and it will run"
                )
        else:
            no_worker_since = None
        if job.message != last:
            print(f"job {job.id}: {job.message}", file=sys.stderr)
            last = job.message
        time.sleep(0.5)
        job = wb.jobs.get(job.id, actor=operator())
    if job.state == JobState.FAILED:
        raise WorkbenchError(f"the strategy advisor failed: {job.error}")
    if not isinstance(job.result, Advice):
        raise WorkbenchError(f"advise job {job.id} finished without advice")
    print(format_advice(job.result))
    return 0
