"""Which Redis client and which Celery broker options each Redis setup gets (shared/redis_connection.py)."""

from __future__ import annotations

import ssl

import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from shared.redis_connection import celery_broker_options, redis_client, sentinel_addresses
from shared.settings import Settings, SettingsError
from shared.task_queue import make_celery

SENTINELS = {
    "REDIS_URL": "redis://:s3cret@ignored:6379/2",
    "REDIS_SENTINELS": "10.0.0.1:26379, sentinel-b:26380",
    "REDIS_SENTINEL_MASTER": "router",
    "REDIS_SENTINEL_PASSWORD": "sentinel-pw",
}


def test_a_plain_url_gives_a_plain_client_with_timeouts_on_every_socket():
    client = redis_client(Settings.from_env({"REDIS_URL": "redis://:pw@cache:6380/3"}), socket_timeout=1.5)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("cache", 6380, 3, "pw")
    assert kwargs["socket_timeout"] == 1.5
    assert kwargs["socket_connect_timeout"] == 1.0
    assert kwargs["health_check_interval"] == 10
    assert kwargs["retry_on_timeout"] is True


def test_sentinels_give_a_client_of_the_monitored_primary_with_the_urls_database_and_password():
    client = redis_client(Settings.from_env(SENTINELS))
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "router"
    kwargs = pool.connection_kwargs
    assert (kwargs["db"], kwargs["password"]) == (2, "s3cret")
    assert kwargs["socket_timeout"] == 2.0
    sentinel = pool.sentinel_manager
    assert [c.connection_pool.connection_kwargs["port"] for c in sentinel.sentinels] == [26379, 26380]
    for each in sentinel.sentinels:
        assert each.connection_pool.connection_kwargs["password"] == "sentinel-pw"
        assert each.connection_pool.connection_kwargs["socket_timeout"] == 0.5


def test_sentinels_without_the_monitored_name_are_refused_at_start_up():
    with pytest.raises(SettingsError, match="REDIS_SENTINEL_MASTER"):
        Settings.from_env({"REDIS_SENTINELS": "a:26379"})


@pytest.mark.parametrize("bad", ["sentinel", "a:b", "a:0", ":26379"])
def test_a_sentinel_that_is_not_host_port_is_refused(bad):
    with pytest.raises(SettingsError, match="REDIS_SENTINELS"):
        Settings.from_env({"REDIS_SENTINELS": bad, "REDIS_SENTINEL_MASTER": "m"})


def test_sentinel_addresses_are_host_and_port_pairs():
    settings = Settings.from_env({**SENTINELS, "REDIS_SENTINELS": "[::1]:26379,b:1"})
    assert sentinel_addresses(settings) == [("::1", 26379), ("b", 1)]


def test_the_broker_of_a_plain_url_is_that_url_with_socket_timeouts():
    options = celery_broker_options(Settings.from_env({"REDIS_URL": "redis://r:6379/1"}))
    assert options["broker_url"] == "redis://r:6379/1"
    assert options["broker_transport"] == "shared.broker_transport:Transport"
    assert options["broker_transport_options"]["socket_timeout"] == 5
    assert "broker_use_ssl" not in options


def test_the_broker_with_sentinels_asks_each_sentinel_for_the_named_primary():
    app = make_celery(Settings.from_env(SENTINELS))
    assert app.conf.broker_url == "sentinel://:s3cret@10.0.0.1:26379/2;sentinel://:s3cret@sentinel-b:26380/2"
    assert app.conf.broker_transport == "shared.broker_transport:SentinelTransport"
    options = app.conf.broker_transport_options
    assert options["master_name"] == "router"
    assert options["sentinel_kwargs"]["password"] == "sentinel-pw"
    # the delivery options stay beside the connection ones
    assert options["visibility_timeout"] == 60
    assert options["socket_connect_timeout"] == 2
    assert app.conf.result_backend is None  # no result backend to point at the sentinels


def test_the_sentinel_broker_connects_through_kombus_sentinel_channel():
    from kombu import Connection

    from shared.broker_transport import SentinelChannel

    options = celery_broker_options(Settings.from_env(SENTINELS))
    connection = Connection(
        options["broker_url"],
        transport=options["broker_transport"],
        transport_options=options["broker_transport_options"],
    )
    assert connection.transport.Channel is SentinelChannel
    assert connection.alt == [
        "sentinel://:s3cret@10.0.0.1:26379/2",
        "sentinel://:s3cret@sentinel-b:26380/2",
    ]


def test_rediss_gives_tls_clients_and_a_tls_broker_with_the_ca():
    settings = Settings.from_env(
        {"REDIS_URL": "rediss://:pw@managed:6380/0", "REDIS_SSL_CA_CERTS": "/ca.pem"}
    )
    client = redis_client(settings)
    kwargs = client.connection_pool.connection_kwargs
    assert client.connection_pool.connection_class is redis.SSLConnection
    assert kwargs["ssl_ca_certs"] == "/ca.pem"
    assert kwargs["ssl_cert_reqs"] == "required"
    options = celery_broker_options(settings)
    assert options["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": "/ca.pem"}


def test_rediss_with_sentinels_is_tls_to_the_sentinels_and_the_primary():
    settings = Settings.from_env(
        {**SENTINELS, "REDIS_URL": "rediss://:s3cret@x/0", "REDIS_SSL_CERT_REQS": "none"}
    )
    pool = redis_client(settings).connection_pool
    assert pool.connection_class.__name__ == "SentinelManagedSSLConnection"
    assert pool.connection_kwargs["ssl_cert_reqs"] == "none"
    for each in pool.sentinel_manager.sentinels:
        assert each.connection_pool.connection_class is redis.SSLConnection
    assert celery_broker_options(settings)["broker_use_ssl"]["ssl_cert_reqs"] == ssl.CERT_NONE


def test_the_ingress_publishes_task_sent_events_on_the_sentinel_brokers_database():
    """The ingress writes Celery's task-sent event itself (shared/task_envelope.py): on the channel
    of the database the Sentinel broker URL names, as kombu would, for Flower to hear."""
    from shared.task_envelope import TaskEnvelopes

    envelopes = TaskEnvelopes(make_celery(Settings.from_env(SENTINELS)))
    assert envelopes.event_channel == "/2.celeryev/task.sent"
