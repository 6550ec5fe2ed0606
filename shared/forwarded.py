"""The caller's address behind a reverse proxy, believed only from the proxies we trust.

Behind the TLS edge (deploy/caddy/Caddyfile) or a load balancer, gunicorn's peer is the proxy, so
``REMOTE_ADDR`` and gunicorn's ``%(h)s`` access-log atom name the proxy for every request. The proxy
says who called in ``X-Forwarded-For``, a list each proxy appends its own peer to. Anybody can send
that header, so it means something only when the connection comes from a proxy we trust; then the
caller is the rightmost address that is not one of our proxies (the leftmost entries were written
by the caller and can be anything).

The trusted proxies are gunicorn's ``forwarded_allow_ips`` (``FORWARDED_ALLOW_IPS``), the same list
that decides whether gunicorn believes ``X-Forwarded-Proto`` for ``wsgi.url_scheme``, so the scheme
and the address are believed from the same peers. ``*`` trusts every peer (for a platform whose
router addresses are unknown and which is the only way in); then the rightmost entry, the one the
router wrote, is the caller.

gunicorn.conf.py uses :func:`caller_address` for the access log's ``%(h)s``. Imports nothing of
ours: gunicorn's master loads it before the workers exist.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The peers whose ``X-Forwarded-*`` headers are believed: addresses, networks or ``*``."""

    def __init__(self, allowed: Iterable[str]):
        entries = [entry.strip() for entry in allowed if entry and entry.strip()]
        self.any_peer = "*" in entries
        self.networks: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in entries if entry != "*"
        )

    def trusts_peer(self, address: str) -> bool:
        """Whether a connection from ``address`` may tell us who called (``*`` trusts everyone)."""
        if self.any_peer:
            return True
        parsed = parse_address(address)
        return parsed is not None and self.lists(parsed)

    def lists(self, address: _Address) -> bool:
        """Whether ``address`` is one of the proxies named in the list (``*`` names none)."""
        return any(address in network for network in self.networks)


def parse_address(text: str) -> _Address | None:
    """An IP address from an ``X-Forwarded-For`` entry (``203.0.113.7``, ``203.0.113.7:5123``,
    ``2001:db8::1``, ``[2001:db8::1]:443``); None for anything else (``unknown``, garbage)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has two colons or more
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def caller_address(wsgi_environ: Mapping[str, object], trusted: TrustedProxies) -> str:
    """Who called: the peer itself, unless the peer is a trusted proxy that said who called.

    From a trusted peer, ``X-Forwarded-For`` is read right to left, skipping our own proxies; the
    first other address is the caller. An entry that is not an address stops the walk and the peer
    is answered: nothing we cannot vouch for is logged as the caller.
    """
    peer = str(wsgi_environ.get("REMOTE_ADDR") or "-")
    if not trusted.trusts_peer(peer):
        return peer
    hops = [hop for hop in str(wsgi_environ.get("HTTP_X_FORWARDED_FOR") or "").split(",") if hop.strip()]
    address: _Address | None = None
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            return peer
        if not trusted.lists(address):
            return str(address)
    # Every hop is one of our proxies (or there were none): the leftmost is the farthest we know.
    return str(address) if address is not None else peer
