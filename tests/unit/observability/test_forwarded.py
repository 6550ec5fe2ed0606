"""shared/forwarded.py: who called, believed from trusted proxies only."""

from __future__ import annotations

import pytest

from shared.forwarded import TrustedProxies, caller_address, parse_address

EDGE = "172.30.80.2"
EDGE_ONLY = TrustedProxies([EDGE])


def environ(peer: str, forwarded_for: str | None = None) -> dict[str, str]:
    env = {"REMOTE_ADDR": peer}
    if forwarded_for is not None:
        env["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return env


def test_a_trusted_proxy_names_the_caller():
    assert caller_address(environ(EDGE, "198.51.100.23"), EDGE_ONLY) == "198.51.100.23"


def test_anyone_else_is_the_caller_whatever_header_it_sends():
    assert caller_address(environ("203.0.113.50", "198.51.100.23"), EDGE_ONLY) == "203.0.113.50"


def test_without_the_header_the_peer_is_the_caller():
    assert caller_address(environ(EDGE), EDGE_ONLY) == EDGE


def test_what_the_caller_put_in_front_is_ignored():
    # A proxy that appends: the caller sent "10.0.0.1", the edge added the address it saw.
    assert caller_address(environ(EDGE, "10.0.0.1, 198.51.100.23"), EDGE_ONLY) == "198.51.100.23"


def test_our_own_proxies_are_skipped_from_the_right():
    chain = TrustedProxies(["10.1.0.0/16", EDGE])
    # caller → load balancer 10.1.2.3 → edge: the edge appends the balancer's address.
    assert caller_address(environ(EDGE, "198.51.100.23, 10.1.2.3"), chain) == "198.51.100.23"


def test_a_hop_that_is_not_an_address_is_not_logged_as_the_caller():
    assert caller_address(environ(EDGE, "198.51.100.23, <script>"), EDGE_ONLY) == EDGE


def test_only_proxies_in_the_header_gives_the_leftmost():
    assert caller_address(environ(EDGE, "172.30.80.2"), EDGE_ONLY) == EDGE


def test_star_trusts_every_peer_and_takes_what_the_router_wrote():
    anyone = TrustedProxies(["*"])
    assert caller_address(environ("10.9.8.7", "1.2.3.4, 198.51.100.23"), anyone) == "198.51.100.23"


def test_gunicorns_default_trusts_loopback_only():
    default = TrustedProxies(["127.0.0.1", "::1"])
    assert caller_address(environ("127.0.0.1", "198.51.100.23"), default) == "198.51.100.23"
    assert caller_address(environ("::1", "2001:db8::7"), default) == "2001:db8::7"
    assert caller_address(environ("127.0.0.2", "198.51.100.23"), default) == "127.0.0.2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7:5123 ", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("unknown", None),
        ("", None),
        ("999.1.1.1", None),
    ],
)
def test_forwarded_entries_are_parsed(text, expected):
    parsed = parse_address(text)
    assert (str(parsed) if parsed else None) == expected
