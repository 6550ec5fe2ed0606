"""Metrics, structured logs, redaction and the deploy files (alerts, dashboard)."""
