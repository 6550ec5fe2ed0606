"""Worker entry point: ``celery -A worker.app worker …`` (see the Procfile)."""

from shared.settings import load_settings
from shared.task_queue import make_celery
from worker import observability, revocations

settings = load_settings()
settings.require_cxone_credentials()
settings.require_trusted_cxone_urls()  # never send the access key or a token elsewhere
observability.install(settings)  # JSON logs, metrics server, routing ids on every task's lines
# Flower runs on this app too (scripts/run-flower): its "Revoke" goes through RecordingControl.
celery = make_celery(settings, control=revocations.RecordingControl)
celery.set_default()

import worker.tasks  # noqa: E402,F401  (registers the task on the app)
from worker import dispatcher, orphan_sweeper  # noqa: E402

revocations.connect()  # a revoked routing task fails its routing (Flower's "Revoke")
orphan_sweeper.start_with_worker()
dispatcher.start_with_worker()  # drains the backlog of routings waiting for a CXone call slot
