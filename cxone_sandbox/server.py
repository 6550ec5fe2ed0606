"""Serving the sandbox over HTTP: a threaded werkzeug server, in the foreground or a thread."""

from __future__ import annotations

import functools
import threading
from types import TracebackType

import flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_app
from .config import SandboxConfig


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without the access-log line per request (errors are still logged)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the access log; --verbose uses the stock handler instead."""


def make_sandbox_server(
    host: str, port: int, config: SandboxConfig | None = None, verbose: bool = False
) -> BaseWSGIServer:
    """A bound, not yet serving, threaded server around a fresh sandbox app (port 0: any free)."""
    handler = WSGIRequestHandler if verbose else QuietRequestHandler
    return make_server(host, port, create_app(config), threaded=True, request_handler=handler)


class SandboxServer:
    """A sandbox serving from a background thread; stop() shuts it down and frees the port."""

    def __init__(self, server: BaseWSGIServer) -> None:
        self._server = server
        # A short poll interval keeps stop() quick; tests start and stop many servers.
        self._thread = threading.Thread(
            target=functools.partial(server.serve_forever, poll_interval=0.05),
            name=f"cxone-sandbox:{server.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The port actually bound."""
        return self._server.port

    @property
    def url(self) -> str:
        """Base URL to reach the sandbox, e.g. http://127.0.0.1:54321."""
        return f"http://{self._server.host}:{self.port}"

    @property
    def app(self) -> flask.Flask:
        """The Flask app being served (sandbox_state(server.app) gives its state)."""
        return self._server.app  # type: ignore[return-value]

    def stop(self) -> None:
        """Stop serving, wait for the serving thread and close the socket. Safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve_in_thread(
    host: str = "127.0.0.1", port: int = 0, config: SandboxConfig | None = None
) -> SandboxServer:
    """Start a sandbox on host:port (0: any free port) in a daemon thread; it listens on return."""
    return SandboxServer(make_sandbox_server(host, port, config))
