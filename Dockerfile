# syntax=docker/dockerfile:1
# One image for every Python service: web (the default command), worker, flower and the CXone
# sandbox; docker-compose.yml gives each its command.
#
# Dependencies come from the lock, requirements.txt (`make lock` makes it): pip refuses any file
# whose hash is not in it (--require-hashes), installs nothing the lock does not name (--no-deps),
# and only prebuilt wheels (--only-binary): every locked package has wheels for Linux x86_64 and
# aarch64, so the image needs no compilers. Slim Python, no pip cache, code owned by root, run as
# uid 10001.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \
    pip install --require-hashes --no-deps --only-binary=:all: -r /tmp/requirements.txt

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
# The operator's command line: `docker compose run --rm worker python -m ops doctor` and the like.
COPY ops/ ops/
# gunicorn reads it from the working directory: bind, processes, threads, timeouts, metrics shared
# by its processes, JSON lines.
COPY gunicorn.conf.py ./
COPY --chmod=0755 scripts/run-flower scripts/
# Byte-compile now: at run time the code is read-only to the service user.
RUN python -m compileall -q /app

USER 10001:10001
EXPOSE 8000
# The web service (compose gives every service its own command; this is for `docker run`). Its
# settings (port 8000 unless PORT says otherwise, WEB_CONCURRENCY processes, WEB_THREADS threads,
# timeouts, access log) are in /app/gunicorn.conf.py, read from this working directory.
CMD ["gunicorn", "ingress.wsgi:app"]
