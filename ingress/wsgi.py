"""WSGI entry point for gunicorn: ``gunicorn ingress.wsgi:app`` (see the Procfile and gunicorn.conf.py)."""

import logging

from ingress import create_app
from shared.logging_setup import configure_logging
from shared.settings import load_settings

settings = load_settings()
configure_logging(settings, service="web")
logging.captureWarnings(True)  # a warning is a log line too, not a stray text line on stderr
app = create_app(settings)
