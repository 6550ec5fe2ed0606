"""Worker metrics: routing outcomes, CXone calls, token refreshes, limiter waits, Redis-read gauges,
and the metrics server the worker starts when it boots."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator

import fakeredis
import pytest
import redis
import requests
import responses
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared import redis_keys
from shared.cxone.client import ROUTING_QUEUE_PATH, CXoneClient
from shared.cxone.errors import OutcomeUnknown, Permanent, RateLimited, Throttled, Transient
from shared.routing.job import RoutingJob, new_routing_id
from shared.settings import Settings
from shared.task_queue import ROUTING_QUEUE
from tests.support.cxone import API_URL, FakeCXone, FakeCXoneAuth, make_settings
from tests.support.worker import worker_on_fakes, worker_settings
from tests.unit.observability.conftest import parse_samples, sample
from worker import metrics, observability
from worker.context import WorkerContext
from worker.routing import MAX_REDELIVERIES, process


def value(name: str, **labels: str) -> float:
    return metrics.WORKER_REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def cxone() -> FakeCXone:
    return FakeCXone()


@pytest.fixture
def ctx(cxone) -> WorkerContext:
    return worker_on_fakes(
        worker_settings(), cxone, fakeredis.FakeRedis(server=fakeredis.FakeServer()), seed=7
    )


@pytest.fixture
def make_job(ctx) -> Callable[..., RoutingJob]:
    def make(**overrides) -> RoutingJob:
        values = {
            "routing_id": new_routing_id(),
            "contact_id": "728471935",
            "intent": "billing_dispute",
            "mode": "digital",
            "queue_name": "Billing Disputes",
            "received_at": time.time(),
            **overrides,
        }
        job = RoutingJob(**values)
        ctx.store.create(job)
        return job

    return make


# ---------------------------------------------------------------- routing outcomes


def _expire_window(ctx, make_job):
    return make_job(received_at=time.time() - ctx.settings.routing_retry_window_seconds + 0.1)


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (None, ("routed", "none")),
        (RateLimited(2.0), ("parked", "rate_limited")),
        (Throttled("429", retry_after=1.0, status=429), ("parked", "throttled")),
        (Throttled("429", retry_after=None, status=429), ("retried", "throttled")),
        (Transient("503", status=503), ("retried", "transient")),
        (Permanent("404", status=404), ("failed", "permanent")),
        (OutcomeUnknown("maybe sent", endpoint="signal"), ("failed", "outcome_unknown")),
    ],
)
def test_each_routing_outcome_is_counted_once(ctx, cxone, make_job, failure, expected):
    outcome, reason = expected
    before = value("router_routings_total", outcome=outcome, reason=reason)
    if failure is not None:
        cxone.fail_next("route_digital", failure)

    process(make_job(), ctx)

    assert value("router_routings_total", outcome=outcome, reason=reason) == before + 1


def test_a_routing_past_its_retry_window_counts_as_failed_retry_window(ctx, cxone, make_job):
    before = value("router_routings_total", outcome="failed", reason="retry_window")
    cxone.fail_next("route_digital", Transient("503", status=503))

    process(_expire_window(ctx, make_job), ctx)

    assert value("router_routings_total", outcome="failed", reason="retry_window") == before + 1


def test_a_routing_held_by_another_worker_counts_as_retried_in_flight(ctx, make_job):
    before = value("router_routings_total", outcome="retried", reason="in_flight")
    job = make_job()
    ctx.redis.set(redis_keys.contact_lease(job.contact_id), f"{job.routing_id} other-copy", ex=5)

    process(job, ctx, redelivered=True)

    assert value("router_routings_total", outcome="retried", reason="in_flight") == before + 1


def test_a_superseded_routing_counts_as_superseded_not_failed(ctx, make_job):
    superseded_before = value("router_routings_total", outcome="superseded", reason="none")
    failed_before = sum(
        value("router_routings_total", outcome="failed", reason=reason)
        for reason in ("permanent", "retry_window", "poison", "outcome_unknown")
    )
    older = make_job(contact_id="7000011", contact_seq=1)
    make_job(contact_id="7000011", contact_seq=2)  # accepted by the ingress: the contact's latest

    process(older, ctx)

    assert value("router_routings_total", outcome="superseded", reason="none") == superseded_before + 1
    assert (
        sum(
            value("router_routings_total", outcome="failed", reason=reason)
            for reason in ("permanent", "retry_window", "poison", "outcome_unknown")
        )
        == failed_before
    )


def test_a_poison_message_counts_as_failed_poison(ctx, make_job):
    before = value("router_routings_total", outcome="failed", reason="poison")
    job = make_job()
    ctx.redis.set(redis_keys.routing_deliveries(job.routing_id, 0), MAX_REDELIVERIES)

    process(job, ctx, redelivered=True)

    assert value("router_routings_total", outcome="failed", reason="poison") == before + 1


def test_a_duplicate_delivery_of_a_finished_routing_counts_nothing_new(ctx, make_job):
    job = make_job()
    process(job, ctx)
    before = value("router_routings_total", outcome="routed", reason="none")

    process(job, ctx)

    assert value("router_routings_total", outcome="routed", reason="none") == before


# ---------------------------------------------------------------- the CXone client


def test_cxone_calls_are_timed_by_endpoint_and_status_and_token_fetches_counted(http):
    FakeCXoneAuth(http)
    url = API_URL + ROUTING_QUEUE_PATH.format(contact_id="1234567")
    http.add(responses.PUT, url, status=204)
    http.add(responses.PUT, url, status=429, headers={"Retry-After": "3"})
    http.add(responses.PUT, url, body=requests.ReadTimeout("read timed out"))
    shared_redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    client = CXoneClient(make_settings(), shared_redis)
    name = "router_cxone_request_duration_seconds_count"
    before = {
        status: value(name, endpoint="routing_queue", status=status) for status in ("204", "429", "timeout")
    }
    token_before = value("router_cxone_token_refreshes_total")
    token_calls_before = value(name, endpoint="token", status="200")

    client.route_digital("1234567", 42)
    with pytest.raises(Throttled):
        client.route_digital("1234567", 42)
    shared_redis.delete(redis_keys.CXONE_PAUSE_UNTIL)  # the 3 s pause the 429 asked for, passed
    with pytest.raises(Transient):
        client.route_digital("1234567", 42)

    for status in ("204", "429", "timeout"):
        assert value(name, endpoint="routing_queue", status=status) == before[status] + 1, status
    assert value("router_cxone_token_refreshes_total") == token_before + 1  # one shared token
    assert value(name, endpoint="token", status="200") == token_calls_before + 1


def test_limiter_refusals_are_counted_with_their_wait(http):
    FakeCXoneAuth(http)
    url = API_URL + ROUTING_QUEUE_PATH.format(contact_id="1234567")
    http.add(responses.PUT, url, status=204)
    client = CXoneClient(
        make_settings(cxone_rate_limit_per_minute=1), fakeredis.FakeRedis(server=fakeredis.FakeServer())
    )
    count_before = value("router_cxone_limiter_wait_seconds_count")
    sum_before = value("router_cxone_limiter_wait_seconds_sum")

    client.route_digital("1234567", 42)
    with pytest.raises(RateLimited) as refused:
        client.route_digital("1234567", 42)

    assert value("router_cxone_limiter_wait_seconds_count") == count_before + 1
    assert value("router_cxone_limiter_wait_seconds_sum") - sum_before == pytest.approx(refused.value.wait)


# ---------------------------------------------------------------- gauges read from Redis


def _collect(collector: metrics.RoutingStateCollector) -> dict[str, float]:
    return {sample_.name: sample_.value for family in collector.collect() for sample_ in family.samples}


def test_queue_depth_and_oldest_open_routing_are_read_at_scrape_time():
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    now = 1_700_000_000.0
    collector = metrics.RoutingStateCollector(client, clock=lambda: now)
    assert _collect(collector) == {
        "router_routing_queue_depth": 0,
        "router_open_routings": 0,
        "router_oldest_open_routing_age_seconds": 0,
        "router_routings_waiting_for_slot": 0,
        "router_redis_up": 1,
    }

    client.rpush(ROUTING_QUEUE, "m1", "m2", "m3")
    client.zadd(redis_keys.OPEN_ROUTINGS, {"old": now - 400, "new": now - 5, "w1": now - 3, "w2": now - 2})
    # Two routings wait in the backlog for a call slot: the depth counts them too.
    client.zadd(redis_keys.BACKLOG, {"w1": now - 3, "w2": now - 2})

    assert _collect(collector) == {
        "router_routing_queue_depth": 5,
        "router_open_routings": 4,
        "router_oldest_open_routing_age_seconds": 400,
        "router_routings_waiting_for_slot": 2,
        "router_redis_up": 1,
    }


def test_an_unreachable_redis_gives_redis_up_0_not_a_failed_scrape():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = redis.Redis(port=port, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    assert _collect(metrics.RoutingStateCollector(client)) == {"router_redis_up": 0}


# ---------------------------------------------------------------- the metrics server


@pytest.fixture
def fresh_worker_metrics(monkeypatch) -> Iterator[list]:
    """Lets start_metrics_server run again in this process; stops what it started."""
    monkeypatch.setattr(observability, "_metrics_started", False)
    before = set(metrics.WORKER_REGISTRY._collector_to_names)  # noqa: SLF001
    servers: list = []
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()
    for collector in set(metrics.WORKER_REGISTRY._collector_to_names) - before:  # noqa: SLF001
        metrics.WORKER_REGISTRY.unregister(collector)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_worker_serves_its_metrics_on_the_configured_port(fresh_worker_metrics):
    port = _free_port()
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    client.rpush(ROUTING_QUEUE, "m1")
    server = observability.start_metrics_server(Settings(worker_metrics_port=port), client)
    assert server is not None
    fresh_worker_metrics.append(server)

    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text

    samples = parse_samples(text)
    assert sample(samples, "router_routing_queue_depth") == 1
    assert sample(samples, "router_redis_up") == 1
    assert "# TYPE router_routings_total counter" in text
    assert "router_cxone_request_duration_seconds" in text
    assert "router_webhooks" not in text  # the ingress's metrics are not the worker's
    # Started once per process: a second call does nothing.
    assert observability.start_metrics_server(Settings(worker_metrics_port=port), client) is None


def test_a_taken_port_is_a_warning_and_the_worker_runs_on(fresh_worker_metrics, caplog):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # noqa: S104 - the server binds all addresses too
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.WARNING, logger="worker.observability"):
            server = observability.start_metrics_server(
                Settings(worker_metrics_port=port), fakeredis.FakeRedis()
            )
    assert server is None
    assert f"port {port} is unavailable" in caplog.text


def test_port_0_turns_the_server_off(fresh_worker_metrics):
    assert observability.start_metrics_server(Settings(worker_metrics_port=0)) is None


def test_worker_metrics_port_setting():
    assert Settings.from_env({}).worker_metrics_port == 9808
    assert Settings.from_env({"WORKER_METRICS_PORT": "0"}).worker_metrics_port == 0
    with pytest.raises(ValueError, match="WORKER_METRICS_PORT"):
        Settings.from_env({"WORKER_METRICS_PORT": "70000"})
