# syntax=docker/dockerfile:1
# One image for every Python service: web (the default command), worker, flower and the CXone
# sandbox; docker-compose.yml gives each its command.
#
# builder: the full Python image has compilers, so any dependency without a prebuilt wheel for this
#          platform is compiled here, into /wheels.
# runtime: slim Python, packages installed from those wheels only (mounted for the install, never
#          copied into a layer), no compilers, no pip cache, code owned by root, run as uid 10001.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --wheel-dir /wheels -r requirements.txt


FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \
    pip install --no-index --find-links=/wheels -r /tmp/requirements.txt

RUN groupadd --system --gid 10001 router \
 && useradd --system --uid 10001 --gid router --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin router

WORKDIR /app
# Only what the services run: no tests, tools or dev files (see also .dockerignore).
COPY config/ config/
COPY shared/ shared/
COPY ingress/ ingress/
COPY worker/ worker/
COPY cxone_sandbox/ cxone_sandbox/
# gunicorn reads it from the working directory: metrics shared by its processes, JSON lines.
COPY gunicorn.conf.py ./
COPY --chmod=0755 scripts/run-flower scripts/
# Byte-compile now: at run time the code is read-only to the service user.
RUN python -m compileall -q /app

USER 10001:10001
EXPOSE 8000
# The web service (compose gives every service its own command; this is for `docker run`).
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--threads", "4", \
     "--timeout", "30", "--graceful-timeout", "10", "--access-logfile", "-", \
     "--worker-tmp-dir", "/dev/shm", "--no-control-socket", "ingress.wsgi:app"]
