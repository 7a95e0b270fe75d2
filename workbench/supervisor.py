"""The process supervisor behind `workbench serve` and `workbench demo`.

It starts the Streamlit app and a worker as children, each in its own process group, and stays in
the foreground doing nothing but watching them:

- SIGTERM, SIGINT or SIGHUP (to the supervisor, including as PID 1 in a container): every child
  gets SIGTERM. The worker hands its running job back to the queue and exits; the app closes its
  port. A child still running after the grace period is killed (SIGKILL to its whole group) and
  the supervisor exits 0; a job a killed worker held is requeued by the next worker to start (or
  by any live worker once its lease is stale). A second signal cuts the grace period short.
- The worker dies: the supervisor logs how (exit code or signal) and starts a new worker after a
  backoff that doubles from 1 s up to 60 s and resets once a worker has lived a minute. The new
  worker requeues the job the dead one held as it starts (a worker on this host whose process is
  gone holds nothing), without waiting for the lease to go stale. The supervisor itself never
  opens the database, so it stays small and quick to react.
- The app server dies: the supervisor stops the worker and exits non-zero.

Children are in their own process groups so that a terminal's Ctrl-C reaches only the
supervisor, which then stops them in order; and, on Linux, each child gets SIGTERM if the
supervisor itself is killed (PR_SET_PDEATHSIG), so it never leaves them serving.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.commands.serve import GRACE_S  # children get this long after SIGTERM; then SIGKILL
from workbench.ui.launch import run_app

if TYPE_CHECKING:
    from types import FrameType
    from typing import TextIO

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

BACKOFF_START_S, BACKOFF_MAX_S, HEALTHY_AFTER_S = 1.0, 60.0, 60.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies (Linux only; else nothing)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    """Signal the child's whole process group (its own children too); quiet if it is gone."""
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


class Supervisor:
    def __init__(
        self,
        url: str,
        home: Path,
        *,
        host: str,
        port: int,
        worker: bool = True,
        grace_s: float = GRACE_S,
        out: TextIO | None = None,
    ) -> None:
        self.url, self.home, self.host, self.port = url, home, host, port
        self.want_worker, self.grace_s = worker, grace_s
        self.out = out or sys.stderr
        self.env = {**os.environ, "WORKBENCH_DATABASE_URL": url, "WORKBENCH_HOME": str(home)}
        self.app: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.worker_started = 0.0
        self.backoff = BACKOFF_START_S
        self.restart_at: float | None = None
        self.signals: list[str] = []

    def log(self, message: str) -> None:
        print(
            f"workbench serve: {time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} {message}",
            file=self.out,
            flush=True,
        )

    # -- children ---------------------------------------------------------------------------
    def _popen_options(self) -> dict:
        return {"process_group": 0, "preexec_fn": _die_with_parent}

    def start_worker(self) -> subprocess.Popen:
        self.worker = worker = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "worker"], env=self.env, **self._popen_options()
        )
        self.worker_started = time.monotonic()
        self.restart_at = None
        return worker

    def start_app(self) -> subprocess.Popen:
        self.app = app = run_app(self.host, self.port, self.url, home=self.home, env=self.env, **self._popen_options())
        return app

    # -- the loop ---------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signal.Signals(signum).name)

    def run(self) -> int:
        previous = {signum: signal.signal(signum, self._on_signal) for signum in STOP_SIGNALS}
        try:
            if self.want_worker:
                self.start_worker()
            app = self.start_app()
            self.log(f"app pid {app.pid}" + (f", worker pid {self.worker.pid}" if self.worker else ""))
            while not self.signals:
                code = app.poll()
                if code is not None:
                    self.log(f"the app server {_describe_exit(code)}; stopping")
                    self.shutdown()
                    return code if code > 0 else 1
                self._watch_worker()
                time.sleep(0.1)
            self.log(f"got {self.signals[0]}; stopping the app and the worker")
            self.shutdown()
            return 0
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _watch_worker(self) -> None:
        if self.worker is not None:
            code = self.worker.poll()
            if code is None:
                return
            lived = time.monotonic() - self.worker_started
            if lived >= HEALTHY_AFTER_S:
                self.backoff = BACKOFF_START_S
            self.log(
                f"the worker (pid {self.worker.pid}) {_describe_exit(code)} after {lived:.0f} s; "
                f"restarting it in {self.backoff:.0f} s (it requeues the job the dead one held)"
            )
            self.worker = None
            self.restart_at = time.monotonic() + self.backoff
            self.backoff = min(self.backoff * 2, BACKOFF_MAX_S)
        elif self.restart_at is not None and time.monotonic() >= self.restart_at:
            worker = self.start_worker()
            self.log(f"worker restarted (pid {worker.pid})")

    def shutdown(self) -> None:
        """SIGTERM every child, wait out the grace period, SIGKILL what is left; reap everything."""
        children = [p for p in (self.worker, self.app) if p is not None]
        for process in children:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        seen = len(self.signals)
        started = time.monotonic()
        deadline = started + self.grace_s
        stopped: dict[int, float] = {}
        while time.monotonic() < deadline and any(p.poll() is None for p in children):
            for process in children:
                if process.pid not in stopped and process.returncode is not None:
                    stopped[process.pid] = time.monotonic() - started
            if len(self.signals) > seen:
                break  # another signal during the stop: no more patience
            time.sleep(0.05)
        for process in children:
            if process.pid not in stopped and process.returncode is not None:
                stopped[process.pid] = time.monotonic() - started
        self.log(
            "stopped: "
            + ", ".join(
                f"{'worker' if p is self.worker else 'app'} in {stopped[p.pid]:.1f} s"
                for p in children
                if p.pid in stopped
            )
        )
        for process in children:
            if process.poll() is None:
                name = "worker" if process is self.worker else "app"
                self.log(f"the {name} (pid {process.pid}) did not stop within {self.grace_s:.0f} s; killing it")
                _signal_group(process, signal.SIGKILL)
                try:
                    process.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    self.log(f"pid {process.pid} survives SIGKILL (stuck in the kernel?)")
            _signal_group(process, signal.SIGKILL)  # anything the child left behind in its group


def serve(url: str, home: Path, *, host: str, port: int, worker: bool = True, grace_s: float = GRACE_S) -> int:
    print(f"Workbench on http://{host}:{port}  (database {url})", flush=True)
    return Supervisor(url, home, host=host, port=port, worker=worker, grace_s=grace_s).run()
