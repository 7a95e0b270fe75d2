"""Start the Streamlit app as a child process (for `workbench serve` and the browser tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# The ASGI launcher (st.App) that serves app.py and sets the session cookie.
APP = Path(__file__).resolve().parent / "server.py"


def app_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


def run_app(
    host: str,
    port: int,
    database_url: str,
    *,
    home: str | Path | None = None,
    env: dict[str, str] | None = None,
    **popen,
) -> subprocess.Popen:
    """`python -m streamlit run workbench/ui/app.py` on host:port against `database_url`."""
    child_env = {**os.environ, **(env or {}), "WORKBENCH_DATABASE_URL": database_url}
    if home is not None:
        child_env["WORKBENCH_HOME"] = str(home)
    return subprocess.Popen(app_command(host, port), env=child_env, **popen)


def wait_healthy(host: str, port: int, process: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    """Block until the server answers its health check (or fail with a clear message)."""
    url = f"http://{host}:{port}/_stcore/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the app exited with code {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the app did not answer {url} within {timeout:.0f} s")
