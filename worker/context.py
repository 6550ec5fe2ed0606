"""What a worker process needs to route contacts, built once per process on first use.

Built lazily (not at import) so a prefork child builds its own Redis connections and HTTP session
after the fork rather than sharing the parent's sockets.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from functools import cached_property

import redis

from shared.cxone.client import CXoneClient
from shared.cxone.queue_directory import QueueDirectory
from shared.cxone.skill_activity import SkillActivityCache
from shared.redis_connection import ReplicaAck
from shared.redis_connection import redis_client as redis_client_for
from shared.routing.backlog import Backlog
from shared.routing.latest import LatestRoutings
from shared.routing.records import RoutingStatusStore
from shared.settings import Settings, load_settings


@dataclass
class WorkerContext:
    """Settings, Redis, the routing records, the CXone client and the queue directory (and, derived
    from them, the contacts' latest routings)."""

    settings: Settings
    redis: redis.Redis
    store: RoutingStatusStore
    client: CXoneClient
    directory: QueueDirectory
    rng: random.Random

    @cached_property
    def latest(self) -> LatestRoutings:
        """Each contact's latest routing: which of a contact's routings may still move it."""
        return LatestRoutings(self.redis, self.settings.routing_status_ttl_seconds)

    @cached_property
    def replica_ack(self) -> ReplicaAck:
        """``WAIT`` for REDIS_MIN_REPLICAS_ACK replicas (a no-op at 0): a CXone call's marker must
        be on the replicas before the call, so a failover never makes a routing forget its call."""
        return ReplicaAck.from_settings(self.redis, self.settings)

    @cached_property
    def backlog(self) -> Backlog:
        """The routings waiting in Redis for a CXone call slot."""
        return Backlog(self.redis, self.settings.routing_status_ttl_seconds)

    @cached_property
    def activity(self) -> SkillActivityCache:
        """Every skill's live state, shared by the workers (for overflow decisions)."""
        return SkillActivityCache(self.client, self.redis, self.settings.cxone_activity_ttl_seconds)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        redis_client: redis.Redis | None = None,
        cxone: CXoneClient | None = None,
    ) -> WorkerContext:
        """Wire the worker's parts from ``settings``.

        A worker passes nothing; tests pass their own Redis client (fakeredis) and CXone client, and
        get the rest wired exactly as a worker does.
        """
        client = redis_client
        if client is None:
            client = redis_client_for(
                settings,
                socket_timeout=max(5.0, settings.redis_replica_ack_timeout_seconds + 1),
                # one quick retry: a connection dropped by a failover reconnects to the new primary
                retries=1,
                socket_connect_timeout=2,
                health_check_interval=10,
                max_connections=settings.worker_concurrency * 2 + 8,
            )
        if cxone is None:
            cxone = CXoneClient(settings, client)
        return cls(
            settings=settings,
            redis=client,
            store=RoutingStatusStore(client, settings.routing_status_ttl_seconds),
            client=cxone,
            directory=QueueDirectory(cxone, client, settings.cxone_skill_cache_ttl_seconds),
            rng=random.Random(),  # noqa: S311 - jitter, not security
        )


_context: WorkerContext | None = None
_context_lock = threading.Lock()


def worker_context() -> WorkerContext:
    """This process's context (built from the environment on first call)."""
    global _context
    with _context_lock:
        if _context is None:
            settings = load_settings()
            settings.require_cxone_credentials()
            settings.require_trusted_cxone_urls()
            _context = WorkerContext.build(settings)
        return _context


def set_worker_context(context: WorkerContext | None) -> None:
    """Install a context explicitly (tests, or an embedding application)."""
    global _context
    with _context_lock:
        _context = context
