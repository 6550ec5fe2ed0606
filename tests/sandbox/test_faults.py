"""Fault knobs: rate limiting, injected errors, outages, latency; reset, stats and controls."""

from __future__ import annotations

import threading
import time

import requests
from flask.testing import FlaskClient

from cxone_sandbox import SandboxServer, create_app
from cxone_sandbox.state import max_calls_in_any_window, seconds_until_free_slot
from tests.support.clock import FakeClock

from .cxone_calls import CONFIG, SKILLS_PATH, password_grant, routing_path


def statuses(client: FlaskClient, auth: dict[str, str], count: int) -> list[int]:
    """Status codes of `count` skill searches."""
    return [client.get(SKILLS_PATH, headers=auth).status_code for _ in range(count)]


def test_rate_limit_answers_429_with_retry_after(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post("/sandbox/faults", json={"rate_limit_per_minute": 5})
    assert statuses(client, auth, 5) == [200] * 5
    throttled = client.get(SKILLS_PATH, headers=auth)
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    # Auth, discovery and controls are not rate limited.
    assert password_grant(client).status_code == 200
    assert client.get("/.well-known/openid-configuration").status_code == 200
    stats = client.get("/sandbox/stats?summary=1").get_json()
    assert stats["answered_429"] == 1
    assert stats["accepted_api_calls"] == 5
    assert stats["max_calls_in_any_60s"] == 5


def test_rate_limit_without_retry_after(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post("/sandbox/faults", json={"rate_limit_per_minute": 1, "retry_after": False})
    assert statuses(client, auth, 3) == [200, 429, 429]
    throttled = client.get(SKILLS_PATH, headers=auth)
    assert "Retry-After" not in throttled.headers
    assert throttled.get_json()["error"] == "TooManyRequests"


def test_dfo_429_uses_the_dfo_error_body(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post("/sandbox/faults", json={"rate_limit_per_minute": 0})
    response = client.put(routing_path("7000001"), json={"skillId": 1200001}, headers=auth)
    assert response.status_code == 429
    assert response.get_json()["errors"][0]["errorCode"] == "TooManyRequests"


def test_concurrent_callers_never_exceed_the_limit(live_sandbox: SandboxServer) -> None:
    base = live_sandbox.url
    requests.post(f"{base}/sandbox/faults", json={"rate_limit_per_minute": 10}, timeout=30)
    token = requests.post(
        f"{base}/auth/token",
        data={
            "grant_type": "password",
            "username": CONFIG.access_key_id,
            "password": CONFIG.access_key_secret,
        },
        auth=(CONFIG.client_id, CONFIG.client_secret),
        timeout=30,
    ).json()["access_token"]
    results: list[int] = []

    def call() -> None:
        response = requests.get(
            f"{base}{SKILLS_PATH}", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        results.append(response.status_code)

    threads = [threading.Thread(target=call) for _ in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200] * 10 + [429] * 15
    stats = requests.get(f"{base}/sandbox/stats", params={"summary": 1}, timeout=30).json()
    assert stats["max_calls_in_any_60s"] == 10
    assert stats["answered_429"] == 15


def test_sliding_window_arithmetic() -> None:
    times = [0.0, 10.0, 20.0, 59.9, 60.0, 130.0]
    assert max_calls_in_any_window(times) == 4  # 60.0 falls outside the window opened at 0.0
    assert max_calls_in_any_window([]) == 0
    assert seconds_until_free_slot([0.0, 10.0, 20.0], now=30.0, limit=4) is None
    assert seconds_until_free_slot([0.0, 10.0, 20.0], now=30.0, limit=3) == 30
    assert seconds_until_free_slot([0.0, 10.0, 20.0], now=30.0, limit=2) == 40
    assert seconds_until_free_slot([0.0, 10.0, 20.0], now=59.5, limit=3) == 1
    assert seconds_until_free_slot([0.0, 10.0, 20.0], now=60.0, limit=3) is None


def test_error_rate_one_answers_5xx_and_zero_recovers(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post("/sandbox/faults", json={"error_rate": 1})
    codes = statuses(client, auth, 10)
    assert all(code in (500, 502, 503) for code in codes)
    stats = client.get("/sandbox/stats?summary=1").get_json()
    assert stats["answered_5xx"] == 10 and stats["accepted_api_calls"] == 0
    client.post("/sandbox/faults", json={"error_rate": 0})
    assert statuses(client, auth, 1) == [200]


def test_error_injection_replays_with_the_same_seed() -> None:
    sequences = []
    for _ in range(2):
        client = create_app().test_client()
        token = password_grant(client).get_json()["access_token"]
        client.post("/sandbox/faults", json={"error_rate": 0.5, "seed": 7})
        sequences.append(statuses(client, {"Authorization": f"Bearer {token}"}, 20))
    assert sequences[0] == sequences[1]
    assert 200 in sequences[0] and any(code >= 500 for code in sequences[0])


def test_outage_answers_503_then_recovers(
    client: FlaskClient, auth: dict[str, str], clock: FakeClock
) -> None:
    # A long outage on a clock the test moves: no pause of this thread can end it early, and the
    # test does not sleep through it.
    knobs = client.post("/sandbox/faults", json={"outage_seconds": 30}).get_json()
    assert knobs["outage_until"] is not None
    assert statuses(client, auth, 1) == [503]
    assert password_grant(client).status_code == 503
    clock.advance(30)
    assert statuses(client, auth, 1) == [200]
    assert password_grant(client).status_code == 200
    assert client.get("/sandbox/faults").get_json()["outage_until"] is None
    assert client.get("/sandbox/stats").get_json()["answered_5xx"] == 2


def test_latency_delays_api_calls(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post("/sandbox/faults", json={"latency_ms": 100})
    started = time.monotonic()
    assert statuses(client, auth, 1) == [200]
    assert time.monotonic() - started >= 0.1


def test_held_contact_calls_wait_until_released(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post("/sandbox/faults", json={"hold_calls": 1})
    answers: list[int] = []
    held = threading.Thread(
        target=lambda: answers.append(
            client.put(routing_path("7000001"), json={"skillId": 1200001}, headers=auth).status_code
        )
    )
    held.start()
    deadline = time.monotonic() + 10
    while client.get("/sandbox/stats?summary=1").get_json()["held_calls"] != 1:
        assert time.monotonic() < deadline, "the first call was never held"
        time.sleep(0.01)

    # Only the first call is held; skill searches are never held.
    assert statuses(client, auth, 1) == [200]
    assert client.put(routing_path("7000002"), json={"skillId": 1200001}, headers=auth).status_code == 200
    assert answers == [] and client.get("/sandbox/faults").get_json()["hold_calls"] == 0

    client.post("/sandbox/faults", json={"release_held": True})
    held.join(10)

    assert answers == [200]
    stats = client.get("/sandbox/stats").get_json()
    assert (stats["held_calls"], stats["held_calls_total"]) == (0, 1)
    assert list(stats["routings"]) == ["7000002", "7000001"]  # the held call finished last


def test_a_held_answer_comes_after_the_put_was_applied_and_recorded(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    """``hold_answers``: CXone acted, the caller has not heard it yet (the window a caller may die in)."""
    client.post("/sandbox/faults", json={"hold_answers": 1})
    answers: list[int] = []
    held = threading.Thread(
        target=lambda: answers.append(
            client.put(routing_path("7000004"), json={"skillId": 1200001}, headers=auth).status_code
        )
    )
    held.start()
    deadline = time.monotonic() + 10
    while client.get("/sandbox/stats?summary=1").get_json()["held_answers"] != 1:
        assert time.monotonic() < deadline, "the answer was never held"
        time.sleep(0.01)

    # While the answer waits, the contact is already in its queue and the PUT is counted.
    stats = client.get("/sandbox/stats").get_json()
    assert [put["skillId"] for put in stats["routings"]["7000004"]] == [1200001]
    assert stats["api_calls_by_endpoint"]["routing_put"] == 1
    contact = client.get("/dfo/3.0/contacts/7000004", headers=auth).get_json()
    assert contact["routingQueueId"] is not None
    # Only the next call's answer is held.
    assert client.put(routing_path("7000005"), json={"skillId": 1200001}, headers=auth).status_code == 200
    assert answers == [] and client.get("/sandbox/faults").get_json()["hold_answers"] == 0

    client.post("/sandbox/faults", json={"release_held": True})
    held.join(10)

    assert answers == [200]
    stats = client.get("/sandbox/stats").get_json()
    assert (stats["held_answers"], stats["held_answers_total"], stats["held_calls_total"]) == (0, 1, 0)


def test_a_refused_call_has_no_answer_to_hold(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post("/sandbox/faults", json={"hold_answers": 1, "closed_contacts": ["7000006"]})

    assert client.put(routing_path("7000006"), json={"skillId": 1200001}, headers=auth).status_code == 404

    assert (
        client.get("/sandbox/faults").get_json()["hold_answers"] == 1
    )  # still waiting for a carried-out call


def test_reset_releases_held_calls(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post("/sandbox/faults", json={"hold_calls": 1})
    held = threading.Thread(
        target=lambda: client.put(routing_path("7000003"), json={"skillId": 1200001}, headers=auth)
    )
    held.start()
    deadline = time.monotonic() + 10
    while client.get("/sandbox/stats?summary=1").get_json()["held_calls"] != 1:
        assert time.monotonic() < deadline, "the call was never held"
        time.sleep(0.01)

    client.post("/sandbox/reset")
    held.join(10)

    assert not held.is_alive()


def test_fault_updates_are_validated_as_a_whole(client: FlaskClient) -> None:
    before = client.get("/sandbox/faults").get_json()
    for update in (
        {"no_such_knob": 1},
        {"error_rate": 2},
        {"latency_ms": 5, "retry_after": "yes"},
        {"rate_limit_per_minute": 1.5},
        {"closed_contacts": "abc"},
        {"hold_calls": -1},
        {"release_held": 1},
        [1, 2],
    ):
        response = client.post("/sandbox/faults", json=update)
        assert response.status_code == 400, update
        assert response.get_json()["error"] == "invalid_request"
    assert client.get("/sandbox/faults").get_json() == before


def test_reset_restores_knobs_and_clears_stats(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post(
        "/sandbox/faults",
        json={"rate_limit_per_minute": 3, "closed_contacts": ["7000099"], "token_ttl_seconds": 5},
    )
    client.put(routing_path("7000001"), json={"skillId": 1200001}, headers=auth)
    reset = client.post("/sandbox/reset").get_json()
    assert reset["faults"]["rate_limit_per_minute"] is None
    assert reset["faults"]["closed_contacts"] == []
    assert reset["faults"]["token_ttl_seconds"] == 3600
    stats = client.get("/sandbox/stats").get_json()
    assert stats["api_calls"] == 0 and stats["routings"] == {}
    # Tokens survive a reset, so a benchmark can reset between runs without re-authenticating.
    assert statuses(client, auth, 1) == [200]


def test_stats_summary_omits_per_contact_maps(client: FlaskClient, auth: dict[str, str]) -> None:
    client.put(routing_path("7000001"), json={"skillId": 1200001}, headers=auth)
    full = client.get("/sandbox/stats").get_json()
    summary = client.get("/sandbox/stats?summary=1").get_json()
    assert "routings" in full and "signals" in full
    assert "routings" not in summary and "signals" not in summary
    assert summary["contacts_routed"] == 1
    assert {key: full[key] for key in summary} == summary


def test_help_page_and_unknown_paths(client: FlaskClient) -> None:
    page = client.get("/sandbox")
    assert page.status_code == 200 and "rate_limit_per_minute" in page.text
    missing = client.get("/api/v2/routing/queues")
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"
    wrong_method = client.get("/auth/token")
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["Allow"]
