"""`python -m cxone_sandbox contact ID …`: show or change one contact of a running sandbox.

For tests and demos that need a contact in a given state, e.g. assigned to an agent between two
routing attempts: ``python -m cxone_sandbox contact 7000001 --assignee 4242``. It calls the
sandbox's control API (``POST /sandbox/contacts/<id>``) and prints the contact as CXone's
``GET /dfo/3.0/contacts/{id}`` would return it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import TextIO

import requests

from .config import DEFAULT_HOST, DEFAULT_PORT
from .contacts import STATUSES


def sandbox_url(environ: Mapping[str, str]) -> str:
    """Where the running sandbox answers: SANDBOX_PUBLIC_URL, else SANDBOX_HOST:SANDBOX_PORT."""
    public = environ.get("SANDBOX_PUBLIC_URL")
    if public:
        return public.rstrip("/")
    host = environ.get("SANDBOX_HOST") or DEFAULT_HOST
    if host in ("0.0.0.0", "::", ""):  # noqa: S104  # a wildcard is reached on loopback
        host = "127.0.0.1"
    return f"http://{host}:{environ.get('SANDBOX_PORT') or DEFAULT_PORT}"


def contact_command(argv: Sequence[str], environ: Mapping[str, str], out: TextIO) -> int:
    """Parse ``contact`` arguments, call the sandbox and print the contact; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m cxone_sandbox contact",
        description="Show a sandbox contact, or change its status, agent or routing queue.",
    )
    parser.add_argument("contact_id", help="numeric CXone contact id")
    parser.add_argument("--status", choices=STATUSES)
    agent = parser.add_mutually_exclusive_group()
    agent.add_argument("--assignee", type=int, help="assign it to this agent (user id)")
    agent.add_argument("--unassign", action="store_true", help="no agent")
    queue = parser.add_mutually_exclusive_group()
    queue.add_argument("--skill-id", type=int, help="put it in this skill's routing queue")
    queue.add_argument("--no-queue", action="store_true", help="take it out of every routing queue")
    parser.add_argument("--url", default=None, help="the sandbox (default: from SANDBOX_* variables)")
    args = parser.parse_args(argv)
    update: dict[str, object] = {}
    if args.status:
        update["status"] = args.status
    if args.assignee is not None or args.unassign:
        update["assignee"] = args.assignee
    if args.skill_id is not None or args.no_queue:
        update["skillId"] = args.skill_id
    url = f"{args.url or sandbox_url(environ)}/sandbox/contacts/{args.contact_id}"
    try:
        response = requests.post(url, json=update, timeout=5) if update else requests.get(url, timeout=5)
    except requests.RequestException as exc:
        print(f"no sandbox answers at {url}: {exc}", file=out)
        return 1
    print(json.dumps(response.json(), indent=2), file=out)
    return 0 if response.ok else 1
