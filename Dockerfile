# The Workbench app and a worker, listening on 0.0.0.0:8501, with its data in the /data volume.
#
# Signals: `workbench serve` is the supervisor. It handles SIGTERM, SIGINT and SIGHUP itself (so
# it also works as PID 1, where the kernel ignores signals a process has no handler for), stops
# the app and the worker, and exits 0 within 10 s, inside `docker stop`'s default 10 s timeout.
# tini runs as PID 1 in front of it only to reap zombies: grandchildren orphaned by a crashed child
# are re-parented to PID 1, and serve waits only for its own children. tini passes every signal on.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    WORKBENCH_HOME=/data

WORKDIR /app
# The CPU build of PyTorch first, so the package's torch requirement is already met.
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY workbench ./workbench
COPY strategies ./strategies
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/* \
    && pip install . \
    && useradd --create-home --uid 1000 workbench \
    && mkdir -p /data && chown workbench:workbench /data

USER workbench
VOLUME /data
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')"
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["workbench", "serve", "--host", "0.0.0.0", "--port", "8501"]
