"""Demo secrets: public values that only the CXone sandbox may meet, never a real tenant.

``make run`` and ``docker compose up`` load ``config/demo.env`` into every process, and compose
gives Redis a demo password, so a real tenant's ``.env`` that forgets one setting silently keeps a
value printed in the README: the webhook key ``demo-webhook-key`` (anyone could route contacts),
Flower's demo password (anyone could read every routing and revoke tasks), the sandbox's
credentials, the demo Redis password. This module is the one list of them. With a real CXone tenant
the web process and Flower refuse to start while any of them is in effect, naming the variable, and
``python -m ops doctor`` fails on them; against the sandbox they are exactly what the demo needs.

The CXone target is the sandbox when ``CXONE_AUTH_URL`` (and ``CXONE_API_URL``, when set) point at a
loopback host (``127.0.0.0/8``, ``::1``, ``localhost``: ``make run``, the tests) or at the compose
service ``cxone-sandbox``. Nothing else counts: NICE's hosts are never named so, and a marker
variable would travel to production with the rest of ``demo.env``.

``python -m shared.demo_secrets PROCESS`` runs the same check from a shell script (``scripts/run-flower``):
exit 0 when nothing is in the way, 2 with the reason on stderr.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from shared.settings import Settings, SettingsError, load_settings

#: The compose service of the CXone sandbox (docker-compose.yml), as the other containers reach it.
SANDBOX_SERVICE_HOST = "cxone-sandbox"
DEMO_WEBHOOK_KEY = "demo-webhook-key"
DEMO_FLOWER_PASSWORD = "demo-flower-password"  # noqa: S105 - public on purpose: it is refused below
#: docker-compose.yml's default for REDIS_PASSWORD (Redis's requirepass, and REDIS_URL's password).
DEMO_REDIS_PASSWORD = "demo-redis-password"  # noqa: S105


@dataclass(frozen=True)
class DemoSecret:
    """One public demo value: the variable that may carry it, and where in that variable's value."""

    variable: str
    value: str
    what: str
    #: The parts of the setting compared with ``value`` (each key of a list, the password of a URL).
    parts: Callable[[Settings], Iterable[str]]

    def in_effect(self, settings: Settings) -> bool:
        """``settings`` carry this value."""
        return any(part == self.value for part in self.parts(settings))


def _redis_password(settings: Settings) -> list[str]:
    password = urlsplit(settings.redis_url).password
    return [unquote(password)] if password else []


#: Every demo secret. The values are also in config/demo.env, docker-compose.yml and the sandbox's
#: defaults (cxone_sandbox/config.py); a test keeps those copies equal to these.
DEMO_SECRETS: tuple[DemoSecret, ...] = (
    DemoSecret("WEBHOOK_API_KEYS", DEMO_WEBHOOK_KEY, "the demo webhook key", lambda s: s.webhook_api_keys),
    DemoSecret(
        "FLOWER_BASIC_AUTH",
        DEMO_FLOWER_PASSWORD,
        "the demo Flower password",
        lambda s: [s.flower_basic_auth.partition(":")[2]],
    ),
    DemoSecret(
        "REDIS_URL",
        DEMO_REDIS_PASSWORD,
        "the demo Redis password (docker compose: set REDIS_PASSWORD in .env)",
        _redis_password,
    ),
    DemoSecret("CXONE_CLIENT_ID", "sandbox-client", "the sandbox's client id", lambda s: [s.cxone_client_id]),
    DemoSecret(
        "CXONE_CLIENT_SECRET",
        "sandbox-client-secret",
        "the sandbox's client secret",
        lambda s: [s.cxone_client_secret],
    ),
    DemoSecret(
        "CXONE_ACCESS_KEY_ID",
        "SANDBOXKEYID",
        "the sandbox's access key id",
        lambda s: [s.cxone_access_key_id],
    ),
    DemoSecret(
        "CXONE_ACCESS_KEY_SECRET",
        "sandbox/key+secret=",
        "the sandbox's access key secret",
        lambda s: [s.cxone_access_key_secret],
    ),
)


def is_sandbox_host(host: str | None) -> bool:
    """``host`` is loopback (``127.0.0.0/8``, ``::1``, ``localhost``) or the compose sandbox service."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    if host in ("localhost", SANDBOX_SERVICE_HOST):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cxone_target_is_sandbox(settings: Settings) -> bool:
    """Every CXone URL the settings name points at the sandbox (so no token can reach a real tenant)."""
    urls = [settings.cxone_auth_url] + ([settings.cxone_api_url] if settings.cxone_api_url else [])
    return all(is_sandbox_host(urlsplit(url).hostname) for url in urls)


def demo_secrets_in_effect(settings: Settings) -> list[DemoSecret]:
    """The demo secrets ``settings`` carry, in :data:`DEMO_SECRETS` order."""
    return [secret for secret in DEMO_SECRETS if secret.in_effect(settings)]


def demo_secrets_problem(settings: Settings) -> str | None:
    """Why these settings must not be served (demo secrets with a real tenant), or None."""
    found = demo_secrets_in_effect(settings)
    if not found or cxone_target_is_sandbox(settings):
        return None
    target = settings.cxone_auth_url
    return (
        f"demo values with a real CXone tenant (CXONE_AUTH_URL={target}): "
        + "; ".join(f"{secret.variable} carries {secret.what}" for secret in found)
        + ". Set your own values in .env or the deployment's environment: the demo values (config/demo.env) "
        "are public and only allowed while CXone is the sandbox"
    )


def require_no_demo_secrets(settings: Settings) -> None:
    """Refuse to start (:class:`SettingsError` naming each variable) with demo secrets and a real tenant."""
    problem = demo_secrets_problem(settings)
    if problem is not None:
        raise SettingsError(problem)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shared.demo_secrets PROCESS``: 0 when PROCESS may start, 2 (and why, on stderr) if not."""
    args = list(sys.argv[1:] if argv is None else argv)
    process = args[0] if args else "this process"
    try:
        require_no_demo_secrets(load_settings())
    except SettingsError as exc:
        print(f"{process}: refusing to start: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
