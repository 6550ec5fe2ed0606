"""Every connection to Redis, built in this one place from the settings: plain, TLS or Sentinel.

The ingress, the workers, their metrics, Flower (through the worker's Celery app) and the ops tools
all reach Redis through :func:`redis_client` and Celery's options from :func:`celery_broker_options`,
so a deployment switches from one Redis to a Sentinel-managed primary with a replica by settings
alone (``REDIS_SENTINELS``, ``REDIS_SENTINEL_MASTER``; ``REDIS_URL`` still gives the database number
and the password), and to TLS by a ``rediss://`` URL (``REDIS_SSL_CA_CERTS``, ``REDIS_SSL_CERT_REQS``).

Nothing may wait on a primary that died without closing its sockets: every client has a socket
timeout, a connect timeout and a health check, and the sentinels are asked with short timeouts too.
With Sentinel, redis-py asks the sentinels for the primary on every new connection and drops a
connection that finds its server demoted to a replica (``READONLY``), so the clients follow a
failover by themselves; kombu's Sentinel transport does the same for the broker.

:class:`ReplicaAck` is the durability side: ``WAIT`` until ``REDIS_MIN_REPLICAS_ACK`` replicas have
every write made so far, so the ingress answers ``202`` only for a routing a failover cannot lose.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from shared import redis_keys
from shared.broker_transport import SENTINEL_TRANSPORT, TRANSPORT
from shared.settings import Settings

#: How long a sentinel may take to answer "who is the primary?" before the next one is asked.
SENTINEL_SOCKET_TIMEOUT = 0.5

_CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}


def uses_sentinel(settings: Settings) -> bool:
    """True when the primary is found through Sentinel (``REDIS_SENTINELS`` is set)."""
    return bool(settings.redis_sentinels)


def uses_tls(settings: Settings) -> bool:
    """True for a ``rediss://`` URL: every connection (sentinels included) is TLS."""
    return settings.redis_url.startswith("rediss://")


def sentinel_addresses(settings: Settings) -> list[tuple[str, int]]:
    """``REDIS_SENTINELS`` as ``(host, port)`` pairs (the parser checked the form)."""
    pairs = []
    for entry in settings.redis_sentinels:
        host, _, port = entry.rpartition(":")
        pairs.append((host.strip("[]"), int(port)))
    return pairs


def tls_options(settings: Settings) -> dict[str, Any]:
    """redis-py's TLS arguments for a ``rediss://`` URL, else none."""
    if not uses_tls(settings):
        return {}
    options: dict[str, Any] = {"ssl_cert_reqs": settings.redis_ssl_cert_reqs}
    if settings.redis_ssl_ca_certs:
        options["ssl_ca_certs"] = settings.redis_ssl_ca_certs
    return options


def _fast_retry(retries: int) -> Retry:
    # A quick retry rides out a connection dropped by a failover (the next one asks the sentinels
    # again); the ingress takes none (Cognigy's retry after a 503 does that job, and a webhook
    # must never wait out several timeouts), a worker one.
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), retries)


def redis_client(
    settings: Settings,
    *,
    socket_timeout: float = 2.0,
    socket_connect_timeout: float = 1.0,
    health_check_interval: int = 10,
    retries: int = 0,
    decode_responses: bool = False,
    max_connections: int | None = None,
) -> redis.Redis:
    """A client for the router's Redis (the primary, found through Sentinel when configured).

    Every call gives up after about ``socket_timeout`` (times ``retries + 1``), so a dead primary
    is answered by an error, never a hang; a retry takes a fresh connection, which with Sentinel
    may already be the new primary (timeouts are retried too: ``retry_on_timeout``).
    """
    common: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
        "socket_keepalive": True,
        "health_check_interval": health_check_interval,
        "retry": _fast_retry(retries),
        "retry_on_timeout": True,
        "decode_responses": decode_responses,
    }
    if max_connections is not None:
        common["max_connections"] = max_connections
    if not uses_sentinel(settings):
        return redis.Redis.from_url(settings.redis_url, **common, **tls_options(settings))
    return sentinel(settings).master_for(
        settings.redis_sentinel_master, redis_class=redis.Redis, **common, **_url_credentials(settings)
    )


def sentinel(settings: Settings) -> Sentinel:
    """redis-py's Sentinel for ``REDIS_SENTINELS`` (short timeouts, its password, TLS if rediss)."""
    return Sentinel(
        sentinel_addresses(settings),
        sentinel_kwargs=sentinel_connection_kwargs(settings),
        **tls_flag(settings),
    )


def tls_flag(settings: Settings) -> dict[str, Any]:
    """TLS arguments plus ``ssl=True`` (what a client built without a URL needs)."""
    options = tls_options(settings)
    return {"ssl": True, **options} if options else {}


def sentinel_connection_kwargs(settings: Settings) -> dict[str, Any]:
    """Arguments for a client of one sentinel (its password, short timeouts, TLS for rediss)."""
    kwargs: dict[str, Any] = {
        "socket_timeout": SENTINEL_SOCKET_TIMEOUT,
        "socket_connect_timeout": SENTINEL_SOCKET_TIMEOUT,
        **tls_flag(settings),
    }
    if settings.redis_sentinel_password:
        kwargs["password"] = settings.redis_sentinel_password
    return kwargs


def _url_credentials(settings: Settings) -> dict[str, Any]:
    """Database number, user and password of ``REDIS_URL`` (with Sentinel, its host is ignored),
    plus TLS for a rediss URL."""
    parsed = redis.connection.parse_url(settings.redis_url)
    found = {name: parsed[name] for name in ("db", "username", "password") if parsed.get(name) is not None}
    return {**found, **tls_flag(settings)}


def celery_broker_options(settings: Settings) -> dict[str, Any]:
    """Celery's ``broker_url``, ``broker_transport``, ``broker_use_ssl`` and the connection part of
    ``broker_transport_options`` for these settings (the caller adds the delivery options).

    With Sentinel the URL is ``sentinel://:password@h1:p/db;sentinel://:password@h2:p/db`` (kombu
    reads the password and the database from it, and asks each sentinel in turn), and the options
    name the monitored primary and the sentinels' own password.
    """
    transport_options: dict[str, Any] = {
        # A broker that vanishes without closing the socket must not hang a publish.
        "socket_timeout": 5,
        "socket_connect_timeout": 2,
        "socket_keepalive": True,
        "health_check_interval": 10,
        "retry_on_timeout": True,
    }
    options: dict[str, Any] = {"broker_transport_options": transport_options}
    if uses_tls(settings):
        # kombu wants these as a dict beside the URL (its _connparams reads conninfo.ssl).
        options["broker_use_ssl"] = {
            "ssl_cert_reqs": _CERT_REQS[settings.redis_ssl_cert_reqs],
            **({"ssl_ca_certs": settings.redis_ssl_ca_certs} if settings.redis_ssl_ca_certs else {}),
        }
    if not uses_sentinel(settings):
        options["broker_url"] = settings.redis_url
        options["broker_transport"] = TRANSPORT
        return options
    credentials = redis.connection.parse_url(settings.redis_url)
    auth = ""
    if credentials.get("password"):
        auth = f"{credentials.get('username') or ''}:{credentials['password']}@"
    db = credentials.get("db") or 0
    options["broker_url"] = ";".join(
        f"sentinel://{auth}{_host_for_url(host)}:{port}/{db}" for host, port in sentinel_addresses(settings)
    )
    options["broker_transport"] = SENTINEL_TRANSPORT
    transport_options["master_name"] = settings.redis_sentinel_master
    transport_options["sentinel_kwargs"] = sentinel_connection_kwargs(settings)
    return options


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class NotEnoughReplicas(redis.ConnectionError):
    """Fewer replicas than ``REDIS_MIN_REPLICAS_ACK`` confirmed the writes in time: a failover now
    could lose them. A ConnectionError, so every caller treats it as "Redis unavailable"."""


@dataclass(frozen=True)
class ReplicaAck:
    """``WAIT`` for ``required`` replicas (``REDIS_MIN_REPLICAS_ACK``) to hold every write so far.

    Redis's ``WAIT`` covers the writes of the connection that sends it. This one writes a small
    marker and waits on the same connection (a pipeline), and since a primary replicates its writes
    in order, a replica that has the marker has every write made before it on any connection: the
    routing record, its duplicate keys, and the task message kombu published.
    """

    client: redis.Redis
    required: int
    timeout_seconds: float

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings) -> ReplicaAck:
        return cls(client, settings.redis_min_replicas_ack, settings.redis_replica_ack_timeout_seconds)

    def confirm(self) -> int:
        """Return how many replicas confirmed; raise :class:`NotEnoughReplicas` when fewer than
        required did within the timeout (nothing is asked when none are required)."""
        if self.required <= 0:
            return 0
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(redis_keys.REPLICA_ACK_MARKER)
        pipe.wait(self.required, max(1, int(self.timeout_seconds * 1000)))
        acked = int(pipe.execute()[-1])
        if acked < self.required:
            raise NotEnoughReplicas(
                f"{acked} of the {self.required} replica(s) REDIS_MIN_REPLICAS_ACK asks for confirmed "
                f"the writes within {self.timeout_seconds:g}s"
            )
        return acked
