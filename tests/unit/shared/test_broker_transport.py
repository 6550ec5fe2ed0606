"""A detached broker channel raises a connection error (handled) instead of killing the worker."""

from __future__ import annotations

import pytest
import redis

from shared.broker_transport import Channel
from shared.settings import Settings
from shared.task_queue import make_celery


class _Detached:
    client = None  # what kombu leaves behind after closing the connection


@pytest.mark.parametrize("transport", [None, _Detached()])
def test_a_detached_channel_raises_a_connection_error(transport):
    channel = Channel.__new__(Channel)
    channel.connection = transport
    with pytest.raises(redis.exceptions.ConnectionError):
        channel._connparams()


def test_connection_errors_are_ones_kombu_and_celery_handle():
    app = make_celery(Settings(redis_url="redis://127.0.0.1:6379/0"))
    with app.connection_for_write() as connection:
        assert connection.transport.Channel is Channel
        assert redis.exceptions.ConnectionError in connection.connection_errors


def test_publishes_share_one_client_until_the_pool_changes():
    channel = Channel.__new__(Channel)
    channel._pool = pool = redis.ConnectionPool()
    channel._publish_client = None
    channel.Client = redis.Redis
    first = channel._create_client()
    assert channel._create_client() is first
    assert first.connection_pool is pool
    channel._pool = redis.ConnectionPool()  # what a reconnect does (_disconnect_pools, then a new pool)
    second = channel._create_client()
    assert second is not first and second.connection_pool is channel._pool
