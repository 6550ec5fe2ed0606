"""Fixtures for the worker: the recording fake CXone, and the WorkerContext a worker builds on it."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from shared.routing.job import RoutingJob, new_routing_id
from shared.settings import Settings
from tests.support.cxone import FakeCXone
from tests.support.worker import worker_on_fakes, worker_settings
from worker.context import WorkerContext


@pytest.fixture
def settings() -> Settings:
    return worker_settings()


@pytest.fixture
def cxone() -> FakeCXone:
    return FakeCXone()


@pytest.fixture
def ctx(settings, fake_redis, cxone) -> WorkerContext:
    """The context a worker builds for itself, on fake Redis and the recording fake CXone."""
    return worker_on_fakes(settings, cxone, fake_redis, seed=20240611)


@pytest.fixture
def make_job(ctx) -> Callable[..., RoutingJob]:
    """A job as the ingress makes it, with its ``queued`` record already stored."""

    def make(mode: str = "digital", *, store: bool = True, **overrides) -> RoutingJob:
        defaults = {
            "digital": {
                "contact_id": "728471935",
                "intent": "billing_dispute",
                "queue_name": "Billing Disputes",
                "channel": "webchat3",
            },
            "voice": {
                "contact_id": "700111223",
                "intent": "claims",
                "queue_name": "Claims",
                "channel": "voiceGateway2",
            },
        }[mode]
        job = RoutingJob(
            **{
                "routing_id": new_routing_id(),
                "mode": mode,
                "score": 0.8,
                "received_at": time.time(),
                **defaults,
                **overrides,
            }
        )
        if store:
            ctx.store.create(job)
        return job

    return make
