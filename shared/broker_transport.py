"""kombu's Redis transport with one crash fixed, used as the Celery broker transport.

When the worker loses Redis, kombu closes the channel and tries to push the worker's unacked
messages back to the queue. In kombu 5.7 that restore can run after the connection object was
detached, and it raises ``AttributeError: 'NoneType' object has no attribute 'hostname'``, which
Celery treats as unrecoverable: the whole worker exits (seen in the Redis-restart fault test).

The restore is only an optimisation: those messages are still in Redis's ``unacked`` hash, and the
visibility-timeout sweep puts them back anyway. So the failure is logged and the worker carries on
reconnecting, as it does for every other broker error.
"""

from __future__ import annotations

import logging

from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)


class QoS(kombu_redis.QoS):
    def restore_unacked(self, client=None):
        try:
            return super().restore_unacked(client)
        except AttributeError as exc:
            log.warning("could not restore unacked messages while the broker connection closed "
                        "(%s); the visibility timeout will restore them", exc)
            return None


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel


#: Value for Celery's ``broker_transport`` setting.
TRANSPORT = "shared.broker_transport:Transport"
