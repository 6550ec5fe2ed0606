"""Demo settings never reach production: web (gunicorn), Flower (scripts/run-flower) and the doctor
refuse demo secrets with a real CXone tenant, and compose's Redis requires a password.

The real-tenant cases never reach NICE: the processes stop before any CXone call (and the doctor is
given no CXone credentials, so it makes none).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import requests

from tests.integration.stack import REPO, free_port, wait_until
from tests.integration.test_edge import compose_config

REAL_TENANT = "https://cxone.niceincontact.com"
DEMO_KEY = "demo-webhook-key"


def clean_env(redis_url: str, **extra: str) -> dict[str, str]:
    """An environment with nothing of the caller's CXONE_*, WEBHOOK_*, FLOWER_* or REDIS_*."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "HOME": "/nonexistent",
        "REDIS_URL": redis_url,
        "ROUTES_FILE": str(REPO / "config" / "routes.example.yaml"),
        "WEB_CONCURRENCY": "1",
        **extra,
    }


def gunicorn(env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "ingress.wsgi:app"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ---------------------------------------------------------------- web


def test_web_with_the_demo_webhook_key_and_a_real_tenant_exits_naming_it(redis_url):
    env = clean_env(redis_url, PORT=str(free_port()), WEBHOOK_API_KEYS=DEMO_KEY, CXONE_AUTH_URL=REAL_TENANT)

    result = gunicorn(env)

    assert result.returncode != 0
    assert "WEBHOOK_API_KEYS carries the demo webhook key" in result.stderr
    assert f"CXONE_AUTH_URL={REAL_TENANT}" in result.stderr
    assert "Worker failed to boot" in result.stderr


def test_web_with_the_demo_webhook_key_against_the_sandbox_serves(redis_url, tmp_path):
    port = free_port()
    env = clean_env(
        redis_url, PORT=str(port), WEBHOOK_API_KEYS=DEMO_KEY, CXONE_AUTH_URL="http://127.0.0.1:8088"
    )
    with (tmp_path / "web.log").open("wb") as log:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "ingress.wsgi:app"], cwd=REPO, env=env, stdout=log, stderr=log
        )
    try:
        wait_until(lambda: _status(f"http://127.0.0.1:{port}/readyz") == 200, 30, what="the web to be ready")
        assert web.poll() is None
    finally:
        web.terminate()
        web.wait(20)


# ---------------------------------------------------------------- Flower


def run_flower(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["scripts/run-flower"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def test_flower_with_the_demo_password_and_a_real_tenant_refuses_to_start(redis_url):
    env = clean_env(
        redis_url,
        FLOWER_PORT=str(free_port()),
        FLOWER_BASIC_AUTH="admin:demo-flower-password",
        CXONE_AUTH_URL=REAL_TENANT,
        CXONE_CLIENT_ID="our-app",
        CXONE_CLIENT_SECRET="our-secret-0123456789",
        CXONE_ACCESS_KEY_ID="OURKEYID",
        CXONE_ACCESS_KEY_SECRET="our-key-secret",
    )

    result = run_flower(env)

    assert result.returncode == 2
    assert result.stderr.startswith("run-flower: refusing to start: demo values with a real CXone tenant")
    assert "FLOWER_BASIC_AUTH carries the demo Flower password" in result.stderr
    assert "demo-flower-password" not in result.stderr


def test_flower_names_every_demo_value_the_real_tenant_still_has(redis_url):
    # What a real-tenant .env that set only CXONE_AUTH_URL would leave: config/demo.env underneath.
    demo = dict(
        line.split("=", 1)
        for line in (REPO / "config" / "demo.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    env = clean_env(
        redis_url,
        **{**demo, "REDIS_URL": redis_url, "CXONE_AUTH_URL": REAL_TENANT, "FLOWER_PORT": str(free_port())},
    )

    result = run_flower(env)

    assert result.returncode == 2
    for variable in (
        "WEBHOOK_API_KEYS",
        "FLOWER_BASIC_AUTH",
        "CXONE_CLIENT_ID",
        "CXONE_CLIENT_SECRET",
        "CXONE_ACCESS_KEY_ID",
        "CXONE_ACCESS_KEY_SECRET",
    ):
        assert f"{variable} carries" in result.stderr


# ---------------------------------------------------------------- the doctor


def test_the_doctor_fails_on_demo_secrets_with_a_real_tenant(redis_url):
    env = clean_env(
        redis_url,
        WEBHOOK_API_KEYS=DEMO_KEY,
        FLOWER_BASIC_AUTH="admin:demo-flower-password",
        CXONE_AUTH_URL=REAL_TENANT,
    )

    result = subprocess.run(
        [sys.executable, "-m", "ops", "doctor", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    report = json.loads(result.stdout)
    assert result.returncode == 1
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["demo secrets"]["status"] == "fail"
    assert "WEBHOOK_API_KEYS carries the demo webhook key" in checks["demo secrets"]["detail"]
    assert "FLOWER_BASIC_AUTH carries the demo Flower password" in checks["demo secrets"]["detail"]
    assert checks["cxone token"]["status"] == "skip"  # no credentials given: NICE was never called


# ---------------------------------------------------------------- compose's Redis


def test_compose_redis_requires_the_password_its_clients_carry(tmp_path):
    for password in ("demo-redis-password", "0123456789abcdef0123"):
        env = {} if password == "demo-redis-password" else {"REDIS_PASSWORD": password}
        services = compose_config("docker-compose.yml", **env)["services"]
        redis_service = services["redis"]
        assert redis_service["command"][-2:] == ["--requirepass", password]
        for name in ("web", "worker", "flower"):
            assert services[name]["environment"]["REDIS_URL"] == f"redis://:{password}@redis:6379/0"
        assert redis_service["environment"]["REDIS_PASSWORD"] == password

    # Run Redis as compose runs it (here on a free port) and the healthcheck as Docker runs it.
    services = compose_config("docker-compose.yml")["services"]
    port = free_port()
    argv = services["redis"]["command"] + ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        url = services["web"]["environment"]["REDIS_URL"].replace("@redis:6379", f"@127.0.0.1:{port}")
        wait_until(lambda: _pings(url), 15, what="compose's Redis")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()  # no password, no answer

        kind, healthcheck = services["redis"]["healthcheck"]["test"]
        assert kind == "CMD-SHELL"
        # Docker gets "$REDIS_PASSWORD" ($$ is compose's escape); redis-cli here needs the port.
        shell = healthcheck.replace("$$", "$").replace("redis-cli", f"redis-cli -p {port}")
        healthy = subprocess.run(
            ["sh", "-c", shell], env={"PATH": "/usr/bin:/bin", **services["redis"]["environment"]}
        )
        unhealthy = subprocess.run(
            ["sh", "-c", shell], env={"PATH": "/usr/bin:/bin", "REDIS_PASSWORD": "wrong"}
        )
        assert healthy.returncode == 0
        assert unhealthy.returncode != 0  # redis-cli itself exits 0 on NOAUTH: the check must not
    finally:
        server.terminate()
        server.wait(10)


def test_an_operators_redis_url_still_wins_in_compose():
    services = compose_config("docker-compose.yml", REDIS_URL="rediss://:managed@redis.example.com:6380/0")[
        "services"
    ]

    assert services["worker"]["environment"]["REDIS_URL"] == "rediss://:managed@redis.example.com:6380/0"


def _pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.ConnectionError:
        return False


def _status(url: str) -> int | None:
    try:
        return requests.get(url, timeout=3).status_code
    except requests.RequestException:
        return None
