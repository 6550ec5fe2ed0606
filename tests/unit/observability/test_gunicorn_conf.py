"""gunicorn.conf.py: the web process's settings as the Procfile contract asks (``$PORT``,
``WEB_CONCURRENCY``, ``WEB_THREADS``), and one metrics directory for all gunicorn processes, made
and cleaned by the master."""

from __future__ import annotations

import datetime
import importlib.util
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
import yaml
from gunicorn.app.wsgiapp import WSGIApplication
from gunicorn.config import Config

REPO = Path(__file__).resolve().parents[3]
CONF = REPO / "gunicorn.conf.py"
#: Variables that change what gunicorn is told; unset in each test unless it sets them.
GUNICORN_VARIABLES = ("PORT", "WEB_CONCURRENCY", "WEB_THREADS", "FORWARDED_ALLOW_IPS", "GUNICORN_CMD_ARGS")


class FakeArbiter:
    log = logging.getLogger("gunicorn.error")


def load_conf(monkeypatch, **env: str) -> ModuleType:
    # Record the variable so monkeypatch restores it, whatever on_starting sets.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "placeholder")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", CONF)
    assert spec is not None and spec.loader is not None, f"cannot load {CONF}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_a_directory_a_private_one_is_made_and_removed_at_exit(monkeypatch):
    conf = load_conf(monkeypatch)

    conf.on_starting(FakeArbiter())

    private = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert private.is_dir() and private.name.startswith("router-metrics-")
    conf.on_exit(FakeArbiter())
    assert not private.exists()


def test_a_configured_directory_is_kept_but_emptied_of_old_values(monkeypatch, tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "keep.txt").write_text("not ours")
    conf = load_conf(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))

    conf.on_starting(FakeArbiter())
    conf.on_exit(FakeArbiter())

    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_a_dead_worker_is_marked_dead(monkeypatch, tmp_path):
    conf = load_conf(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"x")
    (tmp_path / "counter_4242.db").write_bytes(b"x")

    class Worker:
        pid = 4242

    conf.child_exit(FakeArbiter(), Worker())

    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db"]


def test_gunicorns_own_lines_are_json_and_redacted(monkeypatch, capsys):
    conf = load_conf(monkeypatch, LOG_FORMAT="json", WEBHOOK_API_KEYS="gunicorn-test-key-42")
    logger = conf.logger_class(Config())
    try:
        logger.info("Booting worker with pid: %s (key %s)", 4242, "gunicorn-test-key-42")
    finally:
        for handler in list(logger.error_log.handlers):
            logger.error_log.removeHandler(handler)
    (line,) = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["logger"] == "gunicorn.error" and entry["service"] == "web"
    assert entry["message"] == "Booting worker with pid: 4242 (key ***)"


@pytest.mark.parametrize("name", ["on_starting", "post_worker_init", "child_exit", "on_exit", "logger_class"])
def test_the_hooks_gunicorn_looks_for_exist(monkeypatch, name):
    assert hasattr(load_conf(monkeypatch), name)


def procfile_web_argv() -> list[str]:
    """The Procfile's ``web:`` command as the platform's shell splits it."""
    for line in (REPO / "Procfile").read_text(encoding="utf-8").splitlines():
        name, _, command = line.partition(":")
        if name.strip() == "web":
            return shlex.split(command)
    raise AssertionError("the Procfile has no web process")


def settings_gunicorn_uses(monkeypatch, argv: list[str], **env: str) -> Config:
    """What gunicorn's own start-up makes of ``argv`` run from the repository root under ``env``: the
    command line, the ./gunicorn.conf.py it finds there and the environment, in gunicorn's order."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "placeholder")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    for name in GUNICORN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "path", list(sys.path))  # gunicorn adds its working directory
    monkeypatch.setitem(sys.modules, "__config__", ModuleType("__config__"))  # where it loads the file
    application = WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]", prog=argv[0])
    assert application.app_uri == "ingress.wsgi:app"
    return application.cfg


def test_the_procfile_web_process_listens_on_port_with_the_processes_and_threads_asked_for(monkeypatch):
    cfg = settings_gunicorn_uses(
        monkeypatch, procfile_web_argv(), PORT="5123", WEB_CONCURRENCY="3", WEB_THREADS="7"
    )

    assert cfg.bind == ["0.0.0.0:5123"]
    assert (cfg.workers, cfg.worker_class_str, cfg.threads) == (3, "gthread", 7)


def test_without_those_variables_it_runs_as_documented(monkeypatch):
    cfg = settings_gunicorn_uses(monkeypatch, procfile_web_argv())

    assert cfg.bind == ["0.0.0.0:8000"]
    assert (cfg.workers, cfg.worker_class_str, cfg.threads) == (2, "gthread", 1000)
    assert (cfg.timeout, cfg.graceful_timeout) == (30, 10)
    assert cfg.accesslog == "-"
    assert cfg.control_socket_disable


def test_a_flag_on_the_command_line_still_wins_for_a_one_off_run(monkeypatch):
    cfg = settings_gunicorn_uses(
        monkeypatch, ["gunicorn", "--workers", "5", "ingress.wsgi:app"], WEB_CONCURRENCY="3"
    )

    assert cfg.workers == 5


@pytest.mark.parametrize("variable", ["WEB_CONCURRENCY", "WEB_THREADS"])
@pytest.mark.parametrize("value", ["four", "0", "-2", "1.5"])
def test_a_count_that_is_not_a_whole_number_stops_gunicorn_naming_the_variable(
    monkeypatch, capsys, variable, value
):
    with pytest.raises(SystemExit):
        settings_gunicorn_uses(monkeypatch, procfile_web_argv(), **{variable: value})

    assert f"{variable} must be a whole number of 1 or more, got {value!r}" in capsys.readouterr().err


def test_the_procfile_the_image_and_compose_start_the_web_process_the_same_way():
    dockerfile_cmd = [
        json.loads(line.removeprefix("CMD "))
        for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.startswith("CMD ")
    ]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))

    assert procfile_web_argv() == ["gunicorn", "ingress.wsgi:app"]
    assert dockerfile_cmd == [procfile_web_argv()]
    assert compose["services"]["web"]["command"] == procfile_web_argv()


class _Response:
    status = "202 ACCEPTED"
    sent = 2
    headers = ()


def access_atoms(logger, peer: str, forwarded_for: str) -> dict:
    env = {
        "REMOTE_ADDR": peer,
        "HTTP_X_FORWARDED_FOR": forwarded_for,
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/webhook/cognigy/route",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    return logger.atoms(_Response(), [], env, datetime.timedelta(milliseconds=3))


@pytest.mark.parametrize(
    ("allowed", "peer", "expected"),
    [
        # gunicorn's default: only a proxy on this machine is believed.
        (None, "127.0.0.1", "198.51.100.23"),
        (None, "203.0.113.50", "203.0.113.50"),
        # behind the compose edge: its address only.
        ("172.30.80.2", "172.30.80.2", "198.51.100.23"),
        ("172.30.80.2", "172.30.80.3", "172.30.80.3"),
        ("172.30.80.2", "127.0.0.1", "127.0.0.1"),
    ],
)
def test_the_access_log_shows_the_caller_as_trusted_proxies_report_it(monkeypatch, allowed, peer, expected):
    env = {} if allowed is None else {"FORWARDED_ALLOW_IPS": allowed}
    if allowed is None:
        monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    conf = load_conf(monkeypatch, **env)
    cfg = Config()
    cfg.set("forwarded_allow_ips", conf.forwarded_allow_ips)
    logger = conf.logger_class(cfg)
    try:
        atoms = access_atoms(logger, peer, "198.51.100.23")
    finally:
        for handler in list(logger.error_log.handlers) + list(logger.access_log.handlers):
            logger.error_log.removeHandler(handler)
            logger.access_log.removeHandler(handler)
    assert atoms["h"] == expected
    assert atoms["{remote_addr}e"] == peer  # the proxy itself stays available to a custom format


@pytest.mark.parametrize("threads, waiting", [(1000, 900), (64, 58), (4, 2), (1, 0)])
def test_webhooks_that_do_not_wait_always_find_a_thread(monkeypatch, threads, waiting):
    """post_worker_init caps how many requests of a worker wait for an outcome below its threads."""
    conf = load_conf(monkeypatch)
    waiter = SimpleNamespace(max_waiting=None)
    worker = SimpleNamespace(
        wsgi=SimpleNamespace(extensions={"ingress": SimpleNamespace(waiter=waiter)}),
        cfg=SimpleNamespace(worker_class_str="gthread", threads=threads),
    )

    conf.post_worker_init(worker)

    assert waiter.max_waiting == waiting
