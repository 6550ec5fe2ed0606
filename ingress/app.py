"""The Flask application factory: a table of contents of what the ingress is made of."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis
from flask import Flask

from ingress.errors import register_error_handlers
from ingress.observability import register_metrics
from ingress.views import blueprint
from ingress.waiting import OutcomeWaiter
from shared.demo_secrets import require_no_demo_secrets
from shared.redis_connection import ReplicaAck
from shared.redis_connection import redis_client as connect_redis
from shared.routing.publisher import RoutingPublisher
from shared.routing.records import RoutingStatusStore
from shared.routing.table import RoutingTable
from shared.settings import Settings, load_settings
from shared.task_envelope import TaskEnvelopes
from shared.task_queue import ROUTE_CONTACT_TASK, ROUTING_QUEUE, make_celery


@dataclass(frozen=True)
class Ingress:
    """What the views need, kept in ``app.extensions["ingress"]``."""

    settings: Settings
    routing_table: RoutingTable
    redis: redis.Redis
    store: RoutingStatusStore
    publisher: RoutingPublisher
    #: Wakes webhooks that wait for their routing's outcome (``?wait=``); reads records with short
    #: timeouts, so a Redis that stops answering never holds a webhook past its wait.
    waiter: OutcomeWaiter
    waiting_store: RoutingStatusStore


def create_app(
    settings: Settings | None = None,
    *,
    routing_table: RoutingTable | None = None,
    redis_client: redis.Redis | None = None,
    send_task: Callable[[dict], None] | None = None,
) -> Flask:
    """Build the ingress. Tests pass settings, a fake Redis and a recording ``send_task``.

    Refuses to start (``SettingsError``/``RoutingTableError``) without webhook keys, unless auth is
    explicitly disabled, with a demo secret while CXone is a real tenant, or with an invalid
    routing table.
    """
    settings = settings or load_settings()
    settings.require_webhook_auth()
    require_no_demo_secrets(settings)
    table = routing_table or RoutingTable.load(settings.routes_file)
    # The waiter's own connections: short timeouts (a wait ends on time even if Redis hangs).
    waiting_redis = (
        redis_client
        if redis_client is not None
        else connect_redis(settings, socket_timeout=0.5, socket_connect_timeout=0.5, retries=0)
    )
    # The read timeout outlasts a WAIT for the replicas, which answers within its own timeout.
    redis_client = redis_client or connect_redis(
        settings,
        socket_timeout=max(2.0, settings.redis_replica_ack_timeout_seconds + 1),
        socket_connect_timeout=1,
    )
    envelopes = None
    if send_task is None:
        celery = make_celery(settings)
        # Each webhook's task is queued by the publisher's script that writes its record, in one
        # round trip (shared/task_envelope.py); send_task is what replays use, not the ingress.
        envelopes = TaskEnvelopes(celery)

        def send_task(message: dict) -> None:
            celery.send_task(ROUTE_CONTACT_TASK, args=[message], queue=ROUTING_QUEUE)

    store = RoutingStatusStore(redis_client, settings.routing_status_ttl_seconds)
    app = Flask("ingress")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]  # DefaultJSONProvider's setting
    app.extensions["ingress"] = Ingress(
        settings=settings,
        routing_table=table,
        redis=redis_client,
        store=store,
        publisher=RoutingPublisher(
            redis_client,
            store,
            send_task,
            settings.dedupe_window_seconds,
            settings.dedupe_contact_intent_seconds,
            envelopes=envelopes,
            # 202 only once REDIS_MIN_REPLICAS_ACK replicas hold the routing (none: no WAIT).
            confirm=ReplicaAck.from_settings(redis_client, settings).confirm,
        ),
        waiter=OutcomeWaiter(waiting_redis),
        waiting_store=RoutingStatusStore(waiting_redis, settings.routing_status_ttl_seconds),
    )
    register_error_handlers(app)
    app.register_blueprint(blueprint)
    register_metrics(app, settings)
    return app
