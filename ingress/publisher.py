"""Hands a routing to the workers: write its record, then publish the task.

The record is written first so that a published task always has one; if publishing fails, the
record is removed again and the caller answers 503, so a webhook is never answered 2xx for a
routing that was not stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from kombu.exceptions import OperationalError

from shared.routing_job import RoutingJob
from shared.routing_status import RoutingStatusStore

log = logging.getLogger(__name__)

#: Errors that mean "Redis (the broker) is unreachable", from redis-py or from kombu.
BROKER_ERRORS = (redis.RedisError, OperationalError, OSError)


class EnqueueFailed(RuntimeError):
    """The routing could not be stored; nothing was enqueued."""


class RoutingPublisher:
    """Stores the routing record and publishes the task message with ``send``."""

    def __init__(self, store: RoutingStatusStore, send: Callable[[dict], None]):
        self.store = store
        self.send = send

    def publish(self, job: RoutingJob) -> None:
        """Store and enqueue ``job``; raise :class:`EnqueueFailed` if either step fails."""
        try:
            self.store.create(job)
        except BROKER_ERRORS as exc:
            raise EnqueueFailed(f"cannot write the routing record: {exc.__class__.__name__}") from exc
        try:
            self.send(job.to_message())
        except BROKER_ERRORS as exc:
            try:
                self.store.discard(job.routing_id)
            except BROKER_ERRORS:
                log.warning("routing record left behind after a failed publish",
                            extra={"routing_id": job.routing_id})
            raise EnqueueFailed(f"cannot publish the task: {exc.__class__.__name__}") from exc
