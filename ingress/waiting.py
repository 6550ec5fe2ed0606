"""Waiting for a routing's outcome inside the webhook: what the sender asked for, and the waiter.

A sender asks to wait with ``?wait=N`` or ``Prefer: wait=N`` (RFC 7240, section 4.3): up to N
seconds, N a number from 0; more than the cap (``WEBHOOK_MAX_WAIT_SECONDS``, at most 7, inside
Cognigy's 8 s time-out) is capped; anything else is a 400 naming ``wait``.

The waiter never polls. Each ingress process has one :class:`OutcomeWaiter`: a background thread
that owns one pub/sub subscription to the routing outcomes channel
(``shared/routing/announcements.py``) and wakes, by routing id, the requests waiting for that
routing (a :class:`threading.Event` each). A request:

1. registers its event for the routing id (so an announcement from now on reaches it),
2. reads the record once: a terminal record is answered at once,
3. sleeps on its event until it is woken or its time is up, then re-reads the record to answer.

No wake-up is lost: an announcement published after step 1 is dispatched to the event, and one
published before step 2 is already in the record (the worker writes both in one transaction). While
the subscription is down (Redis restarting, the thread starting), announcements can be missed, so
every time it is (re)established the thread wakes *every* waiting request, and each re-reads its
record. A request woken for nothing (its routing still open) sleeps again for the time it has left.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from shared import redis_keys
from shared.routing.announcements import parse_announcement
from shared.routing.records import TERMINAL, RoutingRecord

log = logging.getLogger(__name__)

#: The most a sender may ask for: a Cognigy HTTP Request node gives up after 8 s.
MAX_WAIT_SECONDS = 7.0
#: States after which a routing never changes again. ``superseded`` (a newer routing for the same
#: contact won) is terminal too; it is spelled out so the waiter knows it before the records do.
FINISHED = frozenset((*TERMINAL, "superseded"))
#: What a broken Redis raises, from redis-py or the socket below it.
REDIS_ERRORS = (redis.RedisError, OSError)

# A non-negative decimal number: "5", "2.5", ".5", "1e3" (no sign, no "inf", no "nan").
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class InvalidWait(ValueError):
    """The wait asked for is not a number of seconds from 0; the message says what was sent."""


@dataclass(frozen=True)
class WaitRequest:
    """How long this webhook waits for its routing's outcome, and where the sender asked for it."""

    seconds: float
    #: ``query`` (``?wait=``) or ``prefer`` (the ``Prefer`` header).
    source: str

    def preference_applied(self) -> dict[str, str]:
        """The ``Preference-Applied`` header that says the ``Prefer: wait`` was honoured, if it was asked."""
        if self.source != "prefer":
            return {}
        return {"Preference-Applied": f"wait={self.seconds:g}"}


def requested_wait(
    query: Mapping[str, Sequence[str]], prefer_headers: Sequence[str], cap: float
) -> WaitRequest | None:
    """The wait this request asks for (the query parameter wins over the header), capped at ``cap``;
    None when it asks for none. Raises :class:`InvalidWait`.

    ``query`` maps each query parameter to its values (a werkzeug ``MultiDict.to_dict(flat=False)``),
    ``prefer_headers`` are the values of every ``Prefer`` header.
    """
    values = list(query.get("wait", ()))
    if len(values) > 1:
        raise InvalidWait("give wait once")
    if values:
        return WaitRequest(_seconds(values[0], cap), "query")
    asked = prefer_wait(prefer_headers)
    if asked is None:
        return None
    return WaitRequest(_seconds(asked, cap), "prefer")


def prefer_wait(headers: Sequence[str]) -> str | None:
    """The value of the first ``wait`` preference in ``Prefer`` headers (RFC 7240), or None.

    A header is a comma-separated list of ``token [= word] *(; parameter)``, where a word may be a
    quoted string; names are case-insensitive; other preferences (``respond-async``,
    ``return=minimal``, …) are ignored, and only the first ``wait`` counts (RFC 7240, section 2).
    """
    for preference in _split_outside_quotes(",".join(headers), ","):
        head = _split_outside_quotes(preference, ";")[0]
        name, has_value, value = head.partition("=")
        if name.strip().lower() != "wait":
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        return value if has_value else ""
    return None


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` where it is not inside a quoted string (backslash escapes)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _seconds(raw: str, cap: float) -> float:
    text = raw.strip()
    if not _NUMBER.fullmatch(text):
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        raise InvalidWait(
            f"must be a number of seconds from 0 (more than {cap:g} waits {cap:g}), got {shown!r}"
        )
    return min(float(text), cap)


# ----------------------------------------------------------------------------------- the waiter


@dataclass(frozen=True)
class Waited:
    """What a wait ended with: the last record read (None if none could be read) and whether Redis
    answered the last read (False: the record shown may be older than the routing)."""

    record: RoutingRecord | None
    redis_answered: bool

    @property
    def finished(self) -> bool:
        """The routing reached a terminal state (the answer is final)."""
        return self.record is not None and self.record.state in FINISHED


class OutcomeWaiter:
    """Wakes the requests of this process that wait for a routing's outcome; one per process.

    The subscriber thread starts on the first wait (in the process that serves it: gunicorn forks
    its workers before any request) and runs for the life of the process, reconnecting after a
    pause when Redis goes away.
    """

    def __init__(
        self, client: redis.Redis, reconnect_pause_seconds: float = 0.5, max_waiting: int | None = None
    ):
        self.redis = client
        self.reconnect_pause_seconds = reconnect_pause_seconds
        #: How many requests of this process may wait at once (None: no limit). A waiting request
        #: holds a server thread; gunicorn.conf.py sets this below the thread count, so threads are
        #: always left for webhooks that do not wait. Beyond it, a request is answered at once.
        self.max_waiting = max_waiting
        self._lock = threading.Lock()
        self._waiting: dict[str, set[threading.Event]] = {}
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._stopping = threading.Event()
        #: Set while the subscription is established (the tests wait on it).
        self.subscribed = threading.Event()

    def wait_for(
        self, routing_id: str, seconds: float, read: Callable[[str], RoutingRecord | None]
    ) -> Waited:
        """Wait up to ``seconds`` for ``routing_id`` to finish; ``read`` reads its record.

        Returns as soon as a read shows a terminal state, when the time is up (after a last read),
        or at once when Redis does not answer a read (with the last record read before). When
        ``max_waiting`` requests wait already, it reads the record once and does not wait.
        """
        deadline = time.monotonic() + seconds
        last: RoutingRecord | None = None
        with self._registered(routing_id) as woken:
            if woken is None:
                log.debug("%s requests wait already: answering without waiting", self.max_waiting)
                deadline = time.monotonic()
                woken = threading.Event()
            while True:
                try:
                    record = read(routing_id)
                except REDIS_ERRORS:
                    return Waited(last, redis_answered=False)
                last = record or last
                remaining = deadline - time.monotonic()
                if (record is not None and record.state in FINISHED) or remaining <= 0:
                    return Waited(last, redis_answered=True)
                woken.wait(remaining)
                woken.clear()

    @contextmanager
    def _registered(self, routing_id: str) -> Iterator[threading.Event | None]:
        """An event set when ``routing_id``'s outcome is announced (or the subscription restarts);
        None when ``max_waiting`` requests wait already."""
        self._ensure_running()
        event = threading.Event()
        with self._lock:
            admitted = self.max_waiting is None or self._count() < self.max_waiting
            if admitted:
                self._waiting.setdefault(routing_id, set()).add(event)
        if not admitted:
            yield None
            return
        try:
            yield event
        finally:
            with self._lock:
                events = self._waiting.get(routing_id)
                if events is not None:
                    events.discard(event)
                    if not events:
                        del self._waiting[routing_id]

    def waiting_count(self) -> int:
        """How many requests of this process are waiting now."""
        with self._lock:
            return self._count()

    def _count(self) -> int:  # the caller holds the lock
        return sum(len(events) for events in self._waiting.values())

    def _ensure_running(self) -> None:
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            if self._pid != os.getpid():  # a forked child: nothing of the parent's thread came along
                self._waiting.clear()
                self.subscribed.clear()
            self._pid = os.getpid()
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="outcome-subscriber", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the subscriber thread (tests; a process that exits needs nothing)."""
        self._stopping.set()
        try:  # wake it from its read (parse_announcement ignores an empty message)
            self.redis.publish(redis_keys.ROUTING_OUTCOMES, "")
        except REDIS_ERRORS:
            pass
        if self._thread is not None:
            self._thread.join(timeout)

    # ---------------------------------------------------------------- the subscriber thread

    def _run(self) -> None:
        while not self._stopping.is_set():
            pubsub = self.redis.pubsub()
            try:
                pubsub.subscribe(redis_keys.ROUTING_OUTCOMES)
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._dispatch(message)
            except REDIS_ERRORS as exc:
                if self.subscribed.is_set():
                    log.warning("outcome subscription lost (%s); reconnecting", exc.__class__.__name__)
            except Exception:  # never let the thread die: waiting requests depend on it
                log.exception("outcome subscriber failed; restarting it")
            finally:
                self.subscribed.clear()
                # Whatever was announced while the subscription was down is lost: let every
                # waiting request read its record now (Redis down: each then answers 202).
                self._wake_all()
                _close_quietly(pubsub)
            self._stopping.wait(self.reconnect_pause_seconds)

    def _dispatch(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "subscribe":
            # (Re)subscribed: announcements from now on arrive; earlier ones may have been missed.
            self.subscribed.set()
            self._wake_all()
        elif kind == "message":
            announcement = parse_announcement(message.get("data") or b"")
            if announcement is not None:
                self._wake(announcement.routing_id)

    def _wake(self, routing_id: str) -> None:
        with self._lock:
            events = list(self._waiting.get(routing_id, ()))
        for event in events:
            event.set()

    def _wake_all(self) -> None:
        with self._lock:
            events = [event for group in self._waiting.values() for event in group]
        for event in events:
            event.set()


def _close_quietly(pubsub: redis.client.PubSub) -> None:
    try:
        pubsub.close()
    except REDIS_ERRORS:
        pass
