"""Where CXone credentials may be sent: over https to a NICE host, or to this machine.

An access key secret goes in the token request's body and a bearer token on every API call, so the
URLs they go to must be CXone's. NICE serves CXone under ``niceincontact.com``,
``nice-incontact.com``, ``nicecxone.com`` and, for the US government area, ``nicecxone-gov.com``
(e.g. ``cxone.niceincontact.com``, ``api-na1.niceincontact.com``, ``api-c52.nice-incontact.com``;
see https://developer.niceincontact.com/Documentation/APIAuthenticationAndAuthorization). A host is
trusted when it is one of the trusted domains or a subdomain of one, compared label by label:
``evilniceincontact.com`` and ``niceincontact.com.evil.io`` are not.

Loopback hosts (``localhost``, 127.0.0.0/8, ``::1``) are always trusted, plain http included: they
are the sandbox and the tests, and nothing on the network can see that traffic. An entry written
``http://name`` trusts exactly that host over plain http too (the sandbox container of the compose
demo, reached by its service name on a private network).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

#: NICE's CXone domains (CXONE_TRUSTED_HOSTS's default).
DEFAULT_TRUSTED_HOSTS = ("niceincontact.com", "nice-incontact.com", "nicecxone.com", "nicecxone-gov.com")
#: What a host name may be made of once lower-cased (IDNA names arrive as xn-- labels).
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_PLAIN_HTTP = "http://"


def normalise_entry(raw: str) -> str:
    """One CXONE_TRUSTED_HOSTS entry, lower-cased: ``domain`` or ``http://host``; ValueError if it
    is neither (a path, a port, a wildcard in the middle, an https:// prefix, ...)."""
    entry = raw.strip().lower()
    plain_http = entry.startswith(_PLAIN_HTTP)
    host = entry[len(_PLAIN_HTTP) :] if plain_http else entry
    if not plain_http:
        # "*.niceincontact.com" and ".niceincontact.com" mean what "niceincontact.com" means.
        host = host.removeprefix("*.").removeprefix(".")
    host = host.rstrip(".")
    if not _HOST_NAME.fullmatch(host):
        raise ValueError(
            f"{raw.strip()!r} is not a host name (write a domain such as niceincontact.com, "
            "or http://name to allow plain http to exactly that host)"
        )
    return _PLAIN_HTTP + host if plain_http else host


def is_loopback(host: str) -> bool:
    """``localhost``, an address in 127.0.0.0/8, or ``::1``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class TrustedHosts:
    """The hosts CXone credentials may go to, from CXONE_TRUSTED_HOSTS entries."""

    #: Trusted with their subdomains, over https only.
    domains: tuple[str, ...]
    #: Trusted exactly (no subdomains), over http as well as https.
    plain_http_hosts: tuple[str, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> TrustedHosts:
        """Read entries such as ``niceincontact.com`` and ``http://cxone-sandbox``."""
        normalised = [normalise_entry(entry) for entry in entries]
        return cls(
            domains=tuple(e for e in normalised if not e.startswith(_PLAIN_HTTP)),
            plain_http_hosts=tuple(e[len(_PLAIN_HTTP) :] for e in normalised if e.startswith(_PLAIN_HTTP)),
        )

    def problem_with(self, url: str) -> str | None:
        """Why credentials must not be sent to ``url``, or None when it is a trusted CXone URL."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").rstrip(".")
        except ValueError:
            return "not a valid URL"
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not host:
            return "not an http(s) URL with a host"
        if is_loopback(host):
            return None
        if host in self.plain_http_hosts:
            return None  # named by the operator for plain http (and so https is fine too)
        if not _HOST_NAME.fullmatch(host) or not self._in_a_trusted_domain(host):
            return f"host {host} is not in CXONE_TRUSTED_HOSTS ({self.describe()})"
        if scheme != "https":
            return "plain http: CXone credentials only travel over https (loopback excepted)"
        return None

    def _in_a_trusted_domain(self, host: str) -> bool:
        return any(host == domain or host.endswith("." + domain) for domain in self.domains)

    def describe(self) -> str:
        """The entries, as an operator would write them."""
        return ", ".join([*self.domains, *(_PLAIN_HTTP + host for host in self.plain_http_hosts)]) or "none"
