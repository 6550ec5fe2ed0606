"""Worker entry point: ``celery -A worker.app worker …`` (see the Procfile)."""

from shared.settings import load_settings
from shared.task_queue import make_celery

settings = load_settings()
settings.require_cxone_credentials()
celery = make_celery(settings)
celery.set_default()

import worker.tasks  # noqa: E402,F401  (registers the task on the app)
