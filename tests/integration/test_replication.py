"""A primary with a replica, for real: the ingress's WAIT (REDIS_MIN_REPLICAS_ACK), the limiter's
cautious start on a promoted replica, and clients that find the primary through Sentinel.

fakeredis has no replication (nor WAIT, nor INFO): these run on private redis-servers.
"""

from __future__ import annotations

import dataclasses
import time

import pytest
import redis

from ingress.app import create_app
from shared import redis_keys
from shared.cxone.rate_limiter import CallLimiter, window_ms
from shared.redis_connection import NotEnoughReplicas, ReplicaAck, redis_client
from shared.routing.backlog import Backlog
from shared.routing.table import RoutingTable
from shared.settings import Settings
from tests.integration.stack import PrivateRedis, ReplicatedRedis, wait_until
from tests.support.ingress import API_KEYS, ROUTES_YAML, WEBHOOK_URL, ingress_settings, load_payload


@pytest.fixture
def pair(tmp_path):
    """A primary and its replica, no sentinels."""
    topology = ReplicatedRedis(tmp_path)
    topology.start(with_sentinels=False)
    yield topology
    topology.kill()


def client_of(server: PrivateRedis) -> redis.Redis:
    return redis.Redis(port=server.port, socket_timeout=10, socket_connect_timeout=5)


def test_the_replica_confirms_the_writes_and_a_missing_replica_does_not(pair):
    primary = client_of(pair.primary)
    ack = ReplicaAck(primary, required=1, timeout_seconds=1.0)
    primary.set("k", "v")
    assert ack.confirm() == 1
    assert client_of(pair.replica).get(redis_keys.REPLICA_ACK_MARKER) is not None

    pair.replica.kill()
    wait_until(
        lambda: client_of(pair.primary).info("replication")["connected_slaves"] == 0, 60, what="no replica"
    )
    started = time.monotonic()
    with pytest.raises(NotEnoughReplicas, match="0 of the 1 replica"):
        ack.confirm()
    assert time.monotonic() - started < 5  # WAIT's own timeout, never a hang


def test_none_required_asks_nothing():
    class Untouchable:
        def pipeline(self, **_):
            raise AssertionError("no WAIT when REDIS_MIN_REPLICAS_ACK=0")

    assert ReplicaAck(Untouchable(), required=0, timeout_seconds=1).confirm() == 0


def test_the_ingress_answers_202_only_for_a_routing_the_replica_holds(pair):
    sent: list[dict] = []
    settings = dataclasses.replace(
        ingress_settings(),
        redis_url=pair.primary.url,
        redis_min_replicas_ack=1,
        redis_replica_ack_timeout_seconds=2.0,  # generous: the replica shares a busy machine
    )
    app = create_app(
        settings, routing_table=RoutingTable.parse(ROUTES_YAML, source="t"), send_task=sent.append
    )
    web = app.test_client()
    body = {**load_payload("seed-intents"), "inputId": "input-kept"}
    headers = {"X-API-Key": API_KEYS[0]}

    first = web.post(WEBHOOK_URL, json=body, headers=headers)
    assert first.status_code == 202
    routing_id = first.get_json()["routingId"]
    assert client_of(pair.replica).exists(redis_keys.routing(routing_id))

    pair.replica.kill()
    unconfirmed = web.post(WEBHOOK_URL, json={**body, "inputId": "input-unconfirmed"}, headers=headers)
    assert unconfirmed.status_code == 503
    assert unconfirmed.headers["Retry-After"]
    assert len(sent) == 2  # queued on the primary all the same

    pair.replica.start()
    wait_until(pair.replica_in_sync, 60, what="the replica back in sync")
    retry = web.post(WEBHOOK_URL, json={**body, "inputId": "input-unconfirmed"}, headers=headers)
    assert retry.status_code == 202
    assert retry.get_json()["duplicate"] is True
    assert retry.get_json()["routingId"] == sent[1]["routing_id"]
    assert len(sent) == 2  # the retry is the same routing, not a second one


def test_the_limiter_on_a_promoted_replica_grants_nothing_until_a_window_has_passed(pair):
    limit = 5
    on_primary = CallLimiter(client_of(pair.primary), redis_keys.CXONE_RATE_LIMIT, limit, window_seconds=60)
    assert on_primary.try_acquire() == 0.0
    assert ReplicaAck(client_of(pair.primary), 1, 2.0).confirm() == 1

    promoted = client_of(pair.replica)
    promoted.execute_command("REPLICAOF", "NO", "ONE")  # what Sentinel does to the replica
    on_replica = CallLimiter(promoted, redis_keys.CXONE_RATE_LIMIT, limit, window_seconds=60)

    # Only one grant of five survives in its log, but grants since may have been lost with the
    # old primary: it waits out a whole window (60 s + the 1 s guard) rather than trust the log.
    wait = on_replica.try_acquire()
    assert 55 < wait <= 61
    assert 55 < on_replica.try_acquire() <= 61  # and keeps waiting: no grant slipped through
    # The backlog's dispatcher grants from the same log in its own script: it waits the same way.
    promoted.zadd(redis_keys.BACKLOG, {"waiting-routing": 1.0})
    dispatch = Backlog(promoted, 3600).dispatch_next(limit, window_ms(60, 1))
    assert dispatch.routing_id is None and 55 < dispatch.wait <= 61
    assert promoted.zcard(redis_keys.BACKLOG) == 1  # still in line, no slot taken for it


def test_the_limiter_after_a_restart_of_the_same_server_starts_normally(tmp_path):
    server = PrivateRedis(tmp_path)  # append-only, fsync always: its own log survives
    server.start()
    try:
        limiter = CallLimiter(client_of(server), redis_keys.CXONE_RATE_LIMIT, 5)
        assert limiter.try_acquire() == 0.0
        server.kill()
        server.start()
        assert CallLimiter(client_of(server), redis_keys.CXONE_RATE_LIMIT, 5).try_acquire() == 0.0
    finally:
        server.kill()


def test_clients_and_the_broker_find_the_primary_through_the_sentinels(tmp_path):
    topology = ReplicatedRedis(tmp_path)
    topology.start()
    try:
        settings = Settings.from_env({**topology.env(db=3), "REDIS_MIN_REPLICAS_ACK": "1"})
        client = redis_client(settings)
        client.set("found", "yes")
        direct = redis.Redis(port=topology.primary.port, db=3)
        assert direct.get("found") == b"yes"
        assert ReplicaAck.from_settings(client, settings).confirm() == 1
        view = topology_check(topology.env(db=3))
        assert view.status == "ok", view.detail
        assert f"primary 'router': 127.0.0.1:{topology.primary.port} per 3/3 sentinel(s)" in view.detail

        from shared.task_queue import make_celery

        app = make_celery(settings)
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=3)
            with connection.Producer() as producer:
                producer.publish({"hello": 1}, routing_key="probe-queue")
        assert direct.llen("probe-queue") == 1
    finally:
        topology.kill()


def topology_check(environ: dict[str, str]):
    from ops.doctor import run_checks

    report = run_checks({"WEBHOOK_AUTH_DISABLED": "true", **environ})
    return next(c for c in report.checks if c.name == "redis topology")


def test_the_doctor_fails_when_more_replicas_are_asked_for_than_are_connected(pair):
    one = topology_check({"REDIS_URL": pair.primary.url, "REDIS_MIN_REPLICAS_ACK": "1"})
    assert one.status == "ok", one.detail
    assert f"1 replica(s): 127.0.0.1:{pair.replica.port} online, lag " in one.detail
    assert "bytes behind" in one.detail

    two = topology_check({"REDIS_URL": pair.primary.url, "REDIS_MIN_REPLICAS_ACK": "2"})
    assert two.status == "fail"
    assert "REDIS_MIN_REPLICAS_ACK=2 but 1 replica(s) connected" in two.detail

    on_the_replica = topology_check({"REDIS_URL": pair.replica.url})
    assert on_the_replica.status == "fail"
    assert "the server is a slave, not the primary" in on_the_replica.detail
