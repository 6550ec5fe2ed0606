"""docker-compose.ha.yml: the replica and three sentinels, and every app service finding the primary
through them. Checked with Docker Compose's ``config`` (no Docker engine here)."""

from __future__ import annotations

from shared.settings import Settings
from tests.integration.test_edge import compose_config

APP_SERVICES = ("web", "worker", "flower")


def test_the_ha_override_adds_a_replica_and_three_sentinels_and_points_every_app_at_them():
    config = compose_config("docker-compose.yml", "docker-compose.ha.yml")
    services = config["services"]

    assert {"redis", "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"} <= set(services)
    replica = " ".join(services["redis-replica"]["command"])
    assert "--replicaof redis 6379" in replica and "--masterauth" in replica
    # after a failover the old primary comes back as a replica: it must authenticate too
    assert "--masterauth" in services["redis"]["command"]
    for name in ("sentinel-1", "sentinel-2", "sentinel-3"):
        command = " ".join(services[name]["command"])
        assert "sentinel monitor router redis 6379 2" in command
        assert "--sentinel" in command
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        # the settings the app reads: they parse, and name the sentinels and the monitored primary
        settings = Settings.from_env(environment)
        assert settings.redis_sentinels == ("sentinel-1:26379", "sentinel-2:26379", "sentinel-3:26379")
        assert settings.redis_sentinel_master == "router"
        assert settings.redis_min_replicas_ack == 1
        assert {"sentinel-1", "sentinel-2", "sentinel-3", "redis-replica"} <= set(
            services[name]["depends_on"]
        )


def test_without_the_override_nothing_uses_sentinels():
    services = compose_config("docker-compose.yml")["services"]
    assert "redis-replica" not in services
    for name in APP_SERVICES:
        assert "REDIS_SENTINELS" not in services[name]["environment"]
