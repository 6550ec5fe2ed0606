"""The bare reference the ingress is measured against: the least a webhook endpoint can do.

A plain WSGI callable (no framework, no validation, no auth) that pushes the request body onto a
Redis list and answers 202. Served by gunicorn with exactly the ingress's worker class, workers and
threads, it shows what this machine, this server and one Redis round trip allow, so the ingress's
rate can be quoted as a share of it::

    gunicorn --worker-class gthread --workers 2 --threads 4 bench.bare_reference:app

Any GET answers 200 without touching Redis (the bench uses it to see that the server is up).
"""

from __future__ import annotations

import os

import redis

LIST_KEY = "bench:bare-reference"
_ANSWER = b'{"status":"queued"}'
_OK = b'{"status":"ok"}'

# One client per gunicorn worker (no --preload, so this runs after the fork), thread-safe pool,
# with the same socket settings as the ingress's own client.
_redis = redis.Redis.from_url(
    os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    socket_timeout=2,
    socket_connect_timeout=1,
    health_check_interval=10,
)


def app(environ, start_response):
    """Push the body onto ``LIST_KEY`` and answer 202 (GET: 200, nothing stored)."""
    if environ.get("REQUEST_METHOD") == "GET":
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(_OK)))])
        return [_OK]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    _redis.lpush(LIST_KEY, body)
    start_response(
        "202 Accepted", [("Content-Type", "application/json"), ("Content-Length", str(len(_ANSWER)))]
    )
    return [_ANSWER]
