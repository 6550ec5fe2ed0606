"""The shared CXone token: one request for many workers, refresh at the margin, no deadlock.

Several ``CXoneClient`` instances, each with its own connection to ONE ``fakeredis.FakeServer``,
stand for several worker processes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import fakeredis
import pytest
import responses

from shared import redis_keys
from shared.cxone import client as client_module
from shared.cxone.client import CXoneClient, Token
from tests.support.clock import FakeClock
from tests.support.cxone import FakeCXoneAuth, make_settings


def workers(server: fakeredis.FakeServer, count: int, **settings: object) -> list[CXoneClient]:
    return [CXoneClient(make_settings(**settings), fakeredis.FakeRedis(server=server)) for _ in range(count)]


def call_together(clients: list[CXoneClient], threads_per_client: int) -> list[Token]:
    """Every thread calls ``token()`` at the same moment; return what each one got."""
    tokens: list[Token] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(clients) * threads_per_client)

    def run(client: CXoneClient) -> None:
        barrier.wait()
        try:
            tokens.append(client.token())
        except BaseException as exc:  # reported by the assertion below, in the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(client,)) for client in clients for _ in range(threads_per_client)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)  # a safety net against a deadlock, not a speed check
    assert errors == []
    assert len(tokens) == len(threads)
    return tokens


def test_many_workers_missing_the_cache_together_make_one_token_request(
    http: responses.RequestsMock, redis_server: fakeredis.FakeServer
) -> None:
    auth = FakeCXoneAuth(http, delay=0.3)  # slow token endpoint: everyone else must wait
    lock_ttls: list[int] = []
    probe = fakeredis.FakeRedis(server=redis_server)
    auth.on_request = lambda: lock_ttls.append(probe.pttl(redis_keys.CXONE_TOKEN_LOCK))
    clients = workers(redis_server, 4)

    tokens = call_together(clients, threads_per_client=4)

    assert auth.token_requests == 1
    assert {token.access_token for token in tokens} == {auth.issued[0]}
    assert sum(client.token_requests for client in clients) == 1
    # The lock outlives the slowest token call (connect + read timeout, 0.5 s + 0.5 s here), so
    # a holder that is merely slow is never overtaken by a second one.
    assert lock_ttls and lock_ttls[0] > 1000


def test_the_token_is_reused_until_the_refresh_margin_then_refreshed_once(
    http: responses.RequestsMock, redis_server: fakeredis.FakeServer, clock: FakeClock
) -> None:
    auth = FakeCXoneAuth(http, expires_in=120)
    clients = workers(redis_server, 3, cxone_token_refresh_margin_seconds=30)

    first = clients[0].token()
    clock.advance(89)  # 120 s token, 30 s margin: still 1 s before the refresh point
    assert [client.token() for client in clients] == [first] * 3
    assert auth.token_requests == 1

    # Now inside the margin (25 s of validity left) and past each process's 5 s copy of it.
    clock.advance(6)
    refreshed = call_together(clients, threads_per_client=3)

    assert auth.token_requests == 2
    assert {token.access_token for token in refreshed} == {auth.issued[1]}
    assert refreshed[0].expires_at > first.expires_at
    clock.advance(60)
    assert clients[1].token().access_token == auth.issued[1]
    assert auth.token_requests == 2


def test_a_short_lived_token_is_refreshed_at_half_its_life(
    http: responses.RequestsMock, redis_server: fakeredis.FakeServer, clock: FakeClock
) -> None:
    # expires_in (60) is not above twice the margin (2 x 40): refresh after half of it.
    auth = FakeCXoneAuth(http, expires_in=60)
    (client,) = workers(redis_server, 1, cxone_token_refresh_margin_seconds=40)

    client.token()
    clock.advance(29)
    client.token()
    assert auth.token_requests == 1
    clock.advance(6)  # past the 30 s refresh point and the process's 5 s copy
    assert client.token().access_token == auth.issued[1]
    assert auth.token_requests == 2


def test_a_token_about_to_expire_is_never_handed_out(
    http: responses.RequestsMock, redis_server: fakeredis.FakeServer, fake_redis: fakeredis.FakeRedis
) -> None:
    # Cached without TTL (say, written by an older release) and 2 s from expiry.
    old = Token("old-token", time.time() + 2, "tenant", "https://api.example.test")
    fake_redis.set(redis_keys.CXONE_TOKEN, old.to_json())
    auth = FakeCXoneAuth(http)
    (client,) = workers(redis_server, 1)

    assert client.token().access_token == auth.issued[0]
    assert auth.token_requests == 1


def test_a_lock_left_by_a_crashed_worker_is_waited_out(
    http: responses.RequestsMock, redis_server: fakeredis.FakeServer, fake_redis: fakeredis.FakeRedis
) -> None:
    auth = FakeCXoneAuth(http)
    lock_holders: list[bytes | None] = []
    auth.on_request = lambda: lock_holders.append(fake_redis.get(redis_keys.CXONE_TOKEN_LOCK))
    clients = workers(redis_server, 2, cxone_connect_timeout_seconds=0.1, cxone_read_timeout_seconds=0.1)

    started = time.monotonic()
    # The crashed worker took the lock (with its TTL) and never released it nor wrote a token.
    fake_redis.set(redis_keys.CXONE_TOKEN_LOCK, "crashed-worker-lock-token", px=400)
    tokens = call_together(clients, threads_per_client=2)

    # Nobody took the crashed worker's lock from it: the one token request was made under a new
    # lock, once the old one had expired (and not later than the waiters' patience: no error).
    assert len(lock_holders) == 1 and lock_holders[0] not in (None, b"crashed-worker-lock-token")
    assert time.monotonic() - started >= 0.3
    assert auth.token_requests == 1
    assert {token.access_token for token in tokens} == {auth.issued[0]}
    assert not fake_redis.exists(redis_keys.CXONE_TOKEN_LOCK)


def test_a_process_reuses_its_copy_briefly_and_drops_it_on_401(
    http: responses.RequestsMock, redis_server: fakeredis.FakeServer, clock: FakeClock
) -> None:
    auth = FakeCXoneAuth(http, expires_in=3600)
    (client,) = workers(redis_server, 1)
    first = client.token()
    fakeredis.FakeRedis(server=redis_server).delete(redis_keys.CXONE_TOKEN)
    assert client.token() == first  # within 5 s: no Redis read, no token request
    assert auth.token_requests == 1
    client.drop_token(first)  # what a 401 does
    assert client.token().access_token == auth.issued[1]
    assert auth.token_requests == 2


def test_a_token_rejected_while_this_process_reads_it_is_not_kept(
    http: responses.RequestsMock,
    redis_server: fakeredis.FakeServer,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = FakeCXoneAuth(http)
    (client,) = workers(redis_server, 1)
    first = client.token()
    clock.advance(6)  # past the process's copy: the next call reads Redis again

    # Stands in for get_or_compute: takes and passes on whatever arguments the client gives it.
    def read_then_another_thread_gets_a_401(*args: Any, **kwargs: Any) -> str:
        raw = real_get_or_compute(*args, **kwargs)
        client.drop_token(first)  # another thread's call, answered 401, lands right here
        return raw

    real_get_or_compute = client_module.get_or_compute
    monkeypatch.setattr(client_module, "get_or_compute", read_then_another_thread_gets_a_401)
    assert client.token() == first  # read before the 401: this one call may still use it
    monkeypatch.setattr(client_module, "get_or_compute", real_get_or_compute)

    # The rejected token was not kept for the next 5 s: the next call gets a new one.
    after = client.token()
    assert after != first, "the process reused a token CXone had already rejected"
    assert after.access_token == auth.issued[1]
    assert auth.token_requests == 2
