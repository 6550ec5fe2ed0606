"""The webhook ingress: authenticate, validate, enqueue, answer in milliseconds. Never calls CXone."""

from ingress.app import create_app

__all__ = ["create_app"]
