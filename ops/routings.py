"""CLI commands over the routing records: stuck routings and the dead-letter list.

They read the same Redis records as ``GET /routings/<id>``, and replay goes through the same
publisher (and duplicate guard) as a webhook.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TextIO

from shared import redis_keys
from shared.redis_connection import redis_client as connect_redis
from shared.routing.backlog import Backlog
from shared.routing.latest import LatestRoutings
from shared.routing.publisher import EnqueueFailed, NotReplayable, RoutingPublisher
from shared.routing.records import WAITING, RoutingStatusStore
from shared.settings import Settings
from shared.task_queue import ROUTE_CONTACT_TASK, ROUTING_QUEUE, make_celery


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``stuck`` and ``dead-letters`` on the top-level parser."""
    stuck = subparsers.add_parser("stuck", help="routings not routed (or failed) after N minutes")
    stuck.add_argument("--minutes", type=float, default=5.0, help="age threshold (default 5)")
    stuck.add_argument("--json", action="store_true", help="one JSON object per line")
    stuck.set_defaults(handler=stuck_command)

    letters = subparsers.add_parser("dead-letters", help="routings that exhausted their retries")
    actions = letters.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="one line per dead letter").set_defaults(handler=list_command)
    show = actions.add_parser("show", help="the full entry: task message and reason")
    show.add_argument("routing_id")
    show.set_defaults(handler=show_command)
    replay = actions.add_parser("replay", help="send through the workers again")
    _ids_or_all(replay)
    replay.add_argument(
        "--resend-signal",
        action="store_true",
        help="voice only: allow a signal whose outcome was unknown to be sent again "
        "(check the contact in CXone first)",
    )
    replay.set_defaults(handler=replay_command)
    purge = actions.add_parser("purge", help="drop entries without replaying them")
    _ids_or_all(purge)
    purge.set_defaults(handler=purge_command)


def _ids_or_all(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("routing_ids", nargs="*", metavar="ROUTING_ID")
    parser.add_argument("--all", action="store_true", help="every dead letter")


def _store(settings: Settings) -> RoutingStatusStore:
    client = connect_redis(settings, socket_timeout=5, socket_connect_timeout=2)
    return RoutingStatusStore(client, settings.routing_status_ttl_seconds)


def stuck_command(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """List open routings older than ``--minutes`` with their last error (routed, failed and
    superseded ones have ended: never listed); routings waiting in the backlog for a CXone call
    slot are listed (state ``waiting``) and counted on a line of their own."""
    store = _store(settings)
    records = store.open_older_than(args.minutes * 60)
    if args.json:
        for record in records:
            out.write(json.dumps(record.to_public()) + "\n")
        return 0
    backlog = _backlog_line(Backlog(store.redis, settings.routing_status_ttl_seconds))
    if not records:
        out.write(f"no routing has been open for more than {args.minutes:g} minutes\n{backlog}")
        return 0
    now = time.time()
    out.write(
        f"{'ROUTING ID':<34} {'STATE':<9} {'AGE':>7} {'TRIES':>5} {'NEXT TRY':<9} {'CONTACT':<16} "
        f"{'QUEUE':<22} LAST ERROR\n"
    )
    for r in records:
        out.write(
            f"{r.routing_id:<34} {r.state:<9} {_age(now - r.received_at):>7} {r.attempts:>5} "
            f"{_next_try(r.next_attempt_at, now) if r.state != WAITING else 'slot':<9} "
            f"{str(r.job.get('contact_id'))[:16]:<16} "
            f"{_queue(r.job)[:22]:<22} {(r.waiting_for if r.state == WAITING else r.last_error) or '-'}\n"
        )
    out.write(f"{len(records)} open routing(s) older than {args.minutes:g} minutes\n{backlog}")
    # The same routings in Flower: its task list shows each retry's reason and the next attempt.
    out.write("in Flower: search args:<contact id>, or state:RETRY for everything retrying\n")
    return 1


def list_command(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """One line per dead letter: routing id, when it failed, contact, queue and reason."""
    store = _store(settings)
    letters = store.dead_letters()
    if not letters:
        out.write("the dead-letter list is empty\n")
        return 0
    latest = LatestRoutings(store.redis, settings.routing_status_ttl_seconds)
    out.write(f"{'ROUTING ID':<34} {'FAILED AT (UTC)':<20} {'CONTACT':<16} {'QUEUE':<22} REASON\n")
    for routing_id, letter in letters.items():
        job = letter.get("job", {})
        failed_at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(letter.get("failed_at", 0)))
        out.write(
            f"{routing_id:<34} {failed_at:<20} {str(job.get('contact_id'))[:16]:<16} "
            f"{_queue(job)[:22]:<22} {letter.get('reason')}{_newer_note(latest, routing_id, job)}\n"
        )
    out.write(f"{len(letters)} dead letter(s)\n")
    return 0


def show_command(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """One dead letter in full (task message and reason) as JSON; 1 when there is none."""
    letter = _store(settings).dead_letter(args.routing_id)
    if letter is None:
        out.write(f"{args.routing_id}: not in the dead-letter list\n")
        return 1
    out.write(json.dumps({"routingId": args.routing_id, **letter}, indent=2) + "\n")
    return 0


def replay_command(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Publish the selected dead letters to the workers again (only routings still ``failed``); each
    replay becomes its contact's newest routing."""
    store = _store(settings)
    ids = _selected(args, store)
    if ids is None:
        out.write("name one or more routing ids, or --all\n")
        return 2
    celery = make_celery(settings)
    publisher = RoutingPublisher(
        store.redis,
        store,
        lambda message: celery.send_task(ROUTE_CONTACT_TASK, args=[message], queue=ROUTING_QUEUE),
        settings.dedupe_window_seconds,
        settings.dedupe_contact_intent_seconds,
    )
    failures = 0
    for routing_id in ids:
        if args.resend_signal:
            store.redis.delete(redis_keys.routing_signal_sent(routing_id))
        try:
            job = publisher.replay(routing_id)
        except (NotReplayable, EnqueueFailed) as exc:
            out.write(f"not replayed: {exc}\n")
            failures += 1
            continue
        out.write(f"replayed {routing_id}: contact {job.contact_id} -> {job.queue_label}\n")
    return 1 if failures else 0


def purge_command(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Drop the selected dead letters without replaying them."""
    store = _store(settings)
    if args.all:
        out.write(f"purged {store.purge_dead_letters()} dead letter(s)\n")
        return 0
    if not args.routing_ids:
        out.write("name one or more routing ids, or --all\n")
        return 2
    missing = [rid for rid in args.routing_ids if not store.remove_dead_letter(rid)]
    out.write(f"purged {len(args.routing_ids) - len(missing)} dead letter(s)\n")
    for routing_id in missing:
        out.write(f"{routing_id}: not in the dead-letter list\n")
    return 1 if missing else 0


def _selected(args: argparse.Namespace, store: RoutingStatusStore) -> list[str] | None:
    if args.all:
        return list(store.dead_letters())
    return args.routing_ids or None


def _newer_note(latest: LatestRoutings, routing_id: str, job: dict) -> str:
    """A warning when the contact has a newer routing: replaying this one (it becomes the
    contact's newest) would move the contact back to what the customer asked before."""
    newest = latest.get(str(job.get("contact_id")))
    if newest is None or newest.routing_id == routing_id:
        return ""
    return f" [contact has a newer routing {newest.routing_id} ({newest.intent}): a replay overrides it]"


def _backlog_line(backlog: Backlog) -> str:
    """How many routings wait in the backlog for a CXone call slot (empty when none)."""
    depth = backlog.depth()
    if not depth:
        return ""
    oldest = backlog.oldest_since()
    since = f", the oldest accepted {_age(time.time() - oldest)} ago" if oldest else ""
    return (
        f"{depth} routing(s) waiting in the backlog for a CXone call slot{since} "
        "(drained in arrival order at CXONE_RATE_LIMIT_PER_MINUTE)\n"
    )


def _queue(job: dict) -> str:
    return job.get("queue_name") or f"skill {job.get('skill_id')}"


def _next_try(next_attempt_at: float | None, now: float) -> str:
    """When a retrying routing runs again, worded as Flower words it ("in 13s"); "-" if unknown."""
    if not next_attempt_at:
        return "-"
    if next_attempt_at <= now:
        return "due"
    return "in " + _age(next_attempt_at - now)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
