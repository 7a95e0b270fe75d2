"""Job leases and the worker registry: stale leases are given back, dead local workers' jobs are
requeued at once, clean interruptions are not charged, and orphan files are swept with a grace."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session

from workbench.db.models import Job, utcnow
from workbench.domain import Actor, JobKind, JobState
from workbench.services.jobs import MAX_ATTEMPTS
from workbench.services.storage import StorageService

OP = Actor.operator()


def _running_job(wb, worker="host-a:111"):
    wb.projects.create("p", "text", ["a", "b"], actor=Actor.operator())
    job = wb.jobs.enqueue("p", JobKind.RESCORE, actor=Actor.operator())
    claimed = wb.jobs.claim_next(worker, actor=Actor.operator())
    assert claimed.id == job.id and claimed.state == JobState.RUNNING and claimed.worker == worker
    return claimed


def _age_lease(wb, job_id, seconds):
    with Session(wb.engine) as s, s.begin():
        s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(seconds=seconds)))


def test_a_stale_lease_is_requeued_then_failed_after_max_attempts(wb):
    job = _running_job(wb)
    assert wb.jobs.requeue_stale(actor=OP) == []  # fresh lease: left alone
    for attempt in range(1, MAX_ATTEMPTS + 1):
        _age_lease(wb, job.id, 60)
        assert wb.jobs.requeue_stale(actor=OP) == [job.id]
        info = wb.jobs.get(job.id, actor=Actor.operator())
        if attempt < MAX_ATTEMPTS:
            assert info.state == JobState.QUEUED and "stopped responding" in info.error
            assert wb.jobs.claim_next("host-b:222", actor=Actor.operator()).attempts == attempt + 1
    info = wb.jobs.get(job.id, actor=Actor.operator())
    assert info.state == JobState.FAILED and f"after {MAX_ATTEMPTS} attempts" in info.error
    assert info.finished_at is not None


def test_heartbeat_renews_only_the_holders_lease(wb):
    job = _running_job(wb, "host-a:1")
    _age_lease(wb, job.id, 60)
    wb.jobs.heartbeat(job.id, worker="host-a:2", actor=Actor.operator())  # not the holder: no renewal
    assert wb.jobs.requeue_stale(actor=OP) == [job.id]
    job = wb.jobs.claim_next("host-a:1", actor=Actor.operator())
    _age_lease(wb, job.id, 60)
    wb.jobs.heartbeat(job.id, worker="host-a:1", actor=Actor.operator())
    assert wb.jobs.requeue_stale(actor=OP) == []


def test_a_clean_interruption_is_not_charged(wb):
    job = _running_job(wb, "h:5")
    assert not wb.jobs.release(job.id, "h:6", "stopped", actor=OP)  # someone else's job
    assert wb.jobs.release(job.id, "h:5", "worker h:5 was stopped (SIGTERM)", actor=OP)
    info = wb.jobs.get(job.id, actor=Actor.operator())
    assert info.state == JobState.QUEUED and info.attempts == 0 and "SIGTERM" in info.error
    assert not wb.jobs.release(job.id, "h:5", "again", actor=OP)  # already given back


def test_jobs_of_a_dead_local_process_are_requeued_without_waiting(wb):
    job = _running_job(wb, "here:4242")
    wb.jobs.register_worker("here:4242", "here", 4242, actor=OP)
    alive = {4242: True}
    assert wb.jobs.requeue_dead_local("here", lambda pid: alive.get(pid, False), actor=OP) == []
    assert wb.jobs.requeue_dead_local("elsewhere", lambda pid: False, actor=OP) == []
    alive[4242] = False
    assert wb.jobs.requeue_dead_local("here", lambda pid: alive.get(pid, False), actor=OP) == [job.id]
    info = wb.jobs.get(job.id, actor=Actor.operator())
    assert info.state == JobState.QUEUED and info.attempts == 1 and "is gone" in info.error
    assert wb.jobs.live_workers(actor=OP) == []  # its registry row went with it


def test_the_registry_tells_live_workers_from_gone_ones(wb):
    assert wb.jobs.live_workers(actor=OP) == []
    wb.jobs.register_worker("h:1", "h", 1, actor=OP)
    wb.jobs.register_worker("h:2", "h", 2, actor=OP)
    wb.jobs.worker_beat("h:2", job_id=None, actor=OP)
    assert [w.name for w in wb.jobs.live_workers(actor=OP)] == ["h:1", "h:2"]
    assert wb.jobs.live_workers(actor=OP, within=timedelta(0)) == []
    wb.jobs.unregister_worker("h:1", actor=OP)
    assert [w.name for w in wb.jobs.live_workers(actor=OP)] == ["h:2"]


def test_sweep_removes_only_old_unreferenced_models_and_tmp_files(wb, home):
    from tests.helpers import add_text_items, set_final_labels

    info = wb.projects.create(
        "s", "text", ["ham", "spam"], settings={"model": {"type": "logreg"}}, actor=Actor.operator()
    )
    texts = [("win a prize" if i % 2 else "see you at lunch") + f" {i}" for i in range(60)]
    add_text_items(wb.engine, info.id, texts)
    set_final_labels(wb.engine, info.id, {f"t{i}": "spam" if i % 2 else "ham" for i in range(60)})
    job = wb.rounds.start("s", actor=OP)
    wb.jobs.claim_next("w:1", actor=Actor.operator())
    wb.rounds.run_retrain("s", actor=OP, job_id=job.id)
    artifacts, features = home / "artifacts", home / "features"
    kept = list(artifacts.glob("model-*"))
    assert len(kept) == 1
    orphan = artifacts / "model-0123456789abcdef.skops"
    young_orphan = artifacts / "model-fedcba9876543210.skops"
    tmp_file = artifacts / ".model-x.skops.abc.tmp"
    tmp_dir = features / ".deadbeef.csr.xyz.tmp"
    for path in (orphan, young_orphan, tmp_file):
        path.write_bytes(b"x" * 100)
    tmp_dir.mkdir(parents=True)
    (tmp_dir / "data.npy").write_bytes(b"y" * 50)
    old = time.time() - 7200
    for path in (orphan, tmp_file, tmp_dir, kept[0]):
        os.utime(path, (old, old))
    storage = StorageService(wb.engine, home)
    preview = storage.sweep_orphans(actor=OP, dry_run=True)
    assert preview.models == (orphan.name,) and orphan.exists()
    report = storage.sweep_orphans(actor=OP)
    assert report.models == (orphan.name,)
    assert set(report.temporaries) == {"artifacts/.model-x.skops.abc.tmp", "features/.deadbeef.csr.xyz.tmp"}
    assert report.bytes_freed == 250
    assert kept[0].exists() and young_orphan.exists()  # referenced, and too young to judge
    assert not orphan.exists() and not tmp_file.exists() and not tmp_dir.exists()
    assert wb.rounds.runs("s", actor=OP)[0].artifact_sha256  # the run's model still loads


def test_a_round_is_claimed_before_an_older_advisor_replay(wb):
    # In chaos a recovery worker took the advisor's replay queued before a retrain, and the retrain
    # waited behind it; background replays now come after every other kind, whatever their age.
    wb.projects.create("p", "text", ["a", "b"], actor=OP)
    advise = wb.jobs.enqueue("p", JobKind.ADVISE, actor=OP)
    retrain = wb.jobs.enqueue("p", JobKind.RETRAIN, actor=OP)
    assert wb.jobs.claim_next("host-a:1", actor=OP).id == retrain.id
    assert wb.jobs.claim_next("host-a:1", actor=OP).id == advise.id
