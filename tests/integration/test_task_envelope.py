"""The ingress's hand-built task message (shared/task_envelope.py) against what Celery itself
writes to Redis for the same task: the same command, the same key or channel, the same envelope and
body, only the ids, tags, clock and timestamp differ. (That real workers consume it and Flower sees
its task-sent event: every pipeline test, and tests/integration/test_flower.py.)"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
import redis

from shared.settings import load_settings
from shared.task_envelope import TaskEnvelopes
from shared.task_queue import ROUTE_CONTACT_TASK, ROUTING_QUEUE, make_celery

#: What differs between two publishes of the same task.
PER_MESSAGE = {"id", "root_id", "correlation_id", "delivery_tag", "uuid", "clock", "timestamp"}


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    real = redis.Redis.from_url(redis_url, socket_timeout=10)
    real.flushdb()
    yield real
    real.flushdb()
    real.close()


def _opened(raw: bytes) -> dict:
    """A kombu envelope with its base64 body decoded (a JSON body for the task and the event alike)."""
    envelope = json.loads(raw)
    envelope["body"] = json.loads(base64.b64decode(envelope["body"]))
    return envelope


def _without_per_message(value):
    if isinstance(value, dict):
        return {k: _without_per_message(v) for k, v in value.items() if k not in PER_MESSAGE}
    if isinstance(value, list):
        return [_without_per_message(v) for v in value]
    return value


def test_the_envelope_is_what_celery_itself_writes(client, redis_url):
    celery = make_celery(load_settings({"REDIS_URL": redis_url}))
    message = {"routing_id": "r-1", "contact_id": "7000001", "contact_seq": 3, "received_at": 1.5}
    pubsub = client.pubsub()
    pubsub.psubscribe("*")
    assert pubsub.get_message(timeout=5)["type"] == "psubscribe"

    celery.send_task(ROUTE_CONTACT_TASK, args=[message], queue=ROUTING_QUEUE)
    envelope = TaskEnvelopes(celery).build(message)
    client.lpush(envelope.queue, envelope.payload)
    client.publish(envelope.event_channel, envelope.event)

    ours, celerys = (_opened(raw) for raw in client.lrange(ROUTING_QUEUE, 0, -1))  # LPUSH: newest first
    assert _without_per_message(ours) == _without_per_message(celerys)
    assert ours["headers"]["id"] == envelope.task_id != celerys["headers"]["id"]
    events = [pubsub.get_message(timeout=5) for _ in range(2)]
    assert [e["channel"] for e in events] == [envelope.event_channel.encode()] * 2
    theirs_event, our_event = (_opened(e["data"]) for e in events)
    assert _without_per_message(our_event) == _without_per_message(theirs_event)
    assert our_event["body"]["type"] == "task-sent" and our_event["body"]["uuid"] == envelope.task_id
    celery.close()
