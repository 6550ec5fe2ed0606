"""Which URLs CXone credentials may go to: https on a NICE domain (label by label), or loopback."""

from __future__ import annotations

import pytest

from shared.cxone.trust import DEFAULT_TRUSTED_HOSTS, TrustedHosts, is_loopback, normalise_entry

NICE = TrustedHosts.from_entries(DEFAULT_TRUSTED_HOSTS)


@pytest.mark.parametrize(
    "url",
    [
        "https://cxone.niceincontact.com",
        "https://cxone.niceincontact.com/auth/token",
        "https://api-na1.niceincontact.com",
        "https://api-c52.nice-incontact.com/inContactAPI",
        "https://api-de-na2.nicecxone-gov.com",
        "https://na1.nicecxone.com:443/x",
        "https://niceincontact.com",  # the domain itself
        "https://API-NA1.NiceInContact.COM",  # host names are not case-sensitive
        "https://api-na1.niceincontact.com./",  # the fully qualified form, trailing dot
    ],
)
def test_https_on_nice_domains_and_their_subdomains_is_trusted(url: str) -> None:
    assert NICE.problem_with(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://evilniceincontact.com",  # a substring, not a subdomain
        "https://niceincontact.com.evil.io",  # a NICE name as a prefix of another domain
        "https://api-na1.niceincontact.co",
        "https://nice-incontact.com-evil.net",
        "https://niceincontact.com@evil.example/auth/token",  # userinfo: the host is evil.example
        "https://evil.example#@api-na1.niceincontact.com",
        "https://api%2eniceincontact.com",  # percent-encoded dot: never a host of ours
        "https://10.0.0.5",
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1.nip.io",  # a name that resolves to loopback is still a name
    ],
)
def test_other_hosts_are_refused(url: str) -> None:
    problem = NICE.problem_with(url)

    assert problem is not None and "not in CXONE_TRUSTED_HOSTS" in problem


@pytest.mark.parametrize(
    "url",
    [
        "http://cxone.niceincontact.com",
        "http://api-na1.niceincontact.com/dfo/3.0",
        "HTTP://niceincontact.com",
    ],
)
def test_plain_http_is_refused_even_on_a_nice_host(url: str) -> None:
    assert (
        NICE.problem_with(url) == "plain http: CXone credentials only travel over https (loopback excepted)"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8088",
        "http://127.8.9.10",
        "https://127.0.0.1",
        "http://localhost:5000/auth/token",
        "http://[::1]:8088",
    ],
)
def test_loopback_is_always_trusted_over_http_too(url: str) -> None:
    assert NICE.problem_with(url) is None
    assert TrustedHosts(domains=()).problem_with(url) is None


@pytest.mark.parametrize("url", ["ftp://cxone.niceincontact.com", "cxone.niceincontact.com", "https://", ""])
def test_what_is_not_an_http_url_is_refused(url: str) -> None:
    assert NICE.problem_with(url) == "not an http(s) URL with a host"


def test_an_http_entry_trusts_exactly_that_host_over_plain_http() -> None:
    hosts = TrustedHosts.from_entries(["niceincontact.com", "http://cxone-sandbox"])

    assert hosts.problem_with("http://cxone-sandbox:8088/auth/token") is None
    assert hosts.problem_with("https://cxone-sandbox:8088") is None
    assert hosts.problem_with("http://api.cxone-sandbox:8088") is not None  # no subdomains
    assert hosts.problem_with("http://cxone-sandbox.evil.io") is not None
    assert hosts.describe() == "niceincontact.com, http://cxone-sandbox"


@pytest.mark.parametrize(
    ("raw", "entry"),
    [
        ("NiceInContact.com", "niceincontact.com"),
        ("*.nicecxone.com", "nicecxone.com"),
        (".nicecxone.com", "nicecxone.com"),
        ("niceincontact.com.", "niceincontact.com"),
        (" http://CXone-Sandbox ", "http://cxone-sandbox"),
    ],
)
def test_entries_are_normalised(raw: str, entry: str) -> None:
    assert normalise_entry(raw) == entry


@pytest.mark.parametrize(
    "raw", ["https://niceincontact.com", "niceincontact.com/", "nice*.com", "host:443", "", "a..b", "*"]
)
def test_entries_that_are_not_host_names_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="is not a host name"):
        normalise_entry(raw)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("127.0.0.1", True), ("127.255.0.1", True), ("::1", True), ("128.0.0.1", False)],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
