"""The pauses CXone imposed on every worker, as gauges read from Redis at scrape time, and the
rejected-credentials counter, served on the worker's metrics port."""

from __future__ import annotations

import fakeredis
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared import redis_keys
from shared.cxone.metrics import CXonePausesCollector
from shared.cxone.rate_limiter import CallLimiter
from shared.cxone.token_pause import TokenPause
from worker import metrics


def collect(collector: CXonePausesCollector) -> dict[str, float]:
    return {sample.name: sample.value for family in collector.collect() for sample in family.samples}


def test_no_pause_reads_as_zero_and_each_pause_as_what_is_left_of_it() -> None:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    collector = CXonePausesCollector(client)
    assert collect(collector) == {
        "router_cxone_token_requests_paused": 0,
        "router_cxone_calls_paused_seconds": 0,
    }

    TokenPause(client).start("invalid_grant", "CXone rejected the credentials (invalid_grant): …")
    CallLimiter(client, redis_keys.CXONE_RATE_LIMIT, 100, pause_key=redis_keys.CXONE_PAUSE_UNTIL).pause(90)
    values = collect(collector)

    assert values["router_cxone_token_requests_paused"] == 1
    assert 89 < values["router_cxone_calls_paused_seconds"] <= 90


def test_an_unreachable_redis_reports_nothing_rather_than_a_wrong_zero() -> None:
    client = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))

    assert collect(CXonePausesCollector(client)) == {}


def test_the_worker_serves_the_rejected_credentials_counter() -> None:
    names = {family.name for family in metrics.WORKER_REGISTRY.collect()}

    assert "router_cxone_credentials_rejected" in names
