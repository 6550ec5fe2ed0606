"""Demo secrets (shared/demo_secrets.py): allowed against the CXone sandbox, refused with a real tenant."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cxone_sandbox.config import SandboxConfig
from shared import demo_secrets
from shared.demo_secrets import (
    DEMO_REDIS_PASSWORD,
    DEMO_SECRETS,
    cxone_target_is_sandbox,
    demo_secrets_in_effect,
    demo_secrets_problem,
    is_sandbox_host,
    require_no_demo_secrets,
)
from shared.settings import Settings, SettingsError

REPO = Path(__file__).resolve().parents[3]
REAL_TENANT = "https://cxone.niceincontact.com"
SANDBOX = "http://127.0.0.1:8088"

#: Each demo secret as an operator's environment would carry it (beside values of their own).
CARRIERS = {
    "WEBHOOK_API_KEYS": "our-own-webhook-key-0123456789,demo-webhook-key",
    "FLOWER_BASIC_AUTH": "ops:demo-flower-password",
    "REDIS_URL": "redis://:demo-redis-password@redis:6379/0",
    "CXONE_CLIENT_ID": "sandbox-client",
    "CXONE_CLIENT_SECRET": "sandbox-client-secret",
    "CXONE_ACCESS_KEY_ID": "SANDBOXKEYID",
    "CXONE_ACCESS_KEY_SECRET": "sandbox/key+secret=",
}


def settings(**environ: str) -> Settings:
    return Settings.from_env(environ)


def test_every_demo_secret_has_a_carrier_here() -> None:
    assert {secret.variable for secret in DEMO_SECRETS} == set(CARRIERS)


@pytest.mark.parametrize("variable", sorted(CARRIERS))
def test_a_demo_secret_with_a_real_tenant_is_refused_naming_its_variable(variable: str) -> None:
    configured = settings(CXONE_AUTH_URL=REAL_TENANT, **{variable: CARRIERS[variable]})

    with pytest.raises(SettingsError) as caught:
        require_no_demo_secrets(configured)

    message = str(caught.value)
    assert f"{variable} carries the " in message
    assert f"CXONE_AUTH_URL={REAL_TENANT}" in message
    assert [s.variable for s in demo_secrets_in_effect(configured)] == [variable]


def test_with_no_cxone_url_set_the_target_is_nices_default_host() -> None:
    # CXONE_AUTH_URL unset means cxone.niceincontact.com: a real tenant.
    assert demo_secrets_problem(settings(WEBHOOK_API_KEYS="demo-webhook-key")) is not None


def test_every_demo_secret_found_is_named_at_once() -> None:
    problem = demo_secrets_problem(settings(CXONE_AUTH_URL=REAL_TENANT, **CARRIERS))

    assert problem is not None
    assert re.findall(r"([A-Z_]+) carries", problem) == [s.variable for s in DEMO_SECRETS]
    for value in ("demo-webhook-key", "demo-flower-password", "sandbox-client-secret", "sandbox/key+secret="):
        assert value not in problem  # the variable is named, the value is not repeated


@pytest.mark.parametrize(
    "target",
    [
        SANDBOX,
        "http://localhost:8088",
        "http://[::1]:8088",
        "http://127.8.9.10:1",
        "http://cxone-sandbox:8088",
    ],
)
def test_against_the_sandbox_the_demo_values_are_what_the_demo_needs(target: str) -> None:
    configured = settings(CXONE_AUTH_URL=target, **CARRIERS)

    assert cxone_target_is_sandbox(configured)
    require_no_demo_secrets(configured)  # no error
    assert len(demo_secrets_in_effect(configured)) == len(DEMO_SECRETS)


@pytest.mark.parametrize(
    ("auth_url", "api_url"),
    [
        # A pinned API host that is not the sandbox gets the token: a real tenant.
        (SANDBOX, "https://api-na1.niceincontact.com"),
        (REAL_TENANT, "http://127.0.0.1:8088"),
        # Names that only look like the sandbox.
        ("http://cxone-sandbox.example.com", None),
        ("http://localhost.evil.example", None),
        ("http://127.0.0.1.nip.io", None),
        ("http://10.0.0.5:8088", None),
    ],
)
def test_only_loopback_or_the_compose_service_counts_as_the_sandbox(
    auth_url: str, api_url: str | None
) -> None:
    environ = {"CXONE_AUTH_URL": auth_url, "WEBHOOK_API_KEYS": "demo-webhook-key"}
    if api_url:
        environ["CXONE_API_URL"] = api_url
    configured = Settings.from_env(environ)

    assert not cxone_target_is_sandbox(configured)
    with pytest.raises(SettingsError, match="WEBHOOK_API_KEYS carries the demo webhook key"):
        require_no_demo_secrets(configured)


@pytest.mark.parametrize(
    ("host", "sandbox"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("LOCALHOST", True),
        ("cxone-sandbox", True),
        ("api-na1.niceincontact.com", False),
        ("0.0.0.0", False),  # noqa: S104 - an address to listen on, not the sandbox
        ("", False),
        (None, False),
    ],
)
def test_is_sandbox_host(host: str | None, sandbox: bool) -> None:
    assert is_sandbox_host(host) is sandbox


def test_own_values_with_a_real_tenant_pass() -> None:
    own = settings(
        CXONE_AUTH_URL=REAL_TENANT,
        WEBHOOK_API_KEYS="our-own-webhook-key-0123456789",
        FLOWER_BASIC_AUTH="admin:another-password",  # the demo user name alone is no secret
        REDIS_URL="redis://:s3cr3t-redis@redis:6379/0",
        CXONE_CLIENT_ID="our-app",
        CXONE_CLIENT_SECRET="our-secret",
    )

    assert demo_secrets_in_effect(own) == []
    require_no_demo_secrets(own)


def test_a_url_encoded_demo_redis_password_is_still_the_demo_password() -> None:
    configured = settings(
        CXONE_AUTH_URL=REAL_TENANT, REDIS_URL="redis://:demo%2Dredis%2Dpassword@redis:6379/0"
    )

    assert [s.variable for s in demo_secrets_in_effect(configured)] == ["REDIS_URL"]


# ---------------------------------------------------------------- one list, its copies kept equal


def _demo_env() -> dict[str, str]:
    lines = (REPO / "config" / "demo.env").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_every_value_of_config_demo_env_that_is_a_secret_is_in_the_list() -> None:
    demo = Settings.from_env({**_demo_env(), "REDIS_URL": f"redis://:{DEMO_REDIS_PASSWORD}@redis:6379/0"})

    # Every secret of the list is in demo.env (the Redis password comes from compose), so a real
    # tenant with demo.env under it and nothing of its own is refused for every one of them.
    assert [s.variable for s in demo_secrets_in_effect(demo)] == [s.variable for s in DEMO_SECRETS]


def test_the_sandbox_defaults_are_the_listed_credentials() -> None:
    sandbox = SandboxConfig()
    listed = {secret.variable: secret.value for secret in DEMO_SECRETS}

    assert listed["CXONE_CLIENT_ID"] == sandbox.client_id
    assert listed["CXONE_CLIENT_SECRET"] == sandbox.client_secret
    assert listed["CXONE_ACCESS_KEY_ID"] == sandbox.access_key_id
    assert listed["CXONE_ACCESS_KEY_SECRET"] == sandbox.access_key_secret


def test_compose_defaults_the_redis_password_to_the_listed_demo_password() -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    defaults = set(re.findall(r"\$\{REDIS_PASSWORD:-([^}]*)\}", text))

    assert defaults == {DEMO_REDIS_PASSWORD}
    compose = yaml.safe_load(text)
    assert (
        compose["services"]["redis"]["environment"]["REDIS_PASSWORD"]
        == f"${{REDIS_PASSWORD:-{DEMO_REDIS_PASSWORD}}}"
    )


# ---------------------------------------------------------------- the command scripts/run-flower runs


def test_the_command_exits_2_naming_the_variable(monkeypatch, capsys) -> None:
    monkeypatch.setattr(
        demo_secrets, "load_settings", lambda: settings(FLOWER_BASIC_AUTH="admin:demo-flower-password")
    )

    assert demo_secrets.main(["run-flower"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("run-flower: refusing to start: demo values with a real CXone tenant")
    assert "FLOWER_BASIC_AUTH carries the demo Flower password" in err


def test_the_command_exits_0_against_the_sandbox(monkeypatch, capsys) -> None:
    monkeypatch.setattr(
        demo_secrets,
        "load_settings",
        lambda: settings(CXONE_AUTH_URL=SANDBOX, FLOWER_BASIC_AUTH="admin:demo-flower-password"),
    )

    assert demo_secrets.main(["run-flower"]) == 0
    assert capsys.readouterr().err == ""
