"""The routing task's message, built here so the ingress can write it in the same Redis round trip
as the routing record.

``celery.send_task`` costs the ingress about a third of its CPU per webhook: kombu acquires a
connection and producer from its pools, runs its publish retry wrapper, then sends ``LPUSH`` and the
``task-sent`` event's ``PUBLISH`` as two more round trips after the duplicate claim and before the
record's. :class:`TaskEnvelopes` produces the very bytes those two commands carry, from Celery's
own message builder (``app.amqp.create_task_message``: protocol 2 headers, body and the sent
event's fields) wrapped the way kombu's Redis transport wraps them (``Channel.prepare_message`` and
``_inplace_augment_message`` in ``kombu/transport/virtual/base.py``; ``_put`` and ``_put_fanout``
in ``kombu/transport/redis.py``). So the message is an ordinary Celery message: any worker
consumes it, acks it, restores it after the visibility timeout, and Flower sees its ``task-sent``
event (which it needs to show, and revoke, a routing no worker has taken yet).

What kombu would add besides, and why it is not needed: the producer declares the queue on first
publish (on Redis, a binding set that only named exchanges read: this message goes through the
anonymous exchange, straight to the ``routing`` list, as ``send_task`` sends it), and the event's
fanout exchange has nothing to declare on Redis.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass

from celery import Celery
from celery.events import Event
from celery.utils.nodenames import anon_nodename
from celery.utils.time import utcoffset
from kombu.utils.url import url_to_parts

from shared.task_queue import ROUTE_CONTACT_TASK, ROUTING_QUEUE

#: kombu's delivery modes: the task persistent (2), events transient (1).
_PERSISTENT, _TRANSIENT = 2, 1
#: The exchange Celery's events go to (``event_exchange``'s default) and the sent event's routing key.
_EVENT_EXCHANGE, _SENT_ROUTING_KEY = "celeryev", "task.sent"


@dataclass(frozen=True)
class TaskEnvelope:
    """One routing task as Redis commands: ``LPUSH queue payload`` and, when the ``task-sent``
    event is on, ``PUBLISH event_channel event`` (both empty otherwise)."""

    task_id: str
    queue: str
    payload: str
    event_channel: str
    event: str


class TaskEnvelopes:
    """Builds :class:`TaskEnvelope` s for ``router.route_contact`` with ``celery``'s settings."""

    def __init__(self, celery: Celery):
        self.celery = celery
        conf = celery.conf
        self.sent_event = bool(conf.task_send_sent_event)
        # The event's Redis channel, as kombu names it: "/<db>." + exchange + "/" + routing key
        # (fanout_prefix and fanout_patterns, both on by default and not changed by this app).
        db = _db_of(conf.broker_url)
        self.event_channel = f"/{db}.{_EVENT_EXCHANGE}/{_SENT_ROUTING_KEY}" if self.sent_event else ""
        self.hostname = anon_nodename()  # what Celery's EventDispatcher calls a publisher
        self.pid = os.getpid()

    def build(self, message: dict) -> TaskEnvelope:
        """The task carrying ``message`` (its only argument), ready to be written to Redis."""
        celery = self.celery
        task_id = str(uuid.uuid4())
        headers, properties, body, sent = celery.amqp.create_task_message(
            task_id,
            ROUTE_CONTACT_TASK,
            [message],
            {},
            reply_to=celery.thread_oid,
            create_sent_event=self.sent_event,
            ignore_result=None,  # what send_task passes when the caller says nothing
            argsrepr=self._argsrepr(message),
            kwargsrepr="{}",
        )
        payload = {
            "body": _base64(json.dumps(body)),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                **properties,
                "delivery_mode": _PERSISTENT,
                # The anonymous exchange: the routing key is the queue (what send_task does for a
                # direct queue), so a restore after the visibility timeout finds it without bindings.
                "delivery_info": {"exchange": "", "routing_key": ROUTING_QUEUE},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        event = ""
        if sent is not None:
            fields = {**sent, "queue": ROUTING_QUEUE, "exchange": "", "routing_key": ROUTING_QUEUE}
            event = json.dumps(
                {
                    "body": _base64(json.dumps(self._event(fields))),
                    "content-encoding": "utf-8",
                    "content-type": "application/json",
                    "headers": {"hostname": self.hostname},
                    "properties": {
                        "delivery_mode": _TRANSIENT,
                        "delivery_info": {"exchange": _EVENT_EXCHANGE, "routing_key": _SENT_ROUTING_KEY},
                        "priority": 0,
                        "body_encoding": "base64",
                        "delivery_tag": str(uuid.uuid4()),
                    },
                }
            )
        return TaskEnvelope(task_id, ROUTING_QUEUE, json.dumps(payload), self.event_channel, event)

    def _argsrepr(self, message: dict) -> str:
        """The task's arguments as Flower shows (and searches) them: what Celery's ``saferepr``
        gives for this plain JSON, at a tenth of its cost (it was 6 % of the ingress's CPU), cut at
        the same length."""
        text = repr([message])
        limit = self.celery.amqp.argsrepr_maxsize
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def _event(self, fields: dict) -> dict:
        """The ``task-sent`` event as Celery's EventDispatcher makes it (its Lamport clock too)."""
        return Event(
            "task-sent",
            hostname=self.hostname,
            utcoffset=utcoffset(),
            pid=self.pid,
            clock=self.celery.clock.forward(),
            **fields,
        )


def _base64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _db_of(broker_url: str) -> int:
    """The Redis database of ``broker_url`` as kombu reads it (its "virtual host"; 0 when absent).
    A Sentinel broker URL lists every sentinel, ``;``-separated, each with the same database."""
    virtual_host = url_to_parts(broker_url.split(";")[0]).path or ""
    virtual_host = virtual_host.strip("/")
    return int(virtual_host) if virtual_host else 0
