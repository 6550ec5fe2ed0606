"""kombu's Redis transport with one crash fixed and one cost cut, used as the Celery broker transport.

When the worker loses Redis, kombu closes the channel and detaches it from its connection. Work
still in flight on that channel then touches it: restoring unacked messages on close, or a task
that finishes after the reconnect acking its message. In kombu 5.7 both end in
``AttributeError: 'NoneType' object has no attribute 'hostname'`` (or ``'client'``), which Celery
treats as unrecoverable: the whole worker exits (seen in the Redis-restart fault test), and every
later routing waits for a worker that is gone.

A detached channel now raises redis' ``ConnectionError`` instead: the error kombu and Celery already
handle for a lost broker ("Couldn't ack", restore skipped) while the worker reconnects. Nothing is
lost by it: those messages are still in Redis's ``unacked`` hash, the visibility timeout hands them
out again, and the routing's own state check makes the second delivery a no-op.
"""

from __future__ import annotations

import redis
from kombu.transport import redis as kombu_redis


class _ChannelFixes:
    """What both channels below add to kombu's: ConnectionError once detached, and one redis-py
    client for the publishes."""

    #: The client :meth:`_create_client` hands out for publishes, and the pool it was made on.
    _publish_client: redis.Redis | None = None

    def _connparams(self, asynchronous=False):
        transport = self.connection  # type: ignore[attr-defined]
        if transport is None or transport.client is None:
            raise redis.exceptions.ConnectionError("broker channel was closed (connection lost)")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]

    def _create_client(self, asynchronous=False):
        """kombu makes a new ``redis.Redis`` for every publish (``conn_or_acquire``), task events
        included: its constructor alone was 8 % of a worker's CPU under load. A client is only a
        handle on the channel's connection pool, safe to share between threads, so one is kept
        for as long as that pool lives (a reconnect makes a new pool, and so a new client)."""
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        pool = self.pool  # type: ignore[attr-defined]
        client = self._publish_client
        if client is None or client.connection_pool is not pool:
            client = self._publish_client = super()._create_client()  # type: ignore[misc]
        return client


class Channel(_ChannelFixes, kombu_redis.Channel):
    """kombu's Redis channel with the fixes above."""


class SentinelChannel(_ChannelFixes, kombu_redis.SentinelChannel):
    """kombu's Sentinel channel (finds the primary through the sentinels), with the same fixes."""


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the channel above."""

    Channel = Channel


class SentinelTransport(kombu_redis.SentinelTransport):
    """kombu's Sentinel transport with the channel above (REDIS_SENTINELS is set)."""

    Channel = SentinelChannel


#: Value for Celery's ``broker_transport`` setting (shared/redis_connection.py picks one).
TRANSPORT = "shared.broker_transport:Transport"
SENTINEL_TRANSPORT = "shared.broker_transport:SentinelTransport"
