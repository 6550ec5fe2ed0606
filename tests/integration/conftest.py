"""Fixtures for integration tests: a real Redis, the sandbox, gunicorn and Celery worker processes."""

from __future__ import annotations

import os
import shutil

import pytest
import redis

from tests.integration.stack import GUARANTEE_RESULTS, PrivateRedis, Stack

#: Set to use an existing Redis; by default each test session runs a private redis-server, so
#: parallel sessions (a benchmark, another checkout) can never flush each other's data.
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    if TEST_REDIS_URL is None:
        if shutil.which("redis-server") is None:  # a clear failure, never a skip
            pytest.fail(
                "integration tests need redis-server on PATH (scripts/ensure-redis "
                "installs it) or TEST_REDIS_URL pointing at a Redis to use"
            )
        private = PrivateRedis(tmp_path_factory.mktemp("redis"), durable=False)
        private.start()
        yield private.url
        private.kill()
        return
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"no Redis answers at TEST_REDIS_URL={TEST_REDIS_URL}: {exc}")
    finally:
        client.close()
    yield TEST_REDIS_URL


@pytest.fixture
def stack(redis_url, tmp_path, request):
    """Sandbox + ingress running against a flushed Redis database; workers are started by tests.

    Environment for every process of the stack (sandbox included) can be given by indirect
    parametrization: ``@pytest.mark.parametrize("stack", [{"LOG_LEVEL": "DEBUG"}], indirect=True)``.
    """
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    running = Stack(
        redis_url=redis_url, workdir=tmp_path, env_overrides=dict(getattr(request, "param", None) or {})
    )
    try:
        running.start_sandbox()
        running.start_web()
        yield running
    finally:
        running.close()
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            print(running.logs())


def pytest_terminal_summary(terminalreporter):
    """Print the guarantee tests' counts as one table (the soak report)."""
    if not GUARANTEE_RESULTS:
        return
    columns = [
        "scenario",
        "webhooks_2xx",
        "lost",
        "contacts_routed",
        "routed_more_than_once",
        "repeated_routing_calls",
        "calls_above_limit",
        "answered_429",
        "token_requests",
    ]
    extra = sorted({k for row in GUARANTEE_RESULTS for k in row} - set(columns))
    header = columns + extra
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in GUARANTEE_RESULTS)) for c in header}
    terminalreporter.section("guarantees under faults")
    terminalreporter.write_line("  ".join(c.ljust(widths[c]) for c in header))
    for row in GUARANTEE_RESULTS:
        terminalreporter.write_line("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in header))
    terminalreporter.write_line(
        f"total: {sum(r['webhooks_2xx'] for r in GUARANTEE_RESULTS)} webhooks answered 2xx, "
        f"{sum(r['lost'] for r in GUARANTEE_RESULTS)} lost, "
        f"{sum(r['routed_more_than_once'] for r in GUARANTEE_RESULTS)} contacts routed more than once, "
        f"{sum(r.get('repeated_routing_calls', 0) for r in GUARANTEE_RESULTS)} repeated routing calls"
    )
