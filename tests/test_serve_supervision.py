"""`workbench serve` as a supervisor, as real processes: each stop signal ends it with exit 0,
no child left and the port free within 10 s; a SIGKILLed worker is restarted and its round
requeued; a dead app ends serve non-zero. (`python -m workbench.bench.processes` loops these.)"""

from __future__ import annotations

import os
import signal
import time

import pytest

from workbench.bench.processes import Serve, group_members, one_kill, one_shutdown, port_is_free


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_each_stop_signal_ends_serve_cleanly(signum, tmp_path):
    run = one_shutdown(signum, tmp_path)
    assert run.exit_code == 0, run
    assert run.leftover == [] and run.port_free, run
    assert run.clean_s is not None and run.clean_s <= 10, run


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_its_round_requeued(tmp_path):
    run = one_kill(tmp_path)
    assert run.restart_logged, run
    assert run.back_s is not None and run.back_s <= 60, run
    assert run.requeued_s is not None and run.requeued_s <= 60, run
    assert run.attempts_after == 2, run  # the new worker took it again
    # Then SIGTERM while the new worker runs it: serve ends cleanly and the round waits, uncharged.
    assert run.stop.ok, run.stop
    assert run.state_after_stop == "queued" and run.attempts_after_stop == 1, run


@pytest.mark.slow
def test_when_the_app_dies_serve_stops_the_worker_and_exits_non_zero(tmp_path):
    serve = Serve(tmp_path)
    try:
        children = serve.wait_ready()
        app = next(pid for pid in children if b"streamlit" in open(f"/proc/{pid}/cmdline", "rb").read())
        os.kill(app, signal.SIGKILL)
        code = serve.process.wait(timeout=15)
        assert code != 0
        deadline = time.monotonic() + 5
        while group_members(set(children)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert group_members(set(children)) == [] and port_is_free(serve.port)
        assert "the app server was killed by SIGKILL; stopping" in serve.output()
    finally:
        serve.close()


def test_children_run_in_their_own_process_groups(tmp_path):
    serve = Serve(tmp_path, extra=["--no-worker"])
    try:
        (app,) = serve.wait_ready()
        assert os.getpgid(app) == app != os.getpgid(serve.process.pid)
    finally:
        serve.process.send_signal(signal.SIGTERM)
        assert serve.process.wait(timeout=15) == 0
        serve.close()
