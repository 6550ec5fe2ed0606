"""Celery workers: take routings off the queue and carry them out against CXone."""
