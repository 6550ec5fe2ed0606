"""The worker under CXone's pauses: rejected credentials keep routings retrying (never dead-lettered
at once) until the credentials are fixed; a 429's shared pause makes routings come back, refused
again, until it has passed, each countdown within ROUTING_MAX_COUNTDOWN_SECONDS."""

from __future__ import annotations

import pytest

from shared import redis_keys
from shared.cxone.errors import CredentialsRejected, PausedByCXone
from shared.routing.backlog import Parked
from shared.routing.records import RETRYING, ROUTED, WAITING
from tests.support.cxone import SKILLS
from worker import metrics
from worker.routing import RetryLater, process

REJECTED = "CXone rejected the credentials (invalid_grant): check CXONE_ACCESS_KEY_ID/SECRET"


def retried(reason: str) -> float:
    return metrics.ROUTINGS.labels(outcome="retried", reason=reason)._value.get()  # noqa: SLF001


def rejected(retry_after: float) -> CredentialsRejected:
    return CredentialsRejected(REJECTED, error="invalid_grant", retry_after=retry_after, status=400)


def test_rejected_credentials_keep_the_routing_retrying_with_the_reason_shown(ctx, cxone, make_job):
    job = make_job("digital")
    counted = retried("credentials_rejected")
    cxone.fail_next("search_skills", rejected(8.0), rejected(4.0))

    first = process(job, ctx)
    second = process(job, ctx, attempt=1)

    # Back when the shared pause ends (the first routing back makes the one token request).
    assert isinstance(first, RetryLater) and 8.0 < first.countdown <= 9.0
    assert isinstance(second, RetryLater) and 4.0 < second.countdown <= 5.0
    record = ctx.store.get(job.routing_id)
    assert record.state == RETRYING
    assert record.last_error == REJECTED
    assert record.attempts == 2
    assert ctx.store.dead_letter(job.routing_id) is None
    assert retried("credentials_rejected") == counted + 2

    # The operator fixed the credentials: the same routing completes.
    assert process(job, ctx, attempt=2) is None
    assert ctx.store.get(job.routing_id).state == ROUTED


def test_a_long_credentials_pause_still_waits_within_the_countdown_cap(ctx, cxone, make_job):
    job = make_job("digital")
    cxone.fail_next("route_digital", rejected(60.0))

    outcome = process(job, ctx)

    assert outcome.countdown == ctx.settings.routing_max_countdown_seconds


def test_a_voice_signal_refused_for_credentials_may_be_sent_later(ctx, cxone, make_job):
    job = make_job("voice")
    cxone.fail_next("signal", rejected(15.0))

    assert isinstance(process(job, ctx), RetryLater)
    assert not ctx.redis.exists(redis_keys.routing_signal_sent(job.routing_id))  # nothing left CXone

    assert process(job, ctx, attempt=1) is None
    assert len(cxone.calls_to("signal")) == 2  # refused before sending, then sent once
    assert ctx.store.get(job.routing_id).state == ROUTED


@pytest.mark.parametrize("wait", [3.0, 90.0])
def test_cxones_pause_parks_the_routing_in_the_backlog_and_is_no_attempt(ctx, cxone, make_job, wait):
    job = make_job("digital")
    counted = metrics.ROUTINGS.labels(outcome="parked", reason="cxone_pause")._value.get()  # noqa: SLF001
    cxone.fail_next("route_digital", PausedByCXone(wait))

    outcome = process(job, ctx)

    # Not a Celery countdown (held in the worker's memory): it waits in Redis, first in line.
    assert isinstance(outcome, Parked) and outcome.position == 1
    assert ctx.redis.zscore(redis_keys.BACKLOG, job.routing_id) == pytest.approx(job.received_at)
    record = ctx.store.get(job.routing_id)
    assert record.state == WAITING and record.attempts == 0
    assert record.waiting_for == "waiting as CXone asked (429 with Retry-After)"
    assert metrics.ROUTINGS.labels(outcome="parked", reason="cxone_pause")._value.get() == counted + 1  # noqa: SLF001
    assert process(job, ctx, attempt=1) is None
    assert cxone.calls_to("route_digital") == [("728471935", SKILLS["Billing Disputes"])] * 2
