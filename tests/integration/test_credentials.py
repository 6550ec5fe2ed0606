"""Credentials go only where they belong, on the real stack (gunicorn, Celery workers, the sandbox).

- A redirect is never followed: a host that the sandbox redirects to records every byte it receives,
  and receives none, neither the access key (token request) nor the bearer token (API call).
- A discovery that names an untrusted endpoint fails the routing before anything is sent there.
- A worker configured with an untrusted CXONE_AUTH_URL does not start.
- Rejected credentials pause every worker's token requests together (15 s, then 30 s ...): the
  sandbox counts one token request per pause step, not one per task, and once CXone accepts the
  credentials again every routing completes within a minute, nothing restarted.
"""

from __future__ import annotations

import socket
import threading
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from shared import redis_keys
from tests.integration.stack import Stack, chat_body, free_port, wait_until

REJECTED = (
    "CXone rejected the credentials (invalid_grant): check CXONE_ACCESS_KEY_ID/SECRET "
    "(an access key of an active CXone API user)"
)


class ByteRecorder:
    """A TCP listener on loopback that records every connection and every byte sent to it."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(1)
                try:
                    self.received.append(conn.recv(65536))
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()


def routing_state(stack: Stack, routing_id: str) -> dict:
    return stack.routing(routing_id)


def post(stack: Stack, contact_id: str) -> str:
    response = stack.post_webhook(chat_body(contact_id))
    assert response.status_code == 202, response.text
    return response.json()["routingId"]


def test_redirects_are_never_followed_so_no_credential_reaches_the_other_host(stack):
    elsewhere = ByteRecorder()
    try:
        # The recorder listens on loopback, which the router trusts: only not following the
        # redirect keeps the credentials from it.
        stack.set_faults(redirect_token_to=elsewhere.url, redirect_api_to=elsewhere.url)
        stack.start_worker()
        first = post(stack, "7100001")

        wait_until(
            lambda: routing_state(stack, first)["state"] != "queued",
            30,
            what="the worker to meet the token redirect",
        )
        assert stack.sandbox_stats(summary=True)["answered_3xx"] == 1
        assert elsewhere.received == []  # the access key secret was not re-sent
        record = routing_state(stack, first)
        assert record["state"] == "retrying"
        assert record["lastError"] == (
            f"the CXone token endpoint {stack.sandbox_url}/auth/token answered HTTP 307, a redirect to "
            "127.0.0.1: not followed, the credentials are never sent elsewhere; check CXONE_AUTH_URL"
        )

        # The token endpoint is fixed; the API host still redirects: the routing fails naming the host.
        stack.set_faults(redirect_token_to=None)
        wait_until(
            lambda: routing_state(stack, first)["state"] != "retrying", 45, what="the API redirect to end it"
        )
        assert elsewhere.received == []  # nor the bearer token
        record = routing_state(stack, first)
        assert record["state"] == "failed"
        # Its first API call, the skill search, is the one redirected.
        assert record["reason"].startswith("skills: HTTP 307, a redirect to 127.0.0.1: not followed"), record

        stats = stack.sandbox_stats(summary=True)
        assert stats["answered_3xx"] == 2 and stats["contacts_routed"] == 0
        assert elsewhere.connections == 0

        stack.set_faults(redirect_api_to=None)
        second = post(stack, "7100002")
        wait_until(lambda: routing_state(stack, second)["state"] == "routed", 30, what="a normal routing")
        assert elsewhere.connections == 0
    finally:
        elsewhere.close()


def test_an_untrusted_discovered_endpoint_fails_the_routing_and_gets_nothing(stack):
    stack.set_faults(discovery_token_endpoint="https://auth.attacker.example/auth/token")
    stack.start_worker()
    first = post(stack, "7200001")

    wait_until(lambda: routing_state(stack, first)["state"] == "failed", 30, what="the routing to fail")
    assert routing_state(stack, first)["reason"] == (
        "CXone discovery returned an untrusted token_endpoint https://auth.attacker.example/auth/token "
        "(host auth.attacker.example is not in CXONE_TRUSTED_HOSTS (niceincontact.com, nice-incontact.com, "
        "nicecxone.com, nicecxone-gov.com)): not sent any credentials"
    )
    assert stack.sandbox_stats(summary=True)["token_requests"] == 0

    # A trusted token endpoint, but the tenant's API host is advertised over plain http.
    stack.set_faults(discovery_token_endpoint=None, discovery_api_endpoint="http://api-na1.niceincontact.com")
    client = stack.redis()
    wait_until(
        lambda: not client.exists(redis_keys.CXONE_TOKEN_FAILURE), 10, what="the shared failure to pass"
    )
    second = post(stack, "7200002")

    wait_until(lambda: routing_state(stack, second)["state"] == "failed", 30, what="the routing to fail")
    assert routing_state(stack, second)["reason"].startswith(
        "CXone discovery returned an untrusted api_endpoint http://api-na1.niceincontact.com (plain http"
    )
    stats = stack.sandbox_stats(summary=True)
    assert stats["token_requests"] == 1 and stats["api_calls"] == 0


def test_a_worker_with_an_untrusted_auth_url_refuses_to_start(stack):
    worker = stack.start_worker(CXONE_AUTH_URL="https://cxone.niceincontact.com.evil.io")

    wait_until(lambda: worker.popen.poll() is not None, 60, what="the worker to stop")

    assert worker.popen.returncode != 0
    log = worker.log_path.read_text(errors="replace")
    assert "untrusted CXone URL: CXONE_AUTH_URL=https://cxone.niceincontact.com.evil.io" in log
    assert stack.sandbox_stats(summary=True)["token_requests"] == 0


def test_rejected_credentials_pause_every_worker_and_a_fix_resumes_routing_within_a_minute(stack):
    stack.set_faults(invalid_grant=True)  # CXone refuses the access key (e.g. the API user is disabled)
    port = free_port()
    stack.start_worker("w1", concurrency=4, WORKER_METRICS_PORT=str(port))
    stack.start_worker("w2", concurrency=4, WORKER_METRICS_PORT="0")
    n = 20
    ids = [post(stack, f"73{i:05d}") for i in range(n)]

    wait_until(
        lambda: all(routing_state(stack, rid).get("lastError") == REJECTED for rid in ids),
        60,
        what="every routing to show the rejected credentials",
    )
    assert {routing_state(stack, rid)["state"] for rid in ids} == {"retrying"}
    assert _gauge(port, "router_cxone_token_requests_paused") == 1.0
    # Past the first pause (15 s): the second token request, and still only that.
    wait_until(
        lambda: stack.sandbox_stats(summary=True)["token_requests"] >= 2, 40, what="a second token request"
    )

    fixed_at = time.time()
    stack.set_faults(invalid_grant=False)  # the operator re-enabled the API user; nothing restarted
    wait_until(
        lambda: all(routing_state(stack, rid)["state"] == "routed" for rid in ids),
        60 + 30,
        interval=1,
        what="every routing to complete after the fix",
    )
    resumed_after = time.time() - fixed_at

    tokens = [c for c in _calls(stack) if c["endpoint"] == "issue_token"]
    rejected = [c for c in tokens if c["status"] == 400]
    assert [c["status"] for c in tokens] == [400] * len(rejected) + [200]  # one token for both workers
    # One token request per pause step (15 s, 30 s, 60 s ...), never one per task.
    steps = (15.0, 30.0, 60.0)
    for number, (earlier, later) in enumerate(zip(tokens, tokens[1:], strict=False)):
        assert later["at"] - earlier["at"] >= steps[min(number, 2)] - 0.5, tokens
    assert len(rejected) <= 3
    stats = stack.sandbox_stats()
    assert stats["contacts_routed"] == n and stats["contacts_routed_more_than_once"] == 0
    assert resumed_after <= 65, f"routing resumed {resumed_after:.0f}s after the fix"
    assert not stack.redis().exists(redis_keys.CXONE_TOKEN_PAUSE)
    assert _gauge(port, "router_cxone_token_requests_paused") == 0.0
    print(
        f"token requests: {len(tokens)} ({len(rejected)} rejected); routed {resumed_after:.1f}s after the fix"
    )


def _calls(stack: Stack) -> list[dict]:
    return requests.get(stack.sandbox_url + "/sandbox/calls", timeout=10).json()["calls"]


def _gauge(port: int, name: str) -> float:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} is not served")
