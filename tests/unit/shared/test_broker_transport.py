"""The broker transport survives kombu's restore-on-close crash instead of killing the worker."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from shared.broker_transport import QoS
from shared.settings import Settings
from shared.task_queue import make_celery


class DetachedChannel:
    """A channel whose connection was already detached, as kombu leaves it mid-close."""

    @contextmanager
    def conn_or_acquire(self, client=None):
        raise AttributeError("'NoneType' object has no attribute 'hostname'")
        yield  # pragma: no cover

    def __getattr__(self, name):  # everything QoS.__init__ reads
        return None


def test_restore_on_a_detached_connection_is_logged_not_fatal(caplog):
    qos = QoS.__new__(QoS)
    qos.channel = DetachedChannel()
    qos._delivered = {"tag-1": object()}
    assert qos.restore_unacked() is None
    assert "visibility timeout will restore them" in caplog.text


def test_other_errors_still_propagate():
    qos = QoS.__new__(QoS)

    class Broken(DetachedChannel):
        @contextmanager
        def conn_or_acquire(self, client=None):
            raise ValueError("something else")
            yield  # pragma: no cover

    qos.channel = Broken()
    qos._delivered = {}
    with pytest.raises(ValueError):
        qos.restore_unacked()


def test_celery_uses_the_patched_transport():
    app = make_celery(Settings(redis_url="redis://127.0.0.1:6379/0"))
    connection = app.connection_for_write()
    assert connection.transport.Channel.QoS is QoS
