"""Operator tools: stuck routings, dead letters (list, show, replay, purge), the config doctor.

Run as ``python -m ops <command>``; see ``python -m ops --help``.
"""
