"""The worker under test: the context a worker builds, on fake Redis and the recording fake CXone."""

from __future__ import annotations

from typing import cast

import fakeredis

from shared.cxone.client import CXoneClient
from shared.settings import Settings
from tests.support.cxone import FakeCXone
from worker.context import WorkerContext


def worker_settings(**overrides) -> Settings:
    """A worker's settings for tests: a 2-minute retry window, short countdowns, records kept an hour."""
    return Settings(
        **{
            "routing_retry_window_seconds": 120,
            "routing_max_countdown_seconds": 10,
            "broker_visibility_timeout_seconds": 30,
            "routing_status_ttl_seconds": 3600,
            "cxone_skill_cache_ttl_seconds": 300,
            **overrides,
        }
    )


def worker_on_fakes(
    settings: Settings, cxone: FakeCXone, redis_client: fakeredis.FakeRedis, *, seed: int
) -> WorkerContext:
    """``WorkerContext.build`` as a worker calls it, with the fakes given and seeded retry jitter."""
    # FakeCXone is a stand-in, not a subclass: it has the CXoneClient methods the worker calls (duck
    # typing), which is all WorkerContext needs; the product names no narrower type for it to match.
    context = WorkerContext.build(settings, redis_client=redis_client, cxone=cast(CXoneClient, cxone))
    context.rng.seed(seed)  # the same jitter on every run
    return context
