"""The real stack for integration tests: Redis, the CXone sandbox, gunicorn and Celery workers.

Every part is a real process talking real HTTP or the Redis protocol on loopback, started the way the
Procfile starts it. Logs go to files under the test's tmp dir and are printed when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests

from shared.task_queue import ROUTING_QUEUE

REPO = Path(__file__).resolve().parents[2]
#: Rows of counts recorded by the guarantee tests, printed as one table after the run.
GUARANTEE_RESULTS: list[dict] = []
API_KEY = "integration-test-key"
SANDBOX_CREDENTIALS = {
    "CXONE_CLIENT_ID": "sandbox-client",
    "CXONE_CLIENT_SECRET": "sandbox-client-secret",
    "CXONE_ACCESS_KEY_ID": "SANDBOXKEYID",
    "CXONE_ACCESS_KEY_SECRET": "sandbox/key+secret=",
}


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.2, what: str = "condition"
) -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds.

    The timeout is a safety net against a hang, never a speed check: keep it far above what the
    wait takes on a busy machine (processes start slowly when every core is taken).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def wait_ready(process: Process, timeout: float = 120) -> None:
    """Until a Celery worker logged that it takes tasks (the timeout only guards against a hang)."""
    wait_until(
        lambda: " ready." in process.log_path.read_text(errors="replace"),
        timeout,
        what=f"{process.name} to be ready",
    )


@dataclass
class Process:
    """A child process with its log file."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)

    def kill_hard(self) -> None:
        """SIGKILL the whole process group: no shutdown handler, no acks, as in an OOM kill."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Stack:
    """Start and drive the parts; ``close()`` stops everything it started."""

    redis_url: str
    workdir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    sandbox_url: str = ""
    web_url: str = ""

    # ------------------------------------------------------------------ processes

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "WEBHOOK_"))}
        base.update(
            {
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
                "REDIS_URL": self.redis_url,
                "WEBHOOK_API_KEYS": API_KEY,
                "ROUTES_FILE": str(REPO / "config" / "routes.example.yaml"),
                "CXONE_AUTH_URL": self.sandbox_url,
                "CXONE_RATE_LIMIT_PER_MINUTE": "100000",
                "ROUTING_RETRY_WINDOW_SECONDS": "300",
                "LOG_LEVEL": "INFO",
                **SANDBOX_CREDENTIALS,
            }
        )
        base.update(self.env_overrides)
        base.update(extra)
        return base

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Process:
        log_path = self.workdir / f"{name}.log"
        with log_path.open("ab") as handle:  # the child keeps its own descriptor
            popen = subprocess.Popen(
                argv, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        process = Process(name, popen, log_path)
        self.processes.append(process)
        return process

    def start_sandbox(self) -> None:
        port = free_port()
        self.sandbox_url = f"http://127.0.0.1:{port}"
        self.spawn(
            "sandbox",
            [sys.executable, "-m", "cxone_sandbox", "--host", "127.0.0.1", "--port", str(port)],
            self.env(),
        )
        wait_until(lambda: _answers(self.sandbox_url + "/sandbox/faults"), 60, what="the sandbox")

    def start_web(self, workers: int = 2) -> None:
        port = free_port()
        self.web_url = f"http://127.0.0.1:{port}"
        self.spawn(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                "ingress.wsgi:app",
            ],
            self.env(),
        )
        wait_until(lambda: _answers(self.web_url + "/healthz"), 60, what="the ingress")

    def start_worker(
        self, name: str = "w1", concurrency: int = 8, queues: str = ROUTING_QUEUE, **extra_env: str
    ) -> Process:
        """A Celery worker as the Procfile runs it (threads pool), consuming ``queues``."""
        return self.spawn(
            name,
            [
                sys.executable,
                "-m",
                "celery",
                "--app",
                "worker.app",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                str(concurrency),
                "--queues",
                queues,
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--events",
                "--hostname",
                f"{name}@%h",
            ],
            self.env(**extra_env),
        )

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} -----\n{p.log_tail()}" for p in self.processes)

    # ------------------------------------------------------------------ traffic

    def post_webhook(
        self, body: dict, key: str = API_KEY, session: requests.Session | None = None
    ) -> requests.Response:
        return (session or requests).post(
            self.web_url + "/webhook/cognigy/route", json=body, headers={"X-API-Key": key}, timeout=10
        )

    def routing(self, routing_id: str) -> dict:
        response = requests.get(
            f"{self.web_url}/routings/{routing_id}", headers={"X-API-Key": API_KEY}, timeout=5
        )
        response.raise_for_status()
        return response.json()

    def set_faults(self, **knobs) -> dict:
        response = requests.post(self.sandbox_url + "/sandbox/faults", json=knobs, timeout=5)
        response.raise_for_status()
        return response.json()

    def sandbox_stats(self, summary: bool = False) -> dict:
        params = {"summary": "1"} if summary else None
        return requests.get(self.sandbox_url + "/sandbox/stats", params=params, timeout=10).json()

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code < 500
    except requests.RequestException:
        return False


def chat_body(
    contact_id: str, intent: str = "sales_inquiry", score: float = 0.9, input_id: str | None = None
) -> dict:
    """A Cognigy input-object body for a digital (chat) contact."""
    body = {
        "sessionId": f"session-{contact_id}",
        "channel": "webchat3",
        "intent": intent,
        "intentScore": score,
        "text": "customer words stay out of the task",
        "data": {"contactId": contact_id},
    }
    if input_id:
        body["inputId"] = input_id
    return body


def dump(obj: object) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)[:4000]


@dataclass
class PrivateRedis:
    """A redis-server of the test's own (append-only file on), so it can be killed and restarted."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    #: fsync every write (appendfsync always) so even SIGKILL loses nothing that was answered.
    durable: bool = True
    #: Port of the primary this server replicates (a replica), or None (a primary).
    replica_of: int | None = None
    #: Sentinel promotes the replica with the lowest priority number (Redis's default is 100).
    replica_priority: int = 100

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # appendfsync always: every write is on disk before Redis answers it, so a 202 that was
        # answered after the write survives even SIGKILL. (everysec may lose the last second.)
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"] if self.durable else ["--appendonly", "no"]
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--dir",
                    str(self.workdir),
                    *persistence,
                    "--maxmemory-policy",
                    "noeviction",
                    "--save",
                    "",
                    # A primary starts a full sync at once instead of waiting 5 s for more replicas
                    # to join it (there is one), as in docker-compose.ha.yml.
                    "--repl-diskless-sync-delay",
                    "0",
                    *(["--replicaof", "127.0.0.1", str(self.replica_of)] if self.replica_of else []),
                    "--replica-priority",
                    str(self.replica_priority),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._answers, 60, what="the private redis-server")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def _answers(self) -> bool:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


@dataclass
class PrivateSentinel:
    """A redis-server in Sentinel mode watching the primary at ``primary_port`` as ``master``.

    Tuned like ``docker-compose.ha.yml`` (down after 5 s, failover timeout 5 s here), not Sentinel's
    production defaults of 30 s and 3 minutes, so a failover test finishes in minutes. Not shorter:
    a sentinel counts a server down when a PING (the first one, on a new link, too) goes unanswered
    that long, and on a busy machine 1 s was seen to pass right after a switch. The sentinels then
    failed over a second time, to the old primary that had just been restarted, and made the server
    holding the data its replica."""

    workdir: Path
    primary_port: int
    master: str = "router"
    quorum: int = 2
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "sentinel.conf"  # Sentinel rewrites its file: one per sentinel
        config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.workdir}\n"
            f"sentinel monitor {self.master} 127.0.0.1 {self.primary_port} {self.quorum}\n"
            f"sentinel down-after-milliseconds {self.master} 5000\n"
            f"sentinel failover-timeout {self.master} 5000\n"
            f"sentinel parallel-syncs {self.master} 1\n"
        )
        with (self.workdir / "sentinel.log").open("ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", str(config), "--sentinel"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self.knows_primary, 60, what="a sentinel to watch the primary")

    def primary(self) -> tuple[str, int] | None:
        """The primary this sentinel names now (None if it does not answer)."""
        client = redis.Redis(
            port=self.port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True
        )
        try:
            host, port = client.execute_command("SENTINEL", "get-master-addr-by-name", self.master)
            return host, int(port)
        except (redis.RedisError, TypeError, ValueError):
            return None
        finally:
            client.close()

    def knows_primary(self) -> bool:
        return self.primary() is not None

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@dataclass
class ReplicatedRedis:
    """A primary, one replica and three sentinels (Sentinel's smallest sound setup), all private.

    ``second_replica`` adds a ``spare``: a replica the sentinels promote only if ``replica`` cannot
    be (a higher priority number), so ``replica`` is the one promoted either way, and the spare
    becomes its replica in the failover itself."""

    workdir: Path
    master: str = "router"
    second_replica: bool = False
    primary: PrivateRedis = field(init=False)
    replica: PrivateRedis = field(init=False)
    spare: PrivateRedis | None = field(init=False, default=None)
    sentinels: list[PrivateSentinel] = field(init=False)

    def __post_init__(self) -> None:
        # Append-only, as in docker-compose.ha.yml: a server that a supervisor restarts must come
        # back with its data. Restarted empty, it is a primary holding nothing, and if the sentinels
        # ever promote it (a second failover) every server syncs the empty set (Redis's warning on
        # replication with persistence off and automatic restarts).
        self.primary = PrivateRedis(self.workdir / "primary")
        self.replica = PrivateRedis(self.workdir / "replica", replica_of=self.primary.port)
        if self.second_replica:
            self.spare = PrivateRedis(
                self.workdir / "spare", replica_of=self.primary.port, replica_priority=200
            )
        self.sentinels = [
            PrivateSentinel(self.workdir / f"sentinel-{i}", self.primary.port, self.master) for i in range(3)
        ]

    def start(self, with_sentinels: bool = True) -> None:
        self.primary.start()
        for replica in self.replicas:
            replica.start()
        wait_until(self.replica_in_sync, 60, what="the replicas to sync with the primary")
        if not with_sentinels:
            return
        for sentinel in self.sentinels:
            sentinel.start()
        # Every sentinel must know the replica before the primary can fail over to it.
        wait_until(self._sentinels_see_the_replica, 60, what="the sentinels to discover the replica")

    def env(self, db: int = 0) -> dict[str, str]:
        """The router's settings for this topology (REDIS_URL keeps only the database)."""
        return {
            "REDIS_URL": f"redis://127.0.0.1:{self.primary.port}/{db}",
            "REDIS_SENTINELS": ",".join(s.address for s in self.sentinels),
            "REDIS_SENTINEL_MASTER": self.master,
        }

    @property
    def replicas(self) -> list[PrivateRedis]:
        return [self.replica, *([self.spare] if self.spare else [])]

    def replica_in_sync(self) -> bool:
        """Every replica's link is up and the primary counts it (``online``: a WAIT counts it too;
        with diskless sync the primary does only after the replica's first acknowledgement)."""
        for replica in self.replicas:
            client = redis.Redis(port=replica.port, socket_timeout=1, decode_responses=True)
            try:
                if client.info("replication").get("master_link_status") != "up":
                    return False
            except redis.RedisError:
                return False
            finally:
                client.close()
        return all(self.replicates(replica, self.primary) for replica in self.replicas)

    def _sentinels_see_the_replica(self) -> bool:
        for sentinel in self.sentinels:
            client = redis.Redis(port=sentinel.port, socket_timeout=1, decode_responses=True)
            try:
                replicas = client.execute_command("SENTINEL", "replicas", self.master)
            except redis.RedisError:
                return False
            finally:
                client.close()
            if len(replicas or []) < len(self.replicas):
                return False
        return True

    @staticmethod
    def replicates(server: PrivateRedis, primary: PrivateRedis) -> bool:
        """``server`` is an online replica of ``primary`` (as the primary counts it: a WAIT does)."""
        client = redis.Redis(port=primary.port, socket_timeout=1, decode_responses=True)
        try:
            seen = client.info("replication")
        except redis.RedisError:
            return False
        finally:
            client.close()
        return any(
            isinstance(value, dict) and value.get("state") == "online" and value.get("port") == server.port
            for key, value in seen.items()
            if key.startswith("slave")
        )

    def old_primary_replicates(self) -> bool:
        """The restarted old primary is an online replica of the promoted one."""
        return self.replicates(self.primary, self.replica)

    def failed_back(self) -> bool:
        """Some sentinel names the old primary again: a second failover, to the server restarted
        after the kill (its logs say why; a sentinel that does not answer names nobody)."""
        return any(s.primary() == ("127.0.0.1", self.primary.port) for s in self.sentinels)

    def promoted(self) -> bool:
        """Every sentinel names the replica as the primary now."""
        return all(s.primary() == ("127.0.0.1", self.replica.port) for s in self.sentinels)

    def logs(self, lines: int = 80) -> str:
        """The servers' and sentinels' log tails: what Sentinel decided, and when, if a test fails."""
        parts = []
        workdirs = [server.workdir for server in [self.primary, *self.replicas]]
        for workdir in [*workdirs, *(sentinel.workdir for sentinel in self.sentinels)]:
            for log in sorted(workdir.glob("*.log")):  # the directory names the server
                text = log.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"----- {workdir.name} ({log.name}) -----\n" + "\n".join(text))
        return "\n".join(parts)

    def kill(self) -> None:
        for sentinel in self.sentinels:
            sentinel.kill()
        for replica in self.replicas:
            replica.kill()
        self.primary.kill()
