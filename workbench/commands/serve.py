"""`workbench serve`: the Streamlit app plus a background worker, as two processes."""

from __future__ import annotations

import os
import subprocess
import sys

from workbench.config import database_url, workbench_home


def register(subparsers) -> None:  # noqa: ANN001
    parser = subparsers.add_parser("serve", help="start the web app and a worker",
                                   description="Start the Streamlit app and a background worker.")
    add_serve_options(parser)
    parser.set_defaults(func=run)


def add_serve_options(parser) -> None:  # noqa: ANN001
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--no-worker", action="store_true", help="do not start a worker beside the app")


def run(args) -> int:  # noqa: ANN001
    return serve(args.database_url, host=args.host, port=args.port, worker=not args.no_worker)


def serve(url: str | None, *, host: str, port: int, worker: bool = True) -> int:
    """Run the app in the foreground (and a worker in the background) until interrupted."""
    from workbench.ui.launch import run_app

    url, home = database_url(url), workbench_home()
    env = {**os.environ, "WORKBENCH_DATABASE_URL": url, "WORKBENCH_HOME": str(home)}
    helper = subprocess.Popen([sys.executable, "-m", "workbench.cli", "worker"], env=env) if worker else None
    print(f"Workbench on http://{host}:{port}  (database {url})", flush=True)
    app = run_app(host, port, url, home=home)
    try:
        return app.wait()
    except KeyboardInterrupt:
        app.terminate()
        return app.wait(timeout=10)
    finally:
        if helper is not None:
            helper.terminate()
            helper.wait(timeout=10)
