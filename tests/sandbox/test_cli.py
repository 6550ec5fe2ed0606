"""Command-line settings and the foreground server's clean shutdown on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from cxone_sandbox.config import parse_command_line

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WILDCARD_HOST = "0.0.0.0"  # noqa: S104  # only parsed here, never bound


def test_defaults_and_environment() -> None:
    options, config = parse_command_line([], {})
    assert (options.host, options.port, options.verbose) == ("127.0.0.1", 8088, False)
    assert config.public_url == "http://127.0.0.1:8088"
    assert config.access_key_secret == "sandbox/key+secret="
    env = {
        "SANDBOX_HOST": WILDCARD_HOST,
        "SANDBOX_PORT": "9000",
        "SANDBOX_CLIENT_ID": "other",
        "SANDBOX_TOKEN_TTL_SECONDS": "60",
    }
    options, config = parse_command_line([], env)
    assert (options.host, options.port) == (WILDCARD_HOST, 9000)
    assert config.public_url is None  # wildcard host: advertise the request's Host instead
    assert (config.client_id, config.token_ttl_seconds) == ("other", 60)


def test_flags_win_over_environment() -> None:
    argv = ["--port", "9100", "--public-url", "http://cxone-sandbox:8088", "--verbose"]
    options, config = parse_command_line(argv, {"SANDBOX_PORT": "9000"})
    assert options.port == 9100 and options.verbose
    assert config.public_url == "http://cxone-sandbox:8088"


def test_bad_environment_value_names_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_command_line([], {"SANDBOX_TOKEN_TTL_SECONDS": "soon"})
    assert "SANDBOX_TOKEN_TTL_SECONDS" in capsys.readouterr().err


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_module_serves_and_stops_on_sigterm() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cxone_sandbox", "--port", str(port)],
        cwd=PROJECT_ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None  # stderr=PIPE: Popen opened a stream for it
    try:
        # Poll until it listens; the deadline is only a safety net (a busy machine starts slowly).
        deadline = time.monotonic() + 60
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/sandbox/faults", timeout=30)
                break
            except requests.ConnectionError:
                assert process.poll() is None, "the sandbox exited instead of serving"
                assert time.monotonic() < deadline, "sandbox did not start"
                time.sleep(0.05)
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "stopped" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
