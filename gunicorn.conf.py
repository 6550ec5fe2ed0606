"""gunicorn settings for the ingress: what command-line flags cannot express.

The Procfile still passes bind, workers, threads and timeouts as flags (flags win over this file);
gunicorn also reads this file by itself when started from the repository root. It adds:

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
from pathlib import Path

from gunicorn.glogging import Logger

from shared.forwarded import TrustedProxies, caller_address
from shared.logging_setup import restyle_handlers
from shared.settings import load_settings

_settings = load_settings()
#: The temporary directory this run made (and removes at exit), if it made one.
_private_metrics_dir: str | None = None


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


def child_exit(server, worker) -> None:
    """A worker died: its live gauges must stop counting (counters and histograms are kept)."""
    from prometheus_client import multiprocess  # imported late: after the directory is set

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    # A SIGHUP reload re-reads this file and forgets the path: the directory is then left in the
    # temp dir (small, and the OS cleans it).
    if _private_metrics_dir:
        shutil.rmtree(_private_metrics_dir, ignore_errors=True)


# Whose X-Forwarded-Proto/-For to believe: the edge or load balancer in front, nobody else. This is
# gunicorn's own default (it reads the same variable), spelled out because the access log below and
# the deployment docs depend on it. A list of addresses or networks; "*" trusts every peer.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


class RouterLogger(Logger):
    """gunicorn's logger, with the router's log format and secret redaction on its handlers, and
    the caller's address (not a trusted proxy's) in the access log's ``%(h)s``."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        self._trusted_proxies = TrustedProxies(cfg.forwarded_allow_ips)
        restyle_handlers([self.error_log, self.access_log], _settings, service="web")

    def atoms(self, resp, req, environ, request_time) -> dict:
        """gunicorn's access-log atoms; ``h`` is the caller as trusted proxies report it."""
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["h"] = caller_address(environ, self._trusted_proxies)
        return atoms


logger_class = RouterLogger
