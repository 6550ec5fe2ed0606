"""gunicorn settings for the ingress: every one of them, so each place that starts the web process
(the Procfile, the Dockerfile, docker-compose.yml) runs plain ``gunicorn ingress.wsgi:app``.

gunicorn reads ``./gunicorn.conf.py`` from its working directory by itself (the repository root, or
``/app`` in the image); start it from elsewhere with ``--config PATH``. Command-line flags and
``GUNICORN_CMD_ARGS`` still win over this file, for a one-off change. See gunicorn's settings
reference: https://docs.gunicorn.org/en/stable/settings.html

- **Where and how many**, from the environment as the Procfile contract says: listens on ``$PORT``
  (default 8000) on all interfaces; ``WEB_CONCURRENCY`` processes (default 2), each with up to
  ``WEB_THREADS`` threads (default 1000, the ``gthread`` worker). A webhook that waits for its
  outcome (``?wait=``) holds a thread while it sleeps, so there are many threads, started only when
  needed; ``post_worker_init`` lets at most 90 % of them wait (and answers the rest at once), so
  webhooks that do not wait always find a thread. Why gthread and not gevent: docs/performance.md.
  The access log goes to stdout.
- **Metrics shared by all worker processes.** prometheus_client's multiprocess mode keeps each
  process's values in files under ``PROMETHEUS_MULTIPROC_DIR`` and ``GET /metrics`` sums them. When
  the variable is unset, a private temporary directory is made for this run and removed at exit;
  a directory you set is emptied of old values at start. It is set here, in the master, before any
  worker imports prometheus_client (which decides its mode at import).
- ``child_exit``: a dead worker's files are marked dead (``multiprocess.mark_process_dead``).
- **gunicorn's own lines** (start-up, worker boots, the access log) in the same format as the
  application's (``LOG_FORMAT``), with the same redaction of secrets.
- **Behind a proxy** (the TLS edge, a load balancer, a platform's router): ``X-Forwarded-Proto``
  (``wsgi.url_scheme``) and ``X-Forwarded-For`` are believed only from ``FORWARDED_ALLOW_IPS``, and
  the access log's ``%(h)s`` is then the caller, not the proxy (``shared/forwarded.py``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from gunicorn.glogging import Logger

from shared.forwarded import TrustedProxies, caller_address
from shared.logging_setup import restyle_handlers
from shared.settings import load_settings

_settings = load_settings()
#: The temporary directory this run made (and removes at exit), if it made one.
_private_metrics_dir: str | None = None


def process_count(environ: Mapping[str, str], name: str, default: int) -> int:
    """``environ[name]`` as a whole number of at least 1, ``default`` when unset or blank.

    Raises ValueError naming the variable otherwise (gunicorn then prints it and does not start).
    """
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name} must be a whole number of 1 or more, got {raw!r}")
    return value


bind = f"0.0.0.0:{_settings.port}"
workers = process_count(os.environ, "WEB_CONCURRENCY", 2)
worker_class = "gthread"
threads = process_count(os.environ, "WEB_THREADS", 1000)
# A request takes milliseconds; a worker silent for 30 s is stuck and is replaced. On SIGTERM,
# requests in flight get 10 s to finish (compose's stop_grace_period for web is 20 s).
timeout = 30
graceful_timeout = 10
accesslog = "-"
# Worker heartbeats in memory, not on a disk that can stall them (containers' overlay disks do), as
# gunicorn's docs advise; gunicorn makes its files there with mkstemp. Elsewhere: the temp directory.
_MEMORY_DIR = "/dev/shm"  # noqa: S108
worker_tmp_dir = _MEMORY_DIR if os.path.isdir(_MEMORY_DIR) else None
# No gunicornc control socket: nothing uses it, every gunicorn of one user would share its default
# path under $HOME (the tests and the benchmark start several), and the image's user has no home.
control_socket_disable = True
# Whose X-Forwarded-Proto/-For to believe: the edge or load balancer in front, nobody else. This is
# gunicorn's own default (it reads the same variable), spelled out because the access log
# (RouterLogger) and the deployment docs depend on it. A list of addresses or networks; "*" trusts every peer.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def on_starting(server) -> None:
    """Before the first worker forks: make sure every worker writes metrics to the same place."""
    global _private_metrics_dir
    configured = _settings.prometheus_multiproc_dir
    if configured:
        Path(configured).mkdir(parents=True, exist_ok=True)
        for stale in Path(configured).glob("*.db"):  # a previous run's values would be summed in
            stale.unlink(missing_ok=True)
    else:
        _private_metrics_dir = tempfile.mkdtemp(prefix="router-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _private_metrics_dir
        server.log.info("metrics of all workers are shared in %s", _private_metrics_dir)


def waiting_allowed(thread_count: int) -> int:
    """How many requests of one process may wait for an outcome: all threads but a tenth (at least
    two), which stay free for the webhooks that do not wait."""
    return max(0, thread_count - max(2, thread_count // 10))


def post_worker_init(worker) -> None:
    """In each worker, once the app is loaded: cap how many of its requests wait at once."""
    ingress = getattr(worker.wsgi, "extensions", {}).get("ingress")
    if ingress is not None and worker.cfg.worker_class_str in ("gthread", "sync"):
        ingress.waiter.max_waiting = waiting_allowed(worker.cfg.threads)


def child_exit(server, worker) -> None:
    """A worker died: its live gauges must stop counting (counters and histograms are kept)."""
    from prometheus_client import multiprocess  # imported late: after the directory is set

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """The master is stopping: remove the private metrics directory this run made, if any."""
    # A SIGHUP reload re-reads this file and forgets the path: the directory is then left in the
    # temp dir (small, and the OS cleans it).
    if _private_metrics_dir:
        shutil.rmtree(_private_metrics_dir, ignore_errors=True)


class RouterLogger(Logger):
    """gunicorn's logger, with the router's log format and secret redaction on its handlers, and
    the caller's address (not a trusted proxy's) in the access log's ``%(h)s``."""

    def setup(self, cfg) -> None:
        """gunicorn's handlers, then the router's format and redaction on each of them."""
        super().setup(cfg)
        self._trusted_proxies = TrustedProxies(cfg.forwarded_allow_ips)
        restyle_handlers([self.error_log, self.access_log], _settings, service="web")

    def atoms(self, resp, req, environ, request_time) -> dict:
        """gunicorn's access-log atoms; ``h`` is the caller as trusted proxies report it."""
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["h"] = caller_address(environ, self._trusted_proxies)
        return atoms


logger_class = RouterLogger
