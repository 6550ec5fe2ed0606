"""Fixtures for the worker: fake Redis, a recording fake CXone client, and the WorkerContext built on them."""

from __future__ import annotations

import time
from collections.abc import Callable

import fakeredis
import pytest

from shared.routing.job import RoutingJob, new_routing_id
from shared.settings import Settings
from worker.context import WorkerContext

#: Exact skill names the fake tenant knows, with a near-miss to prove only exact names match.
SKILLS = {
    "Sales Support": 1100001,
    "Sales Support Overflow": 1100002,
    "Billing Disputes": 1203344,
    "Claims": 1300077,
}


class FakeCXone:
    """Records every call; ``fail_next(method, exc, …)`` makes the next calls of ``method`` raise."""

    timeout = (0.5, 0.5)  # read by QueueDirectory to size its lock

    def __init__(self, skills: dict[str, int] | None = None):
        self.skills = dict(SKILLS if skills is None else skills)
        self.calls: list[tuple] = []
        self._failures: dict[str, list[BaseException]] = {}

    def fail_next(self, method: str, *errors: BaseException) -> None:
        """The next ``len(errors)`` calls of ``method`` raise these, in order."""
        self._failures.setdefault(method, []).extend(errors)

    def _maybe_fail(self, method: str) -> None:
        pending = self._failures.get(method)
        if pending:
            raise pending.pop(0)

    def calls_to(self, method: str) -> list[tuple]:
        return [call[1:] for call in self.calls if call[0] == method]

    # The CXoneClient surface the worker uses.
    def api_base(self) -> str:
        return "https://api-test.example.invalid"

    def token(self):
        self.calls.append(("token",))
        self._maybe_fail("token")
        return "fake-token"

    def search_skills(self, search: str, skip: int = 0, top: int = 100) -> dict:
        self.calls.append(("search_skills", search, skip, top))
        self._maybe_fail("search_skills")
        matches = [
            {"skillId": sid, "skillName": name, "isActive": True}
            for name, sid in self.skills.items()
            if search in name
        ]
        return {"skills": matches[skip : skip + top], "totalRecords": len(matches)}

    def route_digital(self, contact_id: str, skill_id: int) -> None:
        self.calls.append(("route_digital", contact_id, skill_id))
        self._maybe_fail("route_digital")

    def signal(self, contact_id: str, params: list[str]) -> None:
        self.calls.append(("signal", contact_id, list(params)))
        self._maybe_fail("signal")


@pytest.fixture
def settings() -> Settings:
    return Settings(
        routing_retry_window_seconds=120,
        routing_max_countdown_seconds=10,
        broker_visibility_timeout_seconds=30,
        routing_status_ttl_seconds=3600,
        cxone_skill_cache_ttl_seconds=300,
    )


@pytest.fixture
def fake_redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def cxone() -> FakeCXone:
    return FakeCXone()


@pytest.fixture
def ctx(settings, fake_redis, cxone) -> WorkerContext:
    """The context a worker builds for itself, on fake Redis and the recording fake CXone."""
    built = WorkerContext.build(settings, redis_client=fake_redis, cxone=cxone)
    built.rng.seed(20240611)  # the same retry jitter on every run
    return built


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
