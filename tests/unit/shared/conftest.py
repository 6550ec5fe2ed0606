"""Fixtures for the shared modules: a mocked CXone (fake Redis and the clock are top-level).

CXone is faked with ``responses`` (the client's own ``requests`` session still runs; only the
transport is replaced), and any request that no test registered fails, so no test reaches a real
network.
"""

from __future__ import annotations

import pytest
import responses

from tests.support.cxone import FakeCXoneAuth


@pytest.fixture
def cxone_auth(http: responses.RequestsMock) -> FakeCXoneAuth:
    """The fake CXone auth endpoints (token lifetime 3600 s)."""
    return FakeCXoneAuth(http)
