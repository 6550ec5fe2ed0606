"""Commands that show or change a running sandbox through its control API.

``python -m cxone_sandbox contact ID …``: one contact, for tests and demos that need it in a given
state, e.g. assigned to an agent between two routing attempts:
``python -m cxone_sandbox contact 7000001 --assignee 4242``. It calls ``POST /sandbox/contacts/<id>``
and prints the contact as CXone's ``GET /dfo/3.0/contacts/{id}`` would return it.

``python -m cxone_sandbox skill-activity SKILL …``: one skill's live state (agents available,
contacts waiting, longest wait), e.g. no agent free in Billing to see contacts overflow:
``python -m cxone_sandbox skill-activity Billing --agents-available 0``. SKILL is a skill id or an
exact skill name of the sandbox's seed. It calls ``POST /sandbox/skills/<id>/activity`` and prints
the skill's entry as CXone's ``GET …/skills/activity`` would list it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import TextIO

import requests

from .config import DEFAULT_HOST, DEFAULT_PORT
from .contacts import STATUSES
from .seed import SEED_SKILLS


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
    return _show_or_change(url, update, out)


def skill_activity_command(argv: Sequence[str], environ: Mapping[str, str], out: TextIO) -> int:
    """Parse ``skill-activity`` arguments, call the sandbox and print the skill's live state;
    returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m cxone_sandbox skill-activity",
        description="Show or change a sandbox skill's agents, waiting contacts and longest wait.",
    )
    parser.add_argument("skill", help="skill id, or an exact skill name of the sandbox's seed (e.g. Billing)")
    parser.add_argument("--agents-available", type=int, metavar="N", help="agents free to take a contact")
    parser.add_argument("--agents-logged-in", type=int, metavar="N", help="agents logged in to the skill")
    parser.add_argument("--queue-count", type=int, metavar="N", help="contacts waiting in the queue")
    parser.add_argument("--longest-wait", type=int, metavar="SECONDS", help="longest wait of those contacts")
    parser.add_argument("--url", default=None, help="the sandbox (default: from SANDBOX_* variables)")
    args = parser.parse_args(argv)
    skill_id = skill_id_of(args.skill)
    if skill_id is None:
        parser.error(f"{args.skill!r} is neither a skill id nor exactly one skill name of the sandbox")
    given = {
        "agentsAvailable": args.agents_available,
        "agentsLoggedIn": args.agents_logged_in,
        "queueCount": args.queue_count,
        "longestQueueTimeInSeconds": args.longest_wait,
    }
    update = {key: value for key, value in given.items() if value is not None}
    url = f"{args.url or sandbox_url(environ)}/sandbox/skills/{skill_id}/activity"
    return _show_or_change(url, update, out)


def skill_id_of(skill: str) -> int | None:
    """A skill id given as digits, or the id of the one seed skill with exactly this name."""
    if skill.isdigit():
        return int(skill)
    ids = [seed.skill_id for seed in SEED_SKILLS if seed.skill_name == skill]
    return ids[0] if len(ids) == 1 else None


def _show_or_change(url: str, update: dict[str, object], out: TextIO) -> int:
    """POST ``update`` to a control URL (GET when there is nothing to change) and print the answer."""
    try:
        response = requests.post(url, json=update, timeout=5) if update else requests.get(url, timeout=5)
    except requests.RequestException as exc:
        print(f"no sandbox answers at {url}: {exc}", file=out)
        return 1
    print(json.dumps(response.json(), indent=2), file=out)
    return 0 if response.ok else 1
