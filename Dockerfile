# syntax=docker/dockerfile:1
# The scheduler sidecar: `scheduler run` on the schedule files mounted at /etc/scheduler/schedules.
#
#   docker build -t scheduler .
#   docker run --rm -v "$PWD/schedules:/etc/scheduler/schedules:ro" \
#     -e APP_DATABASE_URL=postgresql://... -e QUEUE_DATABASE_URL=postgresql://... -p 8080:8080 scheduler
#
# Configuration: SCHEDULER_* environment variables (`scheduler run --help` lists them); database DSNs come
# from the variables the schedule files name (`dsn_env`). Health: GET /healthz (alive), /readyz (ready),
# /metrics on SCHEDULER_HEALTH_PORT. Any other command: `docker run --entrypoint scheduler IMAGE validate`.
# Without a Docker engine, scripts/check-image repeats the install steps below in a temporary venv.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SCHEDULER_CONFIG=/etc/scheduler/schedules \
    SCHEDULER_HEALTH_PORT=8080 \
    SCHEDULER_LOG_FORMAT=json

RUN groupadd --system --gid 10001 scheduler \
    && useradd --system --uid 10001 --gid scheduler --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin scheduler

# Dependencies first (their own layer, rebuilt only when the lock changes), exactly as pinned.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-deps -r /tmp/requirements.lock && rm /tmp/requirements.lock

# The project itself, without resolving anything else; its sources do not stay in the image.
WORKDIR /tmp/src
COPY pyproject.toml README.md ./
COPY scheduler ./scheduler
RUN pip install --no-deps . && pip check

# An empty working directory (pydantic-settings reads an optional .env here) and the config mount point.
WORKDIR /opt/scheduler
RUN rm -rf /tmp/src && mkdir -p /etc/scheduler/schedules

USER 10001:10001
EXPOSE 8080

# Standard library only (the slim image has no curl); a non-2xx answer or no answer is unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SCHEDULER_HEALTH_PORT', '8080'), timeout=4)"]

ENTRYPOINT ["scheduler", "run"]
