"""countdown_for: every retry delay stays within ROUTING_MAX_COUNTDOWN_SECONDS (visibility timeout)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.cxone.errors import CredentialsRejected, PausedByCXone, RateLimited, Throttled, Transient
from shared.settings import Settings
from worker.routing import countdown_for


def countdown_context(cap: int, seed: int = 0) -> SimpleNamespace:
    """countdown_for reads only the settings and the random source of a WorkerContext."""
    return SimpleNamespace(settings=Settings(routing_max_countdown_seconds=cap), rng=random.Random(seed))


waits = st.floats(min_value=0, max_value=1e9, allow_nan=False)
errors = st.one_of(
    st.builds(lambda: Transient("502", status=502)),
    st.builds(lambda: Transient("refused", not_delivered=True)),
    st.builds(lambda w: Throttled("429", retry_after=w), waits),
    st.builds(lambda: Throttled("429", retry_after=None)),
    st.builds(RateLimited, waits),
    st.builds(PausedByCXone, waits),
    st.builds(lambda w: CredentialsRejected("rejected", error="invalid_grant", retry_after=w), waits),
)


@settings(max_examples=300, deadline=None, database=None)
@given(
    error=errors,
    failures=st.integers(min_value=0, max_value=10**6),
    cap=st.integers(min_value=1, max_value=3600),
    seed=st.integers(0, 2**32),
)
def test_countdowns_never_exceed_the_cap(error, failures, cap, seed):
    countdown = countdown_for(error, failures, countdown_context(cap, seed))

    assert 0 < countdown <= cap


@pytest.mark.parametrize("failures", [1, 1024, 1025, 5000])
def test_backoff_survives_very_many_failures(failures):
    """A long ROUTING_RETRY_WINDOW_SECONDS allows thousands of attempts; none may crash."""
    assert countdown_for(Transient("502"), failures, countdown_context(30)) <= 30


@pytest.mark.parametrize("seed", range(20))
def test_throttled_retry_after_gets_positive_jitter(seed):
    countdown = countdown_for(Throttled("429", retry_after=7), 1, countdown_context(30, seed))

    assert 7 < countdown <= 8


@pytest.mark.parametrize("seed", range(20))
def test_rate_limited_never_earlier_than_the_limiter_says(seed):
    countdown = countdown_for(RateLimited(2.5), 0, countdown_context(30, seed))

    assert 2.5 < countdown <= 3.0


@pytest.mark.parametrize(
    ("failures", "low", "high"),
    [
        (0, 0.5, 1),
        (1, 0.5, 1),
        (2, 1, 2),
        (3, 2, 4),
        (4, 4, 8),
        (5, 8, 16),
        (6, 15, 30),
        (12, 15, 30),
    ],
)
def test_backoff_is_exponential_with_equal_jitter(failures, low, high):
    for seed in range(10):
        countdown = countdown_for(Transient("502"), failures, countdown_context(30, seed))
        assert low <= countdown <= high, (failures, seed, countdown)
