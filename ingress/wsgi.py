"""WSGI entry point for gunicorn: ``gunicorn ingress.wsgi:app`` (see the Procfile)."""

from ingress import create_app

app = create_app()
