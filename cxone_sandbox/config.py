"""Sandbox settings: the only module that reads the environment and the command line."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088


@dataclass(frozen=True)
class SandboxConfig:
    """Identity of the fake tenant: credentials, token lifetime and the base URL it advertises."""

    client_id: str = "sandbox-client"
    # Well-known throwaway values: the sandbox guards nothing, and tests must know them.
    client_secret: str = "sandbox-client-secret"  # noqa: S105
    access_key_id: str = "SANDBOXKEYID"
    # '/', '+' and '=' on purpose: a client that forgets to url-encode the form body fails here.
    access_key_secret: str = "sandbox/key+secret="  # noqa: S105
    tenant_id: str = "11111111-2222-3333-4444-555555555555"
    business_unit_id: int = 4600123
    token_ttl_seconds: int = 3600
    # None: advertise the scheme and host the request arrived on (right for tests and port 0).
    public_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SandboxConfig:
        """Read SANDBOX_* variables, falling back to the defaults above for unset ones."""
        defaults = cls()
        return cls(
            client_id=environ.get("SANDBOX_CLIENT_ID", defaults.client_id),
            client_secret=environ.get("SANDBOX_CLIENT_SECRET", defaults.client_secret),
            access_key_id=environ.get("SANDBOX_ACCESS_KEY_ID", defaults.access_key_id),
            access_key_secret=environ.get("SANDBOX_ACCESS_KEY_SECRET", defaults.access_key_secret),
            tenant_id=environ.get("SANDBOX_TENANT_ID", defaults.tenant_id),
            token_ttl_seconds=_positive_int(environ, "SANDBOX_TOKEN_TTL_SECONDS", defaults.token_ttl_seconds),
            public_url=environ.get("SANDBOX_PUBLIC_URL") or None,
        )


@dataclass(frozen=True)
class ServeOptions:
    """Where the command-line server listens and whether it logs every request."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    verbose: bool = False


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    """Parse an integer variable, failing with a message that names the variable."""
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def parse_command_line(
    argv: Sequence[str] | None, environ: Mapping[str, str]
) -> tuple[ServeOptions, SandboxConfig]:
    """Combine flags and SANDBOX_* variables (flags win) into server options and tenant config."""
    parser = argparse.ArgumentParser(
        prog="python -m cxone_sandbox", description="In-memory stand-in for the NICE CXone API."
    )
    parser.add_argument("--host", default=environ.get("SANDBOX_HOST", DEFAULT_HOST))
    parser.add_argument("--port", type=int, default=None, help=f"default {DEFAULT_PORT}")
    parser.add_argument("--public-url", default=None, help="base URL advertised in discovery")
    parser.add_argument("--verbose", action="store_true", help="log one line per request")
    args = parser.parse_args(argv)
    try:
        port = args.port if args.port is not None else _port_from_env(environ)
        config = SandboxConfig.from_env(environ)
    except ValueError as error:
        parser.error(str(error))
    public_url = args.public_url or config.public_url
    # A wildcard address is not reachable by that name; leave None so requests supply the host.
    if public_url is None and args.host not in ("0.0.0.0", "::", ""):  # noqa: S104
        public_url = f"http://{args.host}:{port}"
    config = replace(config, public_url=public_url)
    return ServeOptions(host=args.host, port=port, verbose=args.verbose), config


def _port_from_env(environ: Mapping[str, str]) -> int:
    """SANDBOX_PORT, or the default port."""
    raw = environ.get("SANDBOX_PORT")
    if not raw:
        return DEFAULT_PORT
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"SANDBOX_PORT must be an integer, got {raw!r}") from None
