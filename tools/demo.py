"""`make demo`: send every example payload to a running router and show where each contact went.

Works against any running stack (`make run`, `docker compose up`, a staging host):

    python -m tools.demo [--url http://127.0.0.1:8000] [--key KEY] [--timeout 20] [--sandbox-url URL]

Each file in tests/payloads is posted as-is to ``/webhook/cognigy/route``. Accepted ones are then
followed with ``GET /routings/<id>`` until they are ``routed`` or ``failed``; rejected ones show
the error and the message for each bad field. Files named ``bad-*`` are meant to be rejected.

Then, when the CXone sandbox answers (``--sandbox-url``, by default from the ``SANDBOX_*``
variables), one contact overflows: the demo tells the sandbox that no agent of Billing is available,
sends a ``billing_question`` webhook that waits for its outcome (the example routing table gives
Billing an overflow rule), prints where the contact went and why, and gives Billing its agents back.

Exit status: 0 when every good example was routed, every bad one was refused for its content
(a 4xx other than 401/403) and, with the sandbox, the contact overflowed; 1 otherwise, including a
key the router refuses; 2 when no router answers at the URL.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from cxone_sandbox.control import sandbox_url, skill_id_of

PAYLOADS = Path(__file__).resolve().parents[1] / "tests" / "payloads"
DEFAULT_KEY = "demo-webhook-key"
DEFAULT_TIMEOUT_SECONDS = 20.0
POLL_INTERVAL_SECONDS = 0.25
HTTP_TIMEOUT = (3.05, 10)
TERMINAL_STATES = ("routed", "failed", "superseded")
AUTH_REFUSALS = (401, 403)
#: The overflow shown: an intent of config/routes.example.yaml whose queue has overflow rules.
OVERFLOW_INTENT = "billing_question"
OVERFLOW_QUEUE = "Billing"


class RouterUnreachable(Exception):
    """Nothing answers HTTP at the router URL."""


class KeyRefused(Exception):
    """The router answered 401/403: every other payload would get the same answer."""


@dataclass
class Outcome:
    """What happened to one example payload."""

    file: str
    meant_to_route: bool
    http_status: int | None = None
    routing_id: str | None = None
    state: str = ""
    queue: str = ""
    skill_id: str = ""
    mode: str = ""
    contact_id: str = ""
    note: str = ""
    resend: bool = False

    @property
    def as_expected(self) -> bool:
        """Good examples must end ``routed``; ``bad-*`` ones must be refused for their content (4xx)."""
        if self.meant_to_route:
            return self.state == "routed"
        return (
            self.http_status is not None
            and 400 <= self.http_status < 500
            and self.http_status not in AUTH_REFUSALS
        )

    def update_from_record(self, record: Mapping) -> None:
        """Take state and destination from a ``GET /routings/<id>`` body (or the 202 body)."""
        self.state = str(record.get("state") or record.get("status") or self.state)
        self.queue = str(record.get("queue") or self.queue)
        self.mode = str(record.get("mode") or self.mode)
        self.contact_id = str(record.get("contactId") or self.contact_id)
        if record.get("skillId") is not None:
            self.skill_id = str(record["skillId"])
        if self.state == "failed":
            self.note = str(record.get("reason") or record.get("lastError") or "")
        elif self.state == "retrying":
            self.note = f"last error: {record.get('lastError')}"
        elif self.state == "superseded":
            self.note = f"replaced by the contact's newer routing {record.get('supersededBy')}"
        else:
            self.note = ""

    @property
    def remarks(self) -> str:
        """The last column of the table."""
        resend = "resend: the router answered with the first routing" if self.resend else ""
        return "; ".join(part for part in (resend, self.note) if part)


# ---------------------------------------------------------------------------- settings


def default_url(environ: Mapping[str, str]) -> str:
    """ROUTER_URL, else the local router on $PORT (what `make run` and compose publish)."""
    return environ.get("ROUTER_URL") or f"http://127.0.0.1:{environ.get('PORT') or 8000}"


def default_key(environ: Mapping[str, str]) -> str:
    """The first of WEBHOOK_API_KEYS (the one `make run` prints), else the demo key."""
    first = environ.get("WEBHOOK_API_KEYS", "").split(",")[0].strip()
    return first or DEFAULT_KEY


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    """Flags, with defaults taken from ``environ``."""
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        default=default_url(environ),
        help="router base URL (default: $ROUTER_URL or http://127.0.0.1:$PORT)",
    )
    parser.add_argument(
        "--key",
        default=default_key(environ),
        help="webhook API key (default: first of $WEBHOOK_API_KEYS, else the demo key)",
    )
    parser.add_argument("--payloads", type=Path, default=PAYLOADS, help="directory of *.json bodies")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help="seconds to wait for the accepted routings to finish (default 20)",
    )
    parser.add_argument(
        "--sandbox-url",
        default=sandbox_url(environ),
        help="the CXone sandbox, for the overflow example (default: from the SANDBOX_* variables)",
    )
    args = parser.parse_args(argv)
    args.url = args.url.rstrip("/")
    args.sandbox_url = args.sandbox_url.rstrip("/")
    return args


# ---------------------------------------------------------------------------- talking to the router


def send(session: requests.Session, url: str, path: Path) -> Outcome:
    """POST one payload file exactly as it is on disk."""
    outcome = Outcome(file=path.name, meant_to_route=not path.name.startswith("bad-"))
    try:
        response = session.post(
            f"{url}/webhook/cognigy/route",
            data=path.read_bytes(),
            headers={"Content-Type": "application/json"},
            timeout=HTTP_TIMEOUT,
        )
    except requests.ConnectionError as exc:
        raise RouterUnreachable(str(exc)) from exc
    except requests.RequestException as exc:  # e.g. a read timeout: the router is there but stuck
        outcome.state, outcome.note = "error", f"{exc.__class__.__name__}: {exc}"[:200]
        return outcome
    outcome.http_status = response.status_code
    body = _json_or_none(response)
    if response.status_code in AUTH_REFUSALS:
        raise KeyRefused(describe_error(response.status_code, body, response.text))
    if response.ok and isinstance(body, dict) and body.get("routingId"):
        outcome.routing_id = str(body["routingId"])
        outcome.update_from_record(body)
        # Sent before (a second `make demo` within the dedupe window): nothing new was queued.
        outcome.resend = bool(body.get("duplicate"))
    elif response.ok:
        outcome.state = "?"
        outcome.note = f"no routingId in the answer: {response.text[:200]}"
    else:
        outcome.state = "rejected" if response.status_code < 500 else "error"
        outcome.note = describe_error(response.status_code, body, response.text)
    return outcome


def describe_error(status: int, body: object, text: str) -> str:
    """One line: the error, each bad field with its messages, and any reason the router gave."""
    if not isinstance(body, dict):
        return text.strip()[:200] or f"HTTP {status}"
    parts = [str(body.get("error") or f"HTTP {status}")]
    fields = body.get("fields")
    if isinstance(fields, dict):
        for name, messages in fields.items():
            listed = messages if isinstance(messages, list) else [messages]
            parts.append(f"{name}: {' '.join(str(m) for m in listed)}")
    for extra in ("reason", "detail"):
        if body.get(extra):
            parts.append(str(body[extra]))
    return "; ".join(parts)


def follow(session: requests.Session, url: str, pending: list[Outcome], timeout: float) -> None:
    """Poll each accepted routing until it is routed or failed, all within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    waiting = [o for o in pending if o.state not in TERMINAL_STATES]
    while waiting and time.monotonic() < deadline:
        for outcome in waiting:
            try:
                response = session.get(f"{url}/routings/{outcome.routing_id}", timeout=HTTP_TIMEOUT)
            except requests.RequestException:
                continue  # a blip: ask again on the next round
            body = _json_or_none(response)
            if response.ok and isinstance(body, dict):
                outcome.update_from_record(body)
            elif response.status_code == 404:
                outcome.state, outcome.note = "unknown", "routing record not found"
        waiting = [o for o in waiting if o.state not in (*TERMINAL_STATES, "unknown")]
        if waiting:
            time.sleep(POLL_INTERVAL_SECONDS)
    for outcome in waiting:
        outcome.note = (
            f"still {outcome.state} after {timeout:g} s: is a worker running? {outcome.note}"
        ).strip()


def _json_or_none(response: requests.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


# ---------------------------------------------------------------------------- output

COLUMNS = ("FILE", "HTTP", "STATE", "QUEUE", "SKILL", "MODE", "CONTACT")


def render(outcomes: Sequence[Outcome]) -> str:
    """An aligned table; a row with no destination shows its note from the QUEUE column on."""
    rows: list[tuple[list[str], str]] = []
    for o in outcomes:
        head = [o.file, str(o.http_status or "-"), o.state or "-"]
        if o.routing_id:
            rows.append(
                (head + [o.queue or "-", o.skill_id or "-", o.mode or "-", o.contact_id or "-"], o.remarks)
            )
        else:
            rows.append((head, o.remarks))
    widths = [len(c) for c in COLUMNS]
    for cells, _ in rows:
        for i, cell in enumerate(cells):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str], note: str = "") -> str:
        padded = [cell.rjust(widths[i]) if i == 1 else cell.ljust(widths[i]) for i, cell in enumerate(cells)]
        return "  ".join(padded + ([note] if note else [])).rstrip()

    return "\n".join([line(COLUMNS), *(line(cells, note) for cells, note in rows)])


def summary(outcomes: Sequence[Outcome]) -> str:
    """The one-line verdict printed under the table."""
    good = [o for o in outcomes if o.meant_to_route]
    bad = [o for o in outcomes if not o.meant_to_route]
    routed = sum(o.as_expected for o in good)
    rejected = sum(o.as_expected for o in bad)
    return f"{routed} of {len(good)} good examples routed, {rejected} of {len(bad)} bad examples rejected."


# ---------------------------------------------------------------------------- one contact overflowing


@dataclass
class OverflowShown:
    """What the overflow example found: whether it could run, and what the router answered."""

    ran: bool
    answer: dict | None = None
    note: str = ""

    @property
    def as_expected(self) -> bool:
        """Without the sandbox there is nothing to show; with it, the contact must have overflowed."""
        return not self.ran or bool(self.answer and self.answer.get("overflow"))


def show_overflow(session: requests.Session, url: str, sandbox: str, timeout: float) -> OverflowShown:
    """No agent of Billing available in the sandbox, then a webhook for Billing: where it went.

    The router reads the queues' state at most once per CXONE_ACTIVITY_TTL_SECONDS, so a contact
    sent right after the change may still see the old state; the demo then sends another one (a new
    contact each time) until the change shows, within ``timeout`` seconds.
    """
    skill_id = skill_id_of(OVERFLOW_QUEUE)
    control = f"{sandbox}/sandbox/skills/{skill_id}/activity"
    try:
        before = session.get(control, timeout=HTTP_TIMEOUT)
    except requests.RequestException:
        return OverflowShown(False, note=f"no CXone sandbox answers at {sandbox}: overflow example skipped")
    if not before.ok:
        return OverflowShown(False, note=f"the sandbox at {sandbox} has no skill {OVERFLOW_QUEUE}: skipped")
    agents = before.json().get("agentsAvailable")
    session.post(control, json={"agentsAvailable": 0}, timeout=HTTP_TIMEOUT).raise_for_status()
    try:
        deadline = time.monotonic() + timeout
        first = int(time.time() * 10) % 10**8
        for n in itertools.count():
            answer = _send_overflow_webhook(session, url, f"79{(first + n) % 10**8:08d}")
            if answer.get("overflow") or answer.get("status") != "routed" or time.monotonic() > deadline:
                earlier = f"{n} earlier contact(s) still saw Billing's old state" if n else ""
                return OverflowShown(True, answer, earlier)
            time.sleep(POLL_INTERVAL_SECONDS * 4)  # the router's copy of the state is a few seconds old
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        session.post(control, json={"agentsAvailable": agents}, timeout=HTTP_TIMEOUT)


def _send_overflow_webhook(session: requests.Session, url: str, contact_id: str) -> dict:
    """A chat webhook for the overflow intent that waits for its outcome; the answer (or why not)."""
    body = {
        "sessionId": f"demo-overflow-{contact_id}",
        "channel": "webchat3",
        "intent": OVERFLOW_INTENT,
        "intentScore": 0.95,
        "data": {"contactId": contact_id},
    }
    try:
        response = session.post(f"{url}/webhook/cognigy/route?wait=5", json=body, timeout=HTTP_TIMEOUT)
    except requests.RequestException as exc:
        return {"status": "error", "reason": f"{exc.__class__.__name__}: {exc}"[:200]}
    answer = _json_or_none(response)
    if not isinstance(answer, dict):
        return {"status": "error", "reason": response.text[:200]}
    return answer


def render_overflow(shown: OverflowShown) -> str:
    """The lines that tell where the overflowing contact went and why."""
    if not shown.ran:
        return f"Overflow: {shown.note}."
    head = (
        f"Overflow: no agent of {OVERFLOW_QUEUE} available (the sandbox was told so: python -m cxone_sandbox "
        f"skill-activity {OVERFLOW_QUEUE} --agents-available 0), then a {OVERFLOW_INTENT} webhook:"
    )
    answer = shown.answer or {}
    overflow = answer.get("overflow")
    if not overflow:
        why = (
            answer.get("reason")
            or answer.get("lastError")
            or (
                f"it went to {answer.get('queue')}: "
                f"does the routing table give {OVERFLOW_QUEUE} overflow rules?"
            )
        )
        return (
            f"{head}\n  contact {answer.get('contactId', '-')}: {answer.get('status')}, no overflow ({why})"
        )
    value = next(
        (
            f"{key} {overflow[key]}"
            for key in ("agentsAvailable", "queueCount", "longestWaitSeconds")
            if key in overflow
        ),
        "",
    )
    lines = [
        head,
        f"  contact {answer.get('contactId')}: asked for {answer.get('queueAsked')}, "
        f"routed to {answer.get('queue')} (skill {answer.get('skillId')})",
        f"  why: rule {overflow.get('rule')}, with {value} in {overflow.get('from')}",
    ]
    if shown.note:
        lines.append(f"  ({shown.note}: the router reads the queues' state every few seconds)")
    return "\n".join(lines)


def _masked(key: str) -> str:
    return key if key == DEFAULT_KEY else key[:4] + "…"


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Send, follow, print; return the exit status described in the module docstring."""
    args = parse_args(argv, os.environ if environ is None else environ)
    files = sorted(args.payloads.glob("*.json"), key=lambda p: (p.name.startswith("bad-"), p.name))
    if not files:
        print(f"demo: no *.json payloads in {args.payloads}", file=sys.stderr)
        return 2
    print(f"Sending {len(files)} example payloads to {args.url}  (X-API-Key: {_masked(args.key)})\n")
    with requests.Session() as session:
        session.headers["X-API-Key"] = args.key
        try:
            outcomes = [send(session, args.url, path) for path in files]
        except RouterUnreachable:
            print(
                f"demo: no router answers at {args.url}.\n"
                "      Start one with `make run` or `docker compose up`, or pass --url.",
                file=sys.stderr,
            )
            return 2
        except KeyRefused as exc:
            print(
                f"demo: the router refused the key {_masked(args.key)}: {exc}\n"
                "      Pass --key, or set WEBHOOK_API_KEYS to the router's keys.",
                file=sys.stderr,
            )
            return 1
        follow(session, args.url, [o for o in outcomes if o.routing_id], args.timeout)
        print(render(outcomes))
        print()
        print(summary(outcomes))
        overflow = show_overflow(session, args.url, args.sandbox_url, args.timeout)
    print()
    print(render_overflow(overflow))
    return 0 if all(o.as_expected for o in outcomes) and overflow.as_expected else 1


if __name__ == "__main__":
    sys.exit(main())
