"""Workers as real processes: a worker killed mid-round leaves nothing half-registered and the
round is retried; several workers share one queue safely."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from tests.helpers import add_text_items, set_final_labels
from workbench.db.models import ModelRun
from workbench.domain import Actor

OPERATOR = Actor.operator()

TEXTS = [f"{'cheap offer win prize' if i % 3 == 0 else 'lunch at noon'} {i}" for i in range(300)]
LABELS = {f"t{i}": ("spam" if i % 3 == 0 else "ham") for i in range(300)}
# A deliberately slow model so the kill lands mid-training.
SLOW_MODEL = {"type": "mlp", "hidden": 256, "epochs": 400}


def _start_worker(db_url: str, home) -> subprocess.Popen:
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_DATABASE_URL": db_url}
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def test_killed_worker_leaves_no_half_registered_model(wb, db_url, home):
    info = wb.projects.create("kill", "text", ["ham", "spam"], settings={"model": SLOW_MODEL}, actor=Actor.operator())
    add_text_items(wb.engine, info.id, TEXTS)
    set_final_labels(wb.engine, info.id, LABELS)
    job = wb.rounds.start("kill", actor=OPERATOR)
    worker = _start_worker(db_url, home)
    try:
        _wait_for(
            lambda: wb.jobs.get(job.id, actor=Actor.operator()).message == "train", timeout=120
        )  # training has begun
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert wb.jobs.get(job.id, actor=Actor.operator()).state == "running"
    with Session(wb.engine) as s:
        assert s.exec(select(func.count()).select_from(ModelRun)).scalar_one() == 0
    # The next worker sees the stale heartbeat, takes the job back and finishes it.
    wb.projects.update_settings("kill", model={"type": "logreg"}, actor=Actor.operator())
    retried = wb.jobs.claim_next("second-worker", stale_after=timedelta(seconds=0), actor=Actor.operator())
    assert retried is not None and retried.id == job.id and retried.attempts == 2
    wb.rounds.run_retrain("kill", actor=OPERATOR, job_id=job.id)
    done = wb.jobs.get(job.id, actor=Actor.operator())
    assert done.state == "done" and done.result.run_id
    with Session(wb.engine) as s:
        assert s.exec(select(func.count()).select_from(ModelRun)).scalar_one() == 1


def test_two_workers_share_the_queue(wb, db_url, home):
    names = [f"p{i}" for i in range(4)]
    for name in names:
        info = wb.projects.create(name, "text", ["ham", "spam"], actor=Actor.operator())
        add_text_items(wb.engine, info.id, TEXTS[:120])
        set_final_labels(wb.engine, info.id, dict(list(LABELS.items())[:120]))
    jobs = [wb.rounds.start(name, actor=OPERATOR) for name in names]
    workers = [_start_worker(db_url, home) for _ in range(2)]
    try:
        _wait_for(
            lambda: all(wb.jobs.get(j.id, actor=Actor.operator()).state in ("done", "failed") for j in jobs),
            timeout=300,
        )
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=10)
    states = [wb.jobs.get(j.id, actor=Actor.operator()) for j in jobs]
    assert all(j.state == "done" and j.attempts == 1 for j in states), [(j.state, j.error) for j in states]
    with Session(wb.engine) as s:
        assert s.exec(select(func.count()).select_from(ModelRun)).scalar_one() == 4


def test_sigterm_mid_round_gives_the_round_back_uncharged(wb, db_url, home):
    from workbench.domain import Actor

    info = wb.projects.create("stop", "text", ["ham", "spam"], settings={"model": SLOW_MODEL}, actor=Actor.operator())
    add_text_items(wb.engine, info.id, TEXTS)
    set_final_labels(wb.engine, info.id, LABELS)
    job = wb.rounds.start("stop", actor=OPERATOR)
    worker = _start_worker(db_url, home)
    try:
        _wait_for(lambda: wb.jobs.get(job.id, actor=Actor.operator()).message == "train", timeout=120)
        assert [w.pid for w in wb.jobs.live_workers(actor=Actor.operator())] == [worker.pid]
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
    finally:
        if worker.poll() is None:
            worker.kill()
    after = wb.jobs.get(job.id, actor=Actor.operator())
    assert after.state == "queued" and after.attempts == 0 and "SIGTERM" in after.error
    assert wb.jobs.live_workers(actor=Actor.operator()) == []  # it unregistered
    with Session(wb.engine) as s:
        assert s.exec(select(func.count()).select_from(ModelRun)).scalar_one() == 0


def test_a_new_worker_requeues_what_a_dead_local_worker_held(wb, db_url, home):
    info = wb.projects.create("dead", "text", ["ham", "spam"], settings={"model": SLOW_MODEL}, actor=Actor.operator())
    add_text_items(wb.engine, info.id, TEXTS)
    set_final_labels(wb.engine, info.id, LABELS)
    job = wb.rounds.start("dead", actor=OPERATOR)
    worker = _start_worker(db_url, home)
    try:
        _wait_for(lambda: wb.jobs.get(job.id, actor=Actor.operator()).message == "train", timeout=120)
        worker.kill()
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    wb.projects.update_settings("dead", model={"type": "logreg"}, actor=Actor.operator())
    second = _start_worker(db_url, home)  # its lease is still fresh, but its process is gone
    try:
        _wait_for(lambda: wb.jobs.get(job.id, actor=Actor.operator()).state == "done", timeout=60)
    finally:
        second.terminate()
        second.wait(timeout=10)
    done = wb.jobs.get(job.id, actor=Actor.operator())
    assert done.attempts == 2 and done.worker == f"{done.worker.rpartition(':')[0]}:{second.pid}"


def test_retrain_wait_says_when_no_worker_is_running(wb, db_url, home, capsys):
    from workbench.cli import main

    info = wb.projects.create("nobody", "text", ["ham", "spam"], actor=Actor.operator())
    add_text_items(wb.engine, info.id, TEXTS[:40])
    started = time.monotonic()
    assert main(["--database-url", db_url, "retrain", "nobody", "--wait"]) == 1
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("workbench: error: no worker is running") and "`workbench worker`" in err
