"""`make demo` (python -m tools.demo) against the real stack: what an operator sees and its exit code."""

from __future__ import annotations

import re
import subprocess
import sys

import requests

from tests.integration.stack import API_KEY, REPO, wait_ready

#: How long the demo follows the routings: only a safety net, far above what they take.
FOLLOW_SECONDS = "120"

# Every good example and the queue the example routing table sends it to.
EXPECTED_QUEUES = {
    "cognigy-input-chat.json": ("Billing Disputes", "digital"),
    "cognigy-input-voice.json": ("Claims", "voice"),
    "seed-flat.json": ("Technical Support", "digital"),
    "seed-intents.json": ("Sales Support", "digital"),
}
# The bad examples and the field each one gets wrong.
EXPECTED_REJECTIONS = {
    "bad-confidence.json": "intents.0.confidence",
    "bad-no-session.json": "sessionId",
    # A chat without a CXone contact: Cognigy's session id is no CXone contact id.
    "bad-session-id-only.json": "sessionId",
}


def run_demo(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "tools.demo", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def row_of(output: str, file_name: str) -> str:
    (row,) = [line for line in output.splitlines() if line.startswith(file_name + " ")]
    return row


def test_demo_shows_where_every_example_went_and_exits_0(stack):
    wait_ready(stack.start_worker())
    result = run_demo(
        "--url",
        stack.web_url,
        "--key",
        API_KEY,
        "--timeout",
        FOLLOW_SECONDS,
        "--sandbox-url",
        stack.sandbox_url,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for name, (queue, mode) in EXPECTED_QUEUES.items():
        row = row_of(out, name)
        assert re.search(rf"\s202\s+routed\s+{re.escape(queue)}\s+\d+\s+{mode}\s", row), row
    for name, field in EXPECTED_REJECTIONS.items():
        row = row_of(out, name)
        assert re.search(r"\s400\s+rejected\s", row), row
        assert f"{field}:" in row, row
    assert "4 of 4 good examples routed, 3 of 3 bad examples rejected." in out
    # The table is aligned: the HTTP column ends at the same place on every line.
    lines = [line for line in out.splitlines() if line.startswith(("FILE", "bad-", "cognigy-", "seed-"))]
    assert len(lines) == 1 + len(EXPECTED_QUEUES) + len(EXPECTED_REJECTIONS)
    ends = {re.match(r"\S+\s+\S+", line).end() for line in lines}
    assert len(ends) == 1, out
    # Then one contact overflows: no agent of Billing available, so General Inquiry, and why.
    assert "Overflow: no agent of Billing available" in out
    assert re.search(
        r"contact 79\d{8}: asked for Billing, routed to General Inquiry \(skill 1200009\)", out
    ), out
    assert "why: rule agents_available_below 1, with agentsAvailable 0 in Billing" in out
    billing = requests.get(f"{stack.sandbox_url}/sandbox/skills/1200005/activity", timeout=5).json()
    assert billing["agentsAvailable"] == 3  # given back afterwards

    # A second run inside the dedupe window is answered with the first routings: still a success.
    again = run_demo(
        "--url",
        stack.web_url,
        "--key",
        API_KEY,
        "--timeout",
        FOLLOW_SECONDS,
        "--sandbox-url",
        stack.sandbox_url,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "routed to General Inquiry" in again.stdout
    for name, (queue, _) in EXPECTED_QUEUES.items():
        row = row_of(again.stdout, name)
        assert queue in row and "resend: the router answered with the first routing" in row, row


def test_demo_fails_when_no_worker_routes_the_examples(stack):
    # No worker: the accepted routings stay queued, so the demo must not claim success.
    result = run_demo(
        "--url", stack.web_url, "--key", API_KEY, "--timeout", "2", "--sandbox-url", stack.sandbox_url
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "still queued after 2 s" in result.stdout
    assert "0 of 4 good examples routed" in result.stdout


def test_demo_reads_the_key_from_webhook_api_keys_and_explains_a_wrong_one(stack):
    wait_ready(stack.start_worker())
    wrong = run_demo(
        "--url",
        stack.web_url,
        "--timeout",
        "2",
        "--sandbox-url",
        stack.sandbox_url,
        env_extra={"WEBHOOK_API_KEYS": "not-the-key,other"},
    )
    assert wrong.returncode == 1
    assert "the router refused the key not-…: missing or invalid API key" in wrong.stderr
    assert "set WEBHOOK_API_KEYS" in wrong.stderr

    right = run_demo(
        "--url",
        stack.web_url,
        "--timeout",
        FOLLOW_SECONDS,
        "--sandbox-url",
        stack.sandbox_url,
        env_extra={"WEBHOOK_API_KEYS": f"{API_KEY}, spare"},
    )
    assert right.returncode == 0, right.stdout + right.stderr


def test_demo_without_a_sandbox_skips_the_overflow_example(stack):
    wait_ready(stack.start_worker())

    result = run_demo(
        "--url",
        stack.web_url,
        "--key",
        API_KEY,
        "--timeout",
        FOLLOW_SECONDS,
        "--sandbox-url",
        "http://127.0.0.1:9",
    )

    assert result.returncode == 0, result.stdout + result.stderr  # a real tenant has no sandbox to set
    assert (
        "Overflow: no CXone sandbox answers at http://127.0.0.1:9: overflow example skipped." in result.stdout
    )


def test_demo_says_so_when_no_router_answers():
    result = run_demo("--url", "http://127.0.0.1:9", "--key", API_KEY)

    assert result.returncode == 2
    assert "no router answers at http://127.0.0.1:9" in result.stderr
