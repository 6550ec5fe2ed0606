"""`make bench`: start the router against the CXone sandbox on loopback, load it, print the figures.

    python -m bench.run_bench [--quick] [--sections ingress,e2e,limit,wait] [--help for the rest]

Every part is a real process (tests.integration.stack starts them the way the Procfile does):
the sandbox, gunicorn (``ingress.wsgi:app``), Celery workers and Redis. Sections:

ingress  wrk at fixed concurrency against the ingress with no workers running (so only the ingress
         is measured), then against ``bench.bare_reference`` (a WSGI app that only LPUSHes the
         body to Redis) under the same gunicorn settings: requests/s and answer latency p50/p99, and
         the ingress's rate as a share of the reference's.
e2e      sandbox latency 50 ms, no limit; an open-loop paced sender steps the offered rate and each
         step is "sustained" when the sender achieved the rate, routed-per-second kept up with
         accepted-per-second and the Celery queue (``LLEN routing``) stayed bounded. Then
         webhook-to-CXone latency (send time vs the sandbox's ``at``) at half the highest sustained
         rate.
limit    sandbox limited to 600 calls/min, router CXONE_RATE_LIMIT_PER_MINUTE=600, 20 webhooks/s for
         --limit-seconds: routings per (sliding) minute as a share of the limit, share of calls
         answered 429.
wait     webhooks that wait for their outcome (``?wait=``), sandbox latency 50 ms: first
         --wait-rate webhooks/s with ``?wait=5``, answer latency of the ``200 routed`` ones; then the
         mixed load: --burst webhooks sent at once with ``?wait=7`` (so that many wait together
         while the workers drain them) beside --mixed-rate webhooks/s without a wait: the answer
         p99 of those, and how long after its routing finished (``routedAt``) each waiting one was
         answered.
backlog  sandbox and router limited to --backlog-limit calls/min (300), --backlog-rate webhooks/s
         (20, four times the limit) for --backlog-seconds (600; quick 60), then the offer stops
         and the backlog drains: worker RSS every 30 s and its growth in the second half of the
         offer (routings wait in Redis, not in the worker), all routed, arrival order (the
         largest inversion), limit use while routings waited, 429s, CXone calls and task runs
         per routed contact.
Cost (calls per routed contact, token requests, skill lookups) comes from the e2e and limit runs;
memory (peak RSS of every web and worker process, VmHWM from /proc) from every section that ran.

Results: one table on stdout, and JSON in bench-results/bench.json (logs in bench-results/logs/).
The machine is shared and noisy: read the figures as ratios and shares, and rerun before trusting a
difference of a few percent.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import importlib.metadata
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis
import requests

from bench.procstat import CpuWindow, ProcessWatch
from shared import redis_keys
from shared.settings import Settings
from shared.task_queue import make_celery
from tests.integration.stack import (
    API_KEY,
    REPO,
    PrivateRedis,
    Process,
    Stack,
    chat_body,
    free_port,
    wait_until,
)

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = REPO / "bench-results"
WRK_SCRIPT = BENCH_DIR / "webhook.lua"
SECTIONS = ("ingress", "e2e", "limit", "wait", "backlog")
CELERY_QUEUE = "routing"  # the Redis list kombu keeps the routing queue's messages in
WEBHOOK_PATH = "/webhook/cognigy/route"
INTENT_QUEUES = {
    "sales_inquiry": "Sales Support",
    "support_ticket": "Technical Support",
    "billing_dispute": "Billing Disputes",
    "cancel_subscription": "Retention",
}
RSS_LIMIT_MB = 150
#: Celery logs this line (plain or JSON logs) each time a worker takes a task: first runs and retries.
TASK_RECEIVED = re.compile(r"router\.route_contact\[[0-9a-f-]+\] received")

# ----------------------------------------------------------------------------------- options


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; defaults come from the environment where the product has a setting."""
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m bench.run_bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short durations: a smoke run of the whole bench in under 3 minutes",
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (cost and memory are "
        "derived from the sections that ran)",
    )
    parser.add_argument(
        "--redis-url",
        default=env.get("BENCH_REDIS_URL"),
        help="use this Redis database (it gets flushed) instead of a private "
        "redis-server started for the run (BENCH_REDIS_URL)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "bench.json")
    parser.add_argument("--tag", default="", help="a label for this run (e.g. the variant measured)")
    web = parser.add_argument_group("web (gunicorn, as the Procfile runs it)")
    web.add_argument("--web-workers", type=int, default=int(env.get("WEB_CONCURRENCY", 2)))
    web.add_argument("--web-threads", type=int, default=int(env.get("WEB_THREADS", 1000)))
    web.add_argument("--web-worker-class", default="gthread")
    web.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="turn off gunicorn.conf.py's access log (ingress and reference alike)",
    )
    web.add_argument(
        "--web-tweaks",
        default="",
        help="serve bench.tuned_web with these BENCH_TWEAKS (no-sent-event, "
        "switch=SECONDS) to measure settings the product has no flag for",
    )
    wrk = parser.add_argument_group("ingress section (wrk)")
    wrk.add_argument("--wrk-connections", type=int, default=32)
    wrk.add_argument("--wrk-threads", type=int, default=2)
    wrk.add_argument("--wrk-seconds", type=float, default=None, help="default 10, quick 3")
    wrk.add_argument("--wrk-warmup", type=float, default=None, help="default 2, quick 1")
    wrk.add_argument(
        "--ingress-rate",
        type=float,
        default=200,
        help="then this many webhooks/s from the paced sender, for the answer latency "
        "below saturation (0: skip)",
    )
    wrk.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="ingress/reference pairs to run (ABBA order); the table shows the mean; default 2, quick 1",
    )
    worker = parser.add_argument_group("workers (celery, as the Procfile runs them)")
    worker.add_argument(
        "--worker-processes", type=int, default=1, help="celery worker processes (the Procfile starts one)"
    )
    worker.add_argument("--worker-concurrency", type=int, default=int(env.get("WORKER_CONCURRENCY", 16)))
    worker.add_argument("--worker-pool", default="threads")
    worker.add_argument(
        "--worker-tweaks",
        default="",
        help="run bench.tuned_worker with these BENCH_TWEAKS (no-events, switch=SECONDS)",
    )
    e2e = parser.add_argument_group("e2e section (paced sender)")
    e2e.add_argument("--steps", default="100,150,200,300,400,600", help="offered rates, webhooks/s")
    e2e.add_argument("--step-seconds", type=float, default=None, help="default 10, quick 4")
    e2e.add_argument(
        "--all-steps", action="store_true", help="keep stepping after the first rate that is not sustained"
    )
    e2e.add_argument("--cxone-latency-ms", type=float, default=50)
    e2e.add_argument(
        "--latency-seconds",
        type=float,
        default=None,
        help="duration of the half-rate latency run; default 10, quick 5",
    )
    e2e.add_argument("--sender-threads", type=int, default=32)
    e2e.add_argument(
        "--profile",
        action="store_true",
        help="py-spy record the worker (GIL holder: where its CPU goes) during "
        "the first step >= --profile-rate",
    )
    e2e.add_argument("--profile-rate", type=float, default=300)
    lim = parser.add_argument_group("limit section")
    lim.add_argument("--limit-seconds", type=float, default=None, help="default 120, quick 65")
    lim.add_argument("--limit-rate", type=float, default=20, help="webhooks/s offered")
    lim.add_argument("--limit", type=int, default=600, help="calls/minute, sandbox and router")
    lim.add_argument("--limit-latency-ms", type=float, default=50, help="sandbox latency")
    blg = parser.add_argument_group("backlog section (offered load above the limit, then a drain)")
    blg.add_argument("--backlog-seconds", type=float, default=None, help="offer time; default 600, quick 60")
    blg.add_argument("--backlog-rate", type=float, default=20, help="webhooks/s offered")
    blg.add_argument("--backlog-limit", type=int, default=300, help="calls/minute, sandbox and router")
    wait = parser.add_argument_group("wait section (webhooks that wait for their outcome)")
    wait.add_argument("--wait-rate", type=float, default=100, help="webhooks/s with ?wait=5")
    wait.add_argument("--wait-seconds", type=float, default=None, help="default 10, quick 5")
    wait.add_argument("--burst", type=int, default=500, help="webhooks sent at once with ?wait=7")
    wait.add_argument(
        "--mixed-rate", type=float, default=100, help="webhooks/s without a wait beside the burst"
    )
    wait.add_argument(
        "--hold-seconds",
        type=float,
        default=1.0,
        help="how long the burst waits, all of it, before the drain",
    )
    wait.add_argument("--mixed-seconds", type=float, default=None, help="default 12, quick 8")
    args = parser.parse_args(argv)

    quick = args.quick
    defaults = {
        "rounds": (2, 1),
        "wrk_seconds": (10, 3),
        "wrk_warmup": (2, 1),
        "step_seconds": (10, 4),
        "latency_seconds": (10, 5),
        "limit_seconds": (120, 65),
        "backlog_seconds": (600, 60),
        "wait_seconds": (10, 5),
        "mixed_seconds": (12, 8),
    }
    for name, (full, short) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    args.steps = [float(s) for s in args.steps.split(",") if s.strip()]
    args.redis_given = args.redis_url is not None
    return args


# ----------------------------------------------------------------------------------- helpers


def log(message: str) -> None:
    """A progress line on stderr with the time."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[rank]


def ms(seconds: float | None) -> float | None:
    """Seconds as milliseconds to 0.1 ms (None stays None)."""
    return None if seconds is None else round(seconds * 1000, 1)


def flush(redis_url: str) -> None:
    """Empty the benchmark's Redis database."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()


def redis_calls(client: redis.Redis) -> int:
    """Commands the Redis server executed so far (server-wide: a shared --redis-url adds noise)."""
    stats = client.info("commandstats")
    return sum(int(v.get("calls", 0)) for v in stats.values() if isinstance(v, dict))


def answers(url: str) -> bool:
    """Whether ``url`` answers without a server error within a second."""
    try:
        return requests.get(url, timeout=1).status_code < 500
    except requests.RequestException:
        return False


def web_config(workdir: Path, access_log: bool) -> Path:
    """The product's gunicorn.conf.py, or (``access_log=False``) a file in ``workdir`` that loads it
    and then turns the access log off: a command-line flag can set a log file, not unset one."""
    if access_log:
        return REPO / "gunicorn.conf.py"
    config = workdir / "gunicorn-no-access-log.conf.py"
    config.write_text(
        "import runpy\n"
        f"globals().update(runpy.run_path({str(REPO / 'gunicorn.conf.py')!r}))\n"
        "accesslog = None\n",
        encoding="utf-8",
    )
    return config


def start_gunicorn(stack: Stack, args: argparse.Namespace, app: str, name: str) -> tuple[Process, str]:
    """gunicorn as the Procfile's ``web:`` line runs it (gunicorn.conf.py), on a free loopback port,
    with the processes, worker class and threads this run measures."""
    port = free_port()
    if app == "ingress.wsgi:app" and args.web_tweaks:
        app = "bench.tuned_web:app"
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(web_config(stack.workdir, access_log=args.access_log)),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.web_workers),
        "--worker-class",
        args.web_worker_class,
        "--threads",
        str(args.web_threads),
    ]
    process = stack.spawn(name, argv + [app], stack.env(BENCH_TWEAKS=args.web_tweaks))
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers(url + "/healthz"), 30, what=f"{name} (gunicorn {app})")
    return process, url


def start_routing_stack(
    stack: Stack, args: argparse.Namespace, client: redis.Redis, watch, **faults
) -> list[Process]:
    """Sandbox (with ``faults``), web and workers, every process watched; returns the workers."""
    stack.start_sandbox()
    watch.add("sandbox", stack.processes[-1].popen.pid)
    stack.set_faults(**faults)
    web, stack.web_url = start_gunicorn(stack, args, "ingress.wsgi:app", "web")
    watch.add("web", web.popen.pid)
    workers = start_workers(stack, args)
    for n, worker in enumerate(workers):
        watch.add(f"worker:{n + 1}", worker.popen.pid)
    if pid := redis_server_pid(client):
        watch.add("redis", pid)
    return workers


def _said_ready(process: Process) -> bool:
    """Whether a celery worker's log has its "ready." line (it then consumes tasks)."""
    return " ready." in process.log_path.read_text(errors="replace")


def start_workers(stack: Stack, args: argparse.Namespace) -> list[Process]:
    """Celery workers as the Procfile's ``worker:`` line runs them; returns once each is ready."""
    processes = []
    for n in range(args.worker_processes):
        name = f"w{n + 1}"
        app = "bench.tuned_worker" if args.worker_tweaks else "worker.app"
        events = [] if "no-events" in args.worker_tweaks else ["--events"]
        argv = [
            sys.executable,
            "-m",
            "celery",
            "--app",
            app,
            "worker",
            "--pool",
            args.worker_pool,
            "--concurrency",
            str(args.worker_concurrency),
            "--queues",
            CELERY_QUEUE,
            *events,
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"{name}@%h",
        ]
        # WORKER_CONCURRENCY also sizes the worker's HTTP and Redis pools: keep the two in step.
        # Each worker gets its own metrics port, so a second worker (or a test run next door)
        # never finds it taken.
        processes.append(
            stack.spawn(
                name,
                argv,
                stack.env(
                    WORKER_CONCURRENCY=str(args.worker_concurrency),
                    WORKER_METRICS_PORT=str(free_port()),
                    BENCH_TWEAKS=args.worker_tweaks,
                ),
            )
        )
    for process in processes:
        wait_until(functools.partial(_said_ready, process), 60, what=f"celery worker {process.name}")
    return processes


def task_runs(processes: list[Process]) -> int:
    """Task executions (first runs and retries) the workers logged ("Task ... received")."""
    total = 0
    for process in processes:
        text = process.log_path.read_text(errors="replace")
        total += len(TASK_RECEIVED.findall(text))
    return total


def redis_server_pid(client: redis.Redis) -> int | None:
    """The Redis server's pid when it runs on this machine (so its memory and CPU can be watched)."""
    pid = int(client.info("server").get("process_id", 0))
    return pid if pid and Path(f"/proc/{pid}").exists() else None


class QueueSampler:
    """Samples ``LLEN routing`` every ``interval`` seconds in a thread: (epoch time, length)."""

    def __init__(self, redis_url: str, interval: float = 0.1):
        self.client = redis.Redis.from_url(redis_url)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-queue", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), int(self.client.llen(CELERY_QUEUE))))
            self._stop.wait(self.interval)

    def __enter__(self) -> QueueSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.close()

    def between(self, start: float, end: float) -> list[int]:
        """Queue lengths sampled between ``start`` and ``end`` (epoch seconds)."""
        return [n for t, n in self.samples if start <= t <= end]


def run_sender(
    stack: Stack, args: argparse.Namespace, rate: float, seconds: float, prefix: str, logdir: Path
) -> dict:
    """Run bench.paced_sender in its own process and load its rows."""
    return start_sender(stack, args, rate, seconds, prefix, logdir).result()


class SenderRun:
    """A bench.paced_sender process running in the background; :meth:`result` waits for its rows."""

    def __init__(self, argv: list[str], out: Path, timeout: float):
        self.out = out
        self.timeout = timeout
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(argv, cwd=REPO, env=env)

    def result(self) -> dict:
        """Wait for the sender to finish and load what it wrote."""
        try:
            code = self.process.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        if code != 0:
            raise RuntimeError(f"bench.paced_sender exited with {code}")
        return json.loads(self.out.read_text())


def start_sender(
    stack: Stack,
    args: argparse.Namespace,
    rate: float,
    seconds: float,
    prefix: str,
    logdir: Path,
    *,
    threads: int | None = None,
    query: str = "",
    timeout: float = 10.0,
) -> SenderRun:
    """Start bench.paced_sender in its own process (``query``: e.g. ``wait=5``)."""
    out = logdir / f"sent-{prefix}.json"
    argv = [
        sys.executable,
        "-m",
        "bench.paced_sender",
        "--url",
        stack.web_url + WEBHOOK_PATH,
        "--key",
        API_KEY,
        "--rate",
        str(rate),
        "--duration",
        str(seconds),
        "--prefix",
        prefix,
        "--threads",
        str(threads or args.sender_threads),
        "--out",
        str(out),
        "--query",
        query,
        "--timeout",
        str(timeout),
    ]
    return SenderRun(argv, out, timeout=seconds * 4 + timeout + 60)


def sender_summary(sent: dict) -> dict:
    """What the paced sender actually did: achieved rate, answers, lateness, answer latency."""
    rows = sent["rows"]
    sends = sorted(row[2] for row in rows)
    span = (sends[-1] - sends[0]) if len(sends) > 1 else 0.0
    accepted = [row for row in rows if row[4] == 202]
    return {
        "offered_rate": sent["offered_rate"],
        "sent": len(rows),
        "achieved_rate": round((len(sends) - 1) / span, 1) if span > 0 else None,
        "accepted": len(accepted),
        "not_accepted": Counter(str(row[4]) for row in rows if row[4] != 202),
        "first_sent": sends[0] if sends else None,
        "last_sent": sends[-1] if sends else None,
        "late_p99_ms": ms(pct([row[2] - row[1] for row in rows], 99)),
        "answer_p50_ms": ms(pct([row[3] - row[2] for row in accepted], 50)),
        "answer_p99_ms": ms(pct([row[3] - row[2] for row in accepted], 99)),
        "sender_cpu_share": round(sent["cpu_seconds"] / span, 3) if span > 0 else None,
    }


def first_routing_times(routings: dict, contacts: Sequence[str]) -> dict[str, float]:
    """When the sandbox first saw each contact routed (epoch seconds), for the contacts it saw."""
    return {c: routings[c][0]["at"] for c in contacts if routings.get(c)}


def wait_drained(stack: Stack, client: redis.Redis, expected_routed: int, timeout: float) -> dict:
    """Wait until the sandbox saw ``expected_routed`` contacts and the Celery queue is empty."""
    started = time.monotonic()
    stats: dict = {}
    while time.monotonic() - started < timeout:
        stats = stack.sandbox_stats(summary=True)
        if stats["contacts_routed"] >= expected_routed and client.llen(CELERY_QUEUE) == 0:
            return {"drained": True, "seconds": round(time.monotonic() - started, 1)}
        time.sleep(0.3)
    return {
        "drained": False,
        "seconds": round(time.monotonic() - started, 1),
        "routed": stats.get("contacts_routed"),
        "expected": expected_routed,
        "queue": int(client.llen(CELERY_QUEUE)),
    }


def py_spy_available() -> str | None:
    """The py-spy binary on PATH or beside this Python, if installed."""
    return shutil.which("py-spy") or (shutil.which("py-spy", path=str(Path(sys.executable).parent)))


PROJECT_PACKAGES = ("worker", "shared", "ingress")


def _frame_package(frame: str) -> str:
    """'Foo.bar (redis/client.py:113)' -> 'redis'; project files keep their module name."""
    where = frame.rpartition("(")[2].rstrip(")").rpartition(":")[0]
    parts = where.split("/")
    if parts[0] in PROJECT_PACKAGES and len(parts) > 1:
        return ".".join(parts[:2]).removesuffix(".py")
    return parts[0].removesuffix(".py") or frame


def summarize_profile(path: Path, top: int = 15) -> dict:
    """A py-spy ``--format raw`` (collapsed stacks) file in a few lists of percentages.

    ``self_pct``: functions on top of the stack; ``self_by_package``: the same grouped by library
    (or project module); ``project_inclusive_pct``: project functions with everything they call;
    ``consumer_vs_tasks``: Celery's consumer loop (one thread) against the pool threads' tasks.
    """
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    project: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        if not frames:
            continue
        own[frames[-1]] += n
        packages[_frame_package(frames[-1])] += n
        # Project functions without line numbers, so each counts once per stack.
        for function in {
            re.sub(r":\d+\)$", ")", f) for f in frames if _frame_package(f).startswith(PROJECT_PACKAGES)
        }:
            project[function] += n
        kind = (
            "tasks"
            if any("apply_target" in f for f in frames)
            else "consumer"
            if any("Consumer.start" in f for f in frames)
            else "other"
        )
        threads[kind] += n

    def share(counter: Counter[str], limit: int = top) -> list:
        return [[name, round(100 * c / total, 1)] for name, c in counter.most_common(limit)] if total else []

    return {
        "samples": total,
        "file": str(path.relative_to(REPO) if path.is_relative_to(REPO) else path),
        "self_pct": share(own),
        "self_by_package": share(packages),
        "project_inclusive_pct": share(project),
        "consumer_vs_tasks": share(threads),
    }


# ----------------------------------------------------------------------------------- sections


def ensure_wrk() -> str:
    """The wrk binary; installs the Debian package when missing and this is root with apt-get."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(
            "wrk is not installed and this is not root with apt-get: install it "
            "(sudo apt-get install -y wrk) and run the bench again"
        )
    log("wrk not found: installing it with apt-get (Debian package 'wrk')")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("apt-get install wrk succeeded but wrk is not on PATH")
    return found


def run_wrk(url: str, args: argparse.Namespace, seconds: float, prefix: str, log_path: Path) -> dict:
    """Drive ``url``'s webhook endpoint with wrk for ``seconds``; requests/s and latency percentiles."""
    argv = [
        "wrk",
        f"-t{args.wrk_threads}",
        f"-c{args.wrk_connections}",
        f"-d{seconds:g}s",
        "--latency",
        "-s",
        str(WRK_SCRIPT),
        url + WEBHOOK_PATH,
        "--",
        API_KEY,
        prefix,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    with log_path.open("a") as handle:
        handle.write(f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}\n")
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {done.returncode}): {done.stderr.strip()[:300]}")
    data = json.loads(line.split(" ", 1)[1])
    seconds_run = data["duration_us"] / 1e6
    lat = data["latency_us"]
    return {
        "requests": data["requests"],
        "seconds": round(seconds_run, 2),
        "rps": round(data["requests"] / seconds_run, 1),
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p90_ms": round(lat["p90"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
        "max_ms": round(lat["max"] / 1000, 1),
        "errors": data["errors"],
    }


def section_ingress(args: argparse.Namespace, logdir: Path, watches: list) -> dict:
    """The ingress section: wrk against the ingress and the bare reference in ABBA order."""
    ensure_wrk()
    runs: dict[str, list[dict]] = {"ingress": [], "bare": []}
    order: list[str] = []
    for n in range(args.rounds):
        order += [("ingress", "bare"), ("bare", "ingress")][n % 2]
    for n, target in enumerate(order):
        flush(args.redis_url)
        workdir = logdir / f"{n + 1}-{target}"
        workdir.mkdir(parents=True, exist_ok=True)
        # No sandbox runs here (the ingress never calls CXone), but CXone must still be a loopback
        # address: with a real tenant's URL the ingress refuses the sandbox's demo credentials.
        stack = Stack(redis_url=args.redis_url, workdir=workdir, sandbox_url="http://127.0.0.1:9")
        watch = ProcessWatch().start()
        watches.append(("ingress", watch))
        try:
            app = "ingress.wsgi:app" if target == "ingress" else "bench.bare_reference:app"
            process, url = start_gunicorn(stack, args, app, "web" if target == "ingress" else "bare")
            stack.web_url = url
            watch.add("web" if target == "ingress" else "bare", process.popen.pid)
            client = redis.Redis.from_url(args.redis_url)
            if pid := redis_server_pid(client):
                watch.add("redis", pid)
            if target == "ingress":
                wait_until(functools.partial(answers, url + "/readyz"), 10, what="the ingress to be ready")
            log(
                f"ingress: wrk against {target} ({args.wrk_connections} connections, "
                f"{args.wrk_threads} threads, {args.wrk_seconds:g}s after {args.wrk_warmup:g}s warm-up)"
            )
            # Contact ids are digits (CONTACT_ID_PATTERN): this run's prefix, then one digit per use.
            prefix = f"{int(time.time()) % 100000:05d}{n}"
            run_wrk(url, args, args.wrk_warmup, prefix + "1", workdir / "wrk.log")
            cpu = CpuWindow(watch)
            result = run_wrk(url, args, args.wrk_seconds, prefix + "2", workdir / "wrk.log")
            result["cpu_cores"] = cpu.close()
            log(
                f"ingress: {target}: {result['rps']:.0f} req/s, p50 {result['p50_ms']} ms, "
                f"p99 {result['p99_ms']} ms, errors {result['errors']}"
            )
            if args.ingress_rate:
                # The same server below saturation: answer latency without wrk's queueing.
                sent = run_sender(stack, args, args.ingress_rate, args.wrk_seconds, f"{prefix}3", workdir)
                paced = sender_summary(sent)
                result["paced"] = {
                    k: paced[k]
                    for k in ("offered_rate", "achieved_rate", "accepted", "answer_p50_ms", "answer_p99_ms")
                }
                log(
                    f"ingress: {target} at {args.ingress_rate:g}/s paced: answer p50 "
                    f"{paced['answer_p50_ms']} ms, p99 {paced['answer_p99_ms']} ms"
                )
            if target == "ingress":
                result["celery_queue_after"] = int(client.llen(CELERY_QUEUE))
            else:
                result["bare_list_after"] = int(client.llen("bench:bare-reference"))
            client.close()
            runs[target].append(result)
        finally:
            watch.stop()
            stack.close()
    flush(args.redis_url)

    def mean(target: str, key: str) -> float:
        return round(statistics.fmean(r[key] for r in runs[target]), 2)

    summary: dict[str, Any] = {t: {k: mean(t, k) for k in ("rps", "p50_ms", "p99_ms")} for t in runs}
    if args.ingress_rate:
        for target in runs:
            for key in ("answer_p50_ms", "answer_p99_ms"):
                summary[target][f"paced_{key}"] = round(
                    statistics.fmean(r["paced"][key] for r in runs[target]), 2
                )
    summary["rate_share"] = round(summary["ingress"]["rps"] / summary["bare"]["rps"], 3)
    return {"runs": runs, "summary": summary}


def warm_up(stack: Stack) -> dict:
    """One webhook per intent, routed before measuring: the token and skill cache get filled."""
    session = requests.Session()
    started = time.time()
    for n, intent in enumerate(INTENT_QUEUES):
        response = stack.post_webhook(chat_body(f"7{n:06d}", intent), session=session)
        response.raise_for_status()
    wait_until(
        lambda: stack.sandbox_stats(summary=True)["contacts_routed"] >= len(INTENT_QUEUES),
        60,
        interval=0.1,
        what="the warm-up routings",
    )
    routings = stack.sandbox_stats()["routings"]
    return {
        "contacts": len(INTENT_QUEUES),
        "slowest_ms": ms(max(h[0]["at"] for h in routings.values()) - started),
    }


def cpu_per_contact(cpu: dict[str, float], accepted_rate: float, routed_rate: float) -> dict:
    """CPU milliseconds per webhook (web, sender, Redis) and per routed contact (worker, sandbox)."""
    out = {}
    for role, cores in cpu.items():
        per = routed_rate if role in ("worker", "sandbox") else accepted_rate
        if role not in ("machine", "others") and per:
            out[role] = round(cores / per * 1000, 2)
    return out


def step_figures(sent: dict, routings: dict, samples: QueueSampler, rate: float) -> dict:
    """Did the pipeline keep up with one step? Routed rate in the send window and queue length."""
    figures = sender_summary(sent)
    accepted = [row for row in sent["rows"] if row[4] == 202]
    first, last = figures["first_sent"], figures["last_sent"]
    window = max(1e-6, last - first)
    routed_at = first_routing_times(routings, [row[0] for row in accepted])
    in_window = sum(1 for at in routed_at.values() if first <= at <= last)
    accepted_in_window = sum(1 for row in accepted if first <= row[2] <= last)
    latencies = [routed_at[row[0]] - row[2] for row in accepted if row[0] in routed_at]
    lengths = samples.between(first, last + 0.05)
    tail = samples.between(last - 1.0, last + 0.05)
    figures.update(
        {
            "accepted_rate": round(accepted_in_window / window, 1),
            "routed_rate": round(in_window / window, 1),
            "routed_share": round(in_window / accepted_in_window, 3) if accepted_in_window else None,
            "routed_total": len(routed_at),
            "queue_max": max(lengths, default=0),
            "queue_end": round(statistics.fmean(tail), 1) if tail else 0,
            "e2e_p50_ms": ms(pct(latencies, 50)),
            "e2e_p99_ms": ms(pct(latencies, 99)),
        }
    )
    figures["not_accepted"] = dict(figures["not_accepted"])
    reasons = []
    if figures["achieved_rate"] is None or figures["achieved_rate"] < 0.95 * rate:
        reasons.append(f"sender achieved only {figures['achieved_rate']}/s")
    if figures["not_accepted"]:
        reasons.append(f"webhooks not accepted: {figures['not_accepted']}")
    if figures["routed_share"] is None or figures["routed_share"] < 0.95:
        reasons.append(f"routed {figures['routed_rate']}/s of {figures['accepted_rate']}/s accepted")
    if figures["queue_end"] > max(10.0, 0.5 * rate):
        reasons.append(f"queue grew to {figures['queue_end']:.0f} by the end of the step")
    figures["sustained"] = not reasons
    figures["why_not"] = "; ".join(reasons)
    return figures


def section_e2e(args: argparse.Namespace, logdir: Path, watches: list) -> dict:
    """The e2e section: the highest sustained rate, then webhook-to-CXone latency at half of it."""
    flush(args.redis_url)
    logdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        redis_url=args.redis_url, workdir=logdir, env_overrides={"CXONE_RATE_LIMIT_PER_MINUTE": "100000"}
    )
    watch = ProcessWatch().start()
    watches.append(("e2e", watch))
    client = redis.Redis.from_url(args.redis_url)
    result: dict = {"steps": [], "cxone_latency_ms": args.cxone_latency_ms}
    try:
        started = time.time()
        redis_before = redis_calls(client)
        workers = start_routing_stack(stack, args, client, watch, latency_ms=args.cxone_latency_ms)
        result["warm_up"] = warm_up(stack)
        expected = len(INTENT_QUEUES)
        run_id = int(time.time()) % 100000
        profiled = False
        best = 0.0
        for step, rate in enumerate(args.steps):
            prefix = f"{run_id:05d}{step:02d}"  # contact ids are digits: run, step, then a counter
            profiler = None
            if args.profile and not profiled and rate >= args.profile_rate:
                profile_path = logdir / f"py-spy-worker-{rate:g}.txt"
                profiler = start_profiler(workers[0], args.step_seconds, profile_path)
                profiled = True
            log(f"e2e: offering {rate:g} webhooks/s for {args.step_seconds:g}s")
            window = CpuWindow(watch)
            with QueueSampler(args.redis_url) as samples:
                sent = run_sender(stack, args, rate, args.step_seconds, prefix, logdir)
                cpu = window.close()
                expected += sum(1 for row in sent["rows"] if row[4] == 202)
                drain = wait_drained(stack, client, expected, 30 if args.quick else 90)
            figures = step_figures(sent, stack.sandbox_stats()["routings"], samples, rate)
            figures.update(
                {
                    "cpu_cores": cpu,
                    "drain": drain,
                    "cpu_ms_per_contact": cpu_per_contact(
                        cpu, figures["accepted_rate"], figures["routed_rate"]
                    ),
                }
            )
            if profiler is not None:
                profiler.wait(args.step_seconds + 30)
                figures["profile"] = summarize_profile(profile_path)
            result["steps"].append(figures)
            log(
                f"e2e: {rate:g}/s -> sent {figures['achieved_rate']}/s, routed {figures['routed_rate']}/s, "
                f"queue max {figures['queue_max']} end {figures['queue_end']}, "
                f"p50 {figures['e2e_p50_ms']} ms: {'sustained' if figures['sustained'] else 'NOT sustained'}"
                f"{' (' + figures['why_not'] + ')' if figures['why_not'] else ''}"
            )
            if figures["sustained"] and not any(not s["sustained"] for s in result["steps"][:-1]):
                best = rate
            if (not figures["sustained"] and not args.all_steps) or not drain["drained"]:
                break
        result["max_sustained_rate"] = best
        half = best / 2 if best else args.steps[0] / 2
        if not wait_drained(stack, client, expected, 120)["drained"]:
            raise RuntimeError("the queue did not drain before the latency run")
        log(f"e2e: latency run at {half:g} webhooks/s for {args.latency_seconds:g}s")
        with QueueSampler(args.redis_url) as samples:
            window = CpuWindow(watch)
            sent = run_sender(stack, args, half, args.latency_seconds, f"{run_id:05d}99", logdir)
            cpu = window.close()
            expected += sum(1 for row in sent["rows"] if row[4] == 202)
            wait_drained(stack, client, expected, 60)
        latency = step_figures(sent, stack.sandbox_stats()["routings"], samples, half)
        latency["cpu_cores"] = cpu
        latency["cpu_ms_per_contact"] = cpu_per_contact(cpu, latency["accepted_rate"], latency["routed_rate"])
        result["latency_run"] = latency
        log(
            f"e2e: at {half:g}/s webhook->CXone p50 {latency['e2e_p50_ms']} ms, "
            f"p99 {latency['e2e_p99_ms']} ms"
        )
        result["cost"] = cost_figures(stack, client, workers, redis_before, time.time() - started)
    finally:
        watch.stop()
        stack.close()
        client.close()
        flush(args.redis_url)
    return result


def start_profiler(worker: Process, seconds: float, out: Path) -> subprocess.Popen | None:
    """py-spy recording ``worker`` for ``seconds`` into ``out`` (None when py-spy is missing)."""
    binary = py_spy_available()
    if binary is None:
        log("--profile: py-spy is not installed (pip install py-spy); skipping the profile")
        return None
    argv = [
        binary,
        "record",
        "--pid",
        str(worker.popen.pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        "100",
        "--format",
        "raw",
        "--gil",
        "--nonblocking",
        "--subprocesses",
        "--output",
        str(out),
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cost_figures(
    stack: Stack, client: redis.Redis, workers: list[Process], redis_before: int, seconds: float
) -> dict:
    """What routing cost in a run: CXone calls and task runs per routed contact, token requests,
    skill lookups, Redis commands."""
    stats = stack.sandbox_stats(summary=True)
    knobs = stack.set_faults()  # an empty update: the current knobs
    routed = stats["contacts_routed"]
    calls = stats["api_calls"]
    runs = task_runs(workers)
    ttl = knobs["token_ttl_seconds"]
    return {
        "contacts_routed": routed,
        "contacts_routed_more_than_once": stats["contacts_routed_more_than_once"],
        "api_calls": calls,
        "api_calls_by_endpoint": stats["api_calls_by_endpoint"],
        "calls_per_routed_contact": round(calls / routed, 4) if routed else None,
        "routing_puts_per_routed_contact": (
            round(stats["api_calls_by_endpoint"]["routing_put"] / routed, 4) if routed else None
        ),
        "token_requests": stats["token_requests"],
        "token_ttl_seconds": ttl,
        "token_lifetimes_in_run": max(1, math.ceil(seconds / ttl)),
        "skill_lookup_calls": stats["api_calls_by_endpoint"]["skills"],
        "distinct_queue_names": len(INTENT_QUEUES),
        "answered_429": stats["answered_429"],
        "answered_401": stats["answered_401"],
        "answered_5xx": stats["answered_5xx"],
        "task_runs": runs,
        "task_runs_per_routed_contact": round(runs / routed, 3) if routed else None,
        "redis_commands_per_routed_contact": (
            round((redis_calls(client) - redis_before) / routed, 1) if routed else None
        ),
        "run_seconds": round(seconds, 1),
    }


def sliding_minutes(times: Sequence[float], start: float, end: float) -> list[int]:
    """Calls in each 60 s window [t, t+60) for t = start, start+1, ... with t+60 <= end."""
    ordered = sorted(times)
    counts = []
    t = start
    while t + 60 <= end + 1e-9:
        counts.append(bisect.bisect_left(ordered, t + 60) - bisect.bisect_left(ordered, t))
        t += 1
    return counts


def section_limit(args: argparse.Namespace, logdir: Path, watches: list) -> dict:
    """The limit section: offered load above the CXone limit; limit use and 429 share."""
    flush(args.redis_url)
    logdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        redis_url=args.redis_url,
        workdir=logdir,
        env_overrides={"CXONE_RATE_LIMIT_PER_MINUTE": str(args.limit)},
    )
    watch = ProcessWatch().start()
    watches.append(("limit", watch))
    client = redis.Redis.from_url(args.redis_url)
    try:
        started = time.time()
        redis_before = redis_calls(client)
        workers = start_routing_stack(
            stack, args, client, watch, rate_limit_per_minute=args.limit, latency_ms=args.limit_latency_ms
        )
        log(
            f"limit: offering {args.limit_rate:g} webhooks/s for {args.limit_seconds:g}s against a "
            f"{args.limit}/min limit (sandbox and router)"
        )
        window = CpuWindow(watch)
        with QueueSampler(args.redis_url, interval=0.5) as samples:
            sent = run_sender(
                stack, args, args.limit_rate, args.limit_seconds, f"{int(time.time()) % 100000:05d}", logdir
            )
        cpu = window.close()
        stats = stack.sandbox_stats()
        sender = sender_summary(sent)
        start, end = sender["first_sent"], sender["last_sent"] + 1 / args.limit_rate
        times = [h["at"] for history in stats["routings"].values() for h in history]
        in_run = [t for t in times if start <= t < end]
        windows = sliding_minutes(in_run, start, end)
        per_minute = statistics.fmean(windows) if windows else len(in_run) / (end - start) * 60
        calls = stats["api_calls"]
        result = {
            "seconds": round(end - start, 1),
            "limit_per_minute": args.limit,
            "offered_rate": args.limit_rate,
            "sender": {k: v for k, v in sender.items() if k not in ("first_sent", "last_sent")},
            "routed_in_run": len(in_run),
            "routings_per_minute": round(per_minute, 1),
            "sliding_windows": len(windows),
            "window_min": min(windows, default=None),
            "window_max": max(windows, default=None),
            "limit_share": round(per_minute / args.limit, 4),
            "max_calls_in_any_60s": stats["max_calls_in_any_60s"],
            "api_calls": calls,
            "answered_429": stats["answered_429"],
            "share_429": round(stats["answered_429"] / calls, 4) if calls else None,
            "backlog_at_end": sender["accepted"]
            - len({c for c, h in stats["routings"].items() if h and h[0]["at"] < end}),
            "queue_max": max((n for _, n in samples.samples), default=0),
            "unacked_at_end": int(client.hlen("unacked")),
            "cpu_cores": cpu,
        }
        if not windows:
            result["note"] = "run shorter than 60 s: per-minute figure extrapolated, not a sliding minute"
        result["cost"] = cost_figures(stack, client, workers, redis_before, time.time() - started)
        log(
            f"limit: {result['routings_per_minute']} routings/min = {result['limit_share']:.1%} of "
            f"{args.limit}; 429s {result['answered_429']} of {calls} calls"
        )
    finally:
        watch.stop()
        stack.close()
        client.close()
        flush(args.redis_url)
    return result


#: The backlog section's RSS curve: one point every this many seconds.
CURVE_EVERY_SECONDS = 30.0


def section_backlog(args: argparse.Namespace, logdir: Path, watches: list) -> dict:
    """The backlog section: offered load at four times the limit, then the drain (see the doc)."""
    flush(args.redis_url)
    logdir.mkdir(parents=True, exist_ok=True)
    limit, rate, seconds = args.backlog_limit, args.backlog_rate, args.backlog_seconds
    stack = Stack(
        redis_url=args.redis_url,
        workdir=logdir,
        env_overrides={"CXONE_RATE_LIMIT_PER_MINUTE": str(limit)},
    )
    watch = ProcessWatch().start()
    watches.append(("backlog", watch))
    client = redis.Redis.from_url(args.redis_url)
    try:
        started = time.time()
        redis_before = redis_calls(client)
        workers = start_routing_stack(
            stack, args, client, watch, rate_limit_per_minute=limit, latency_ms=args.limit_latency_ms
        )
        log(f"backlog: offering {rate:g} webhooks/s for {seconds:g}s at a {limit}/min limit, then the drain")
        offer_started = time.time() - started
        waiting_peak = 0
        with QueueSampler(args.redis_url, interval=0.5) as samples:
            sender = start_sender(stack, args, rate, seconds, f"{int(time.time()) % 100000:05d}", logdir)
            while sender.process.poll() is None:
                waiting_peak = max(waiting_peak, int(client.zcard(redis_keys.BACKLOG)))
                time.sleep(1)
            sent = sender.result()
        offer_ended = time.time() - started
        summary = sender_summary(sent)
        accepted = [row for row in sent["rows"] if row[4] == 202]
        drain_timeout = len(accepted) * 60 / limit + 300
        log(f"backlog: {len(accepted)} accepted, {waiting_peak}+ waited; draining (<= {drain_timeout:.0f}s)")
        drained = wait_drained(stack, client, len(accepted), drain_timeout)
        wait_until(lambda: client.zcard(redis_keys.BACKLOG) == 0, 60, what="backlog empty")
        stats = stack.sandbox_stats()
        firsts = first_routing_times(stats["routings"], [row[0] for row in accepted])
        by_arrival = sorted(accepted, key=lambda row: row[3])  # answered 202: accepted, in order
        inversion, latest = 0.0, float("-inf")
        for row in by_arrival:
            if row[0] in firsts:
                latest = max(latest, firsts[row[0]])
                inversion = max(inversion, latest - firsts[row[0]])
        times = sorted(firsts.values())
        # Limit use while routings waited: the sliding minutes from the first minute full of
        # calls to the end of the drain (the backlog was never empty in between).
        windows = sliding_minutes(times, times[0] + 60, times[-1]) if times else []
        per_minute = statistics.fmean(windows) if windows else None
        rss = _worker_rss(watch.timeline, offer_started)
        curve = _every(rss, CURVE_EVERY_SECONDS)
        offer_seconds = offer_ended - offer_started
        half = [(t, mb) for t, mb in rss if offer_seconds / 2 <= t <= offer_seconds]
        slope = (
            statistics.linear_regression([t for t, _ in half], [mb for _, mb in half]).slope
            if len(half) >= 3
            else None
        )
        growth = None if slope is None else round(slope * 60, 2)
        result = {
            "offered_rate": rate,
            "offer_seconds": seconds,
            "limit_per_minute": limit,
            "sender": {k: v for k, v in summary.items() if k not in ("first_sent", "last_sent")},
            "accepted": len(accepted),
            "routed": len(firsts),
            "all_routed": len(firsts) == len(accepted),
            "drain": drained,
            "backlog_peak": max(waiting_peak, 0),
            "queue_max": max((n for _, n in samples.samples), default=0),
            "max_order_inversion_s": round(inversion, 2),
            "slot_seconds": round(60 / limit, 3),
            "routings_per_minute": round(per_minute, 1) if per_minute else None,
            "limit_share": round(per_minute / limit, 4) if per_minute else None,
            "max_calls_in_any_60s": stats["max_calls_in_any_60s"],
            "answered_429": stats["answered_429"],
            "worker_rss_curve_mb": curve,
            "worker_rss_max_mb": max((mb for _, mb in rss), default=None),
            "worker_rss_growth_mb_per_min_second_half_of_offer": growth,
        }
        result["cost"] = cost_figures(stack, client, workers, redis_before, time.time() - started)
        log(
            f"backlog: {result['routed']}/{result['accepted']} routed; limit use {result['limit_share']}; "
            f"worker RSS max {result['worker_rss_max_mb']} MB, growth {growth} MB/min in the 2nd half"
        )
    finally:
        watch.stop()
        stack.close()
        client.close()
        flush(args.redis_url)
    return result


def _worker_rss(timeline: list[list], since: float) -> list[tuple[float, float]]:
    """The workers' RSS (MB, their processes summed) at each sample, seconds from ``since``."""
    by_time: dict[float, float] = {}
    for t, role, _pid, mb in timeline:
        if role.startswith("worker"):
            by_time[t] = by_time.get(t, 0.0) + mb
    return [(round(t - since, 1), round(mb, 1)) for t, mb in sorted(by_time.items()) if t >= since]


def _every(points: list[tuple[float, float]], seconds: float) -> list[tuple[float, float]]:
    """One point of ``points`` every ``seconds``."""
    kept: list[tuple[float, float]] = []
    for t, mb in points:
        if not kept or t >= kept[-1][0] + seconds:
            kept.append((t, mb))
    return kept


def _answers_by_status(rows: list[list]) -> dict[str, int]:
    """``{"200 routed": n, "202 queued": n, "0": n, …}``: HTTP status and, when waited, the body's."""
    return dict(Counter(f"{row[4]} {row[5]}" if len(row) > 5 and row[5] else str(row[4]) for row in rows))


def _wake_delays(rows: list[list]) -> list[float]:
    """For waiting webhooks answered ``routed``: seconds from the routing's ``routedAt`` to the answer."""
    return [row[3] - row[6] for row in rows if len(row) > 6 and row[5] == "routed" and row[6]]


def _burst_accepted_at(
    samples: list[tuple[float, int]], plain: list[list], since: float, burst: int
) -> float | None:
    """When the whole burst was in the (paused) queue: the first sample where the queue grew by the
    burst plus the background webhooks answered by then; None if it never was."""
    if not samples:
        return None
    base = next((n for t, n in samples if t >= since), samples[0][1])
    answered = sorted(row[3] for row in plain if row[2] >= since)
    for t, length in samples:
        if t < since:
            continue
        background = bisect.bisect_right(answered, t)
        if length - base - background >= burst:
            return t
    return None


def mixed_load(stack: Stack, args: argparse.Namespace, logdir: Path, watch: ProcessWatch, run: str) -> dict:
    """--burst webhooks that wait, sent at once beside --mixed-rate/s that do not.

    The workers stop consuming while the burst arrives (Celery's ``cancel_consumer``), so all of it
    is accepted and waiting before the first routing finishes: from the moment the whole burst is in
    the queue to the first ``routedAt`` every one of them waits, and the answers of the webhooks
    without a wait in that window are the figure (beside the same before, while the burst arrives,
    while it drains and after). Then the workers consume again and drain the burst: how long after
    its ``routedAt`` each waiting webhook was answered.
    """
    celery = make_celery(Settings(redis_url=args.redis_url))
    log(
        f"wait: mixed load: {args.burst} webhooks at once with ?wait=7, beside "
        f"{args.mixed_rate:g}/s without a wait for {args.mixed_seconds:g}s; workers paused meanwhile"
    )
    paused = celery.control.cancel_consumer(CELERY_QUEUE, reply=True, timeout=5)
    window = CpuWindow(watch)
    with QueueSampler(args.redis_url, interval=0.02) as samples:
        background = start_sender(
            stack, args, args.mixed_rate, args.mixed_seconds, f"82{run}", logdir, threads=16
        )
        time.sleep(1.0)  # the background traffic is flowing when the burst arrives
        base = samples.samples[-1][1]
        burst_started = time.time()
        burst = start_sender(
            stack,
            args,
            rate=1_000_000,
            seconds=args.burst / 1_000_000,
            prefix=f"83{run}",
            logdir=logdir,
            threads=args.burst,
            query="wait=7",
            timeout=20,
        )
        # With the workers paused, every accepted webhook's task stays in the queue: the burst is
        # in about when the queue grew by its size (the background's share makes this a little
        # early; the exact moment is worked out afterwards). Then hold it, and let the workers
        # drain it within the 7 s it waits.
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline and samples.samples[-1][1] - base < args.burst:
            time.sleep(0.02)
        time.sleep(args.hold_seconds)
        resumed_at = time.time()
        resumed = celery.control.add_consumer(CELERY_QUEUE, reply=True, timeout=5)
        burst_rows = burst.result()["rows"]
        background_rows = background.result()["rows"]
    cpu = window.close()
    celery.close()

    plain = [row for row in background_rows if row[4] == 202]
    all_in = _burst_accepted_at(samples.samples, plain, burst_started, args.burst)
    routed = [row[6] for row in burst_rows if len(row) > 6 and row[6]]
    # The background sender's threads were held up by the arrival and send their backlog at once:
    # the window starts when it sends on time again, so it measures the waiting, not the arrival.
    held_from = next(
        (
            row[2]
            for row in sorted(plain, key=lambda r: r[2])
            if row[2] >= (all_in or resumed_at) and row[2] - row[1] < 0.02
        ),
        resumed_at,
    )
    held_to = min(routed, default=resumed_at)
    held = [row[3] - row[2] for row in plain if held_from <= row[2] and row[3] <= held_to]
    drain_to = max(row[3] for row in burst_rows)
    draining = [row[3] - row[2] for row in plain if held_to <= row[2] <= drain_to]
    arriving = [row[3] - row[2] for row in plain if burst_started <= row[2] <= held_from]
    before = [row[3] - row[2] for row in plain if row[3] < burst_started]
    after = [row[3] - row[2] for row in plain if row[2] > drain_to]
    late = [row for row in burst_rows if row[4] == 202 and (len(row) < 9 or (row[8] or 0) > 7100)]
    delays = _wake_delays(burst_rows)
    # How many waited at once: sent and not yet answered, at the fullest moment.
    events = sorted([(row[2], 1) for row in burst_rows] + [(row[3], -1) for row in burst_rows])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return {
        "burst": args.burst,
        "workers_paused": len(paused or []),
        "workers_resumed": len(resumed or []),
        "burst_answers": _answers_by_status(burst_rows),
        "waiting_at_once": peak,
        "accepted_in_seconds": round(all_in - burst_started, 2) if all_in else None,
        "answered_202_after_more_than_7_1s": len(late),
        "held_seconds": round(held_to - held_from, 2),
        "drain_seconds": round(drain_to - held_to, 2),
        "answered_after_routed_p50_ms": ms(pct(delays, 50)),
        "answered_after_routed_p99_ms": ms(pct(delays, 99)),
        "answered_after_routed_max_ms": ms(max(delays, default=None)),
        "answered_after_routed_over_100ms": sum(1 for d in delays if d > 0.1),
        "plain_rate": args.mixed_rate,
        "plain_answers": _answers_by_status(background_rows),
        "plain_before_p50_ms": ms(pct(before, 50)),
        "plain_before_p99_ms": ms(pct(before, 99)),
        "plain_after_p99_ms": ms(pct(after, 99)),
        "plain_held": len(held),
        "plain_held_p50_ms": ms(pct(held, 50)),
        "plain_held_p99_ms": ms(pct(held, 99)),
        "plain_held_max_ms": ms(max(held, default=None)),
        "plain_drain": len(draining),
        "plain_drain_p50_ms": ms(pct(draining, 50)),
        "plain_drain_p99_ms": ms(pct(draining, 99)),
        "plain_arriving_p99_ms": ms(pct(arriving, 99)),
        "cpu_cores": cpu,
    }


def section_wait(args: argparse.Namespace, logdir: Path, watches: list) -> dict:
    """The wait section: 200-routed latency with ?wait=5, then a burst of waiting webhooks beside
    webhooks that do not wait (the server model must not let the first starve the second)."""
    flush(args.redis_url)
    logdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        redis_url=args.redis_url, workdir=logdir, env_overrides={"CXONE_RATE_LIMIT_PER_MINUTE": "100000"}
    )
    watch = ProcessWatch().start()
    watches.append(("wait", watch))
    client = redis.Redis.from_url(args.redis_url)
    result: dict = {"cxone_latency_ms": args.cxone_latency_ms}
    try:
        start_routing_stack(stack, args, client, watch, latency_ms=args.cxone_latency_ms)
        result["warm_up"] = warm_up(stack)
        run_id = int(time.time()) % 10000
        expected = len(INTENT_QUEUES)

        log(f"wait: {args.wait_rate:g} webhooks/s with ?wait=5 for {args.wait_seconds:g}s")
        window = CpuWindow(watch)
        sent = start_sender(
            stack, args, args.wait_rate, args.wait_seconds, f"81{run_id:04d}", logdir, query="wait=5"
        ).result()
        cpu = window.close()
        rows = sent["rows"]
        routed = [row for row in rows if row[4] == 200 and row[5] == "routed"]
        latencies = [row[3] - row[2] for row in routed]
        summary = sender_summary(sent)
        result["routed_latency"] = {
            "offered_rate": args.wait_rate,
            "achieved_rate": summary["achieved_rate"],
            "sent": len(rows),
            "answers": _answers_by_status(rows),
            "p50_ms": ms(pct(latencies, 50)),
            "p99_ms": ms(pct(latencies, 99)),
            "max_ms": ms(max(latencies, default=None)),
            "answered_after_routed_p99_ms": ms(pct(_wake_delays(rows), 99)),
            "cpu_cores": cpu,
        }
        log(
            f"wait: 200 routed p50 {result['routed_latency']['p50_ms']} ms, p99 "
            f"{result['routed_latency']['p99_ms']} ms; answers {result['routed_latency']['answers']}"
        )
        expected += sum(1 for row in rows if row[4] in (200, 202))
        wait_drained(stack, client, expected, 60)

        result["mixed"] = mixed_load(stack, args, logdir, watch, f"{run_id:04d}")
        m = result["mixed"]
        log(
            f"wait: {m['waiting_at_once']} waiting at once for {m['held_seconds']}s: without a wait p99 "
            f"{m['plain_held_p99_ms']} ms; while they drain p99 {m['plain_drain_p99_ms']} ms; waiting "
            f"answered {m['answered_after_routed_p99_ms']} ms (p99) / {m['answered_after_routed_max_ms']} "
            f"ms (max) after routedAt; answers {m['burst_answers']}"
        )
    finally:
        watch.stop()
        stack.close()
        client.close()
        flush(args.redis_url)
    return result


# ----------------------------------------------------------------------------------- report


def machine_facts() -> dict:
    """What the figures were measured on: CPU, cores, memory, load, library versions, the commit."""
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        platform.processor() or "unknown",
    )
    mhz = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("cpu MHz")), None)
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kb = next((int(ln.split()[1]) for ln in meminfo.splitlines() if ln.startswith("MemTotal")), 0)
    facts = {
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model,
        "cpu_mhz": mhz,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_before": list(os.getloadavg()),
    }
    for name in ("gunicorn", "celery", "kombu", "redis", "flask", "requests"):
        try:
            facts[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            facts[name] = None
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
    )
    facts["git_commit"] = head.stdout.strip() or None
    facts["git_modified_files"] = len(dirty.stdout.splitlines())
    wrk = shutil.which("wrk")
    if wrk:
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True)
        text = (out.stdout + out.stderr).strip()
        facts["wrk"] = text.splitlines()[0] if text else None
    return facts


def memory_summary(watches: list) -> dict:
    """Peak memory per role and per section from every process watch of the run."""
    processes = []
    timelines: dict[str, list] = {}
    for section, watch in watches:
        timelines.setdefault(section, []).extend(watch.timeline)
        for entry in watch.report():
            processes.append({"section": section, **entry, "role": entry["role"].split(":")[0]})

    def peak(role: str) -> float | None:
        values = [p["peak_rss_mb"] for p in processes if p["role"] == role]
        return max(values) if values else None

    roles = sorted({p["role"] for p in processes})
    by_role: dict[str, dict[str, Any]] = {
        role: {"max_process_mb": peak(role), "processes_seen": sum(1 for p in processes if p["role"] == role)}
        for role in roles
    }
    for role in ("web", "bare"):
        for kind in ("master", "worker"):
            values = [p["peak_rss_mb"] for p in processes if p["role"] == role and p["kind"] == kind]
            if values and role in by_role:
                by_role[role][f"{kind}_max_mb"] = max(values)
    for role in by_role:
        by_role[role]["by_section_mb"] = {
            section: max(p["peak_rss_mb"] for p in processes if p["role"] == role and p["section"] == section)
            for section in dict.fromkeys(p["section"] for p in processes if p["role"] == role)
        }
    growth = {}
    for section, points in timelines.items():
        worker = [(t, mb) for t, role, _pid, mb in points if role.startswith("worker")]
        half = [pt for pt in worker if pt[0] >= worker[-1][0] / 2] if worker else []
        if len(half) >= 3:
            slope = statistics.linear_regression([t for t, _ in half], [mb for _, mb in half]).slope
            growth[section] = round(slope * 60, 1)
    return {
        "by_role": by_role,
        "processes": processes,
        "rss_timeline_mb": timelines,
        "worker_rss_growth_mb_per_min_second_half": growth,
    }


def verdict(ok: bool | None) -> str:
    """``met``, ``MISSED`` or ``n/a`` for a target."""
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def fmt(value: float | None, spec: str = ".0f", unit: str = "") -> str:
    """A figure for the table (``n/a`` when it was not measured)."""
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def cpu_text(per_contact: dict[str, float], cpu: dict[str, float]) -> str:
    """CPU milliseconds per routed contact by role (and the sender's), and how busy the machine was,
    as one table cell."""
    parts = [
        f"{role} {per_contact[role]:.1f}"
        for role in ("web", "worker", "sandbox", "redis")
        if role in per_contact
    ]
    sender = per_contact.get("loadgen")
    total = sum(per_contact[role] for role in ("web", "worker", "sandbox", "redis") if role in per_contact)
    return (
        " + ".join(parts)
        + f" = {total:.1f} ms"
        + (f" (+ sender {sender:.1f} ms)" if sender is not None else "")
        + f"; machine {cpu.get('machine', 0):.2f} cores busy, others {cpu.get('others', 0):.2f}"
    )


def build_table(results: dict) -> tuple[list[tuple[str, str, str, str, str]], list[dict]]:
    """The printed table's rows and the targets with whether each was met."""
    rows: list[tuple[str, str, str, str, str]] = []
    targets: list[dict] = []
    cores = results["machine"].get("cores_usable") or results["machine"].get("cores") or 1

    def add(section: str, figure: str, value: str, target: str = "", ok: bool | None = None) -> None:
        rows.append((section, figure, value, target, verdict(ok) if target else ""))
        if target:
            targets.append(
                {"section": section, "figure": figure, "value": value, "target": target, "met": ok}
            )

    sections = results["sections"]
    if "summary" in sections.get("ingress", {}):
        ing = sections["ingress"]
        s = ing["summary"]
        add(
            "ingress",
            "bare reference: requests/s; answer p50 / p99",
            f"{s['bare']['rps']:.0f}/s; {s['bare']['p50_ms']:.1f} / {s['bare']['p99_ms']:.1f} ms",
        )
        add(
            "ingress",
            "ingress: requests/s; answer p50",
            f"{s['ingress']['rps']:.0f}/s; {s['ingress']['p50_ms']:.1f} ms",
        )
        rounds = [
            i["rps"] / b["rps"] for i, b in zip(ing["runs"]["ingress"], ing["runs"]["bare"], strict=False)
        ]
        spread = f" (rounds: {', '.join(f'{r:.0%}' for r in rounds)})" if len(rounds) > 1 else ""
        add(
            "ingress",
            "ingress rate / bare reference rate",
            f"{s['rate_share']:.0%}{spread}",
            ">= 50%",
            s["rate_share"] >= 0.5,
        )
        add(
            "ingress",
            "ingress: answer p99",
            f"{s['ingress']['p99_ms']:.1f} ms",
            "<= 20 ms",
            s["ingress"]["p99_ms"] <= 20,
        )
        if "paced_answer_p99_ms" in s["ingress"]:
            rate = ing["runs"]["ingress"][0]["paced"]["offered_rate"]
            add(
                "ingress",
                f"paced {rate:g}/s, below saturation: answer p50 / p99, ingress; bare",
                f"{s['ingress']['paced_answer_p50_ms']:.1f} / {s['ingress']['paced_answer_p99_ms']:.1f}"
                f" ms; {s['bare']['paced_answer_p50_ms']:.1f} / {s['bare']['paced_answer_p99_ms']:.1f} ms",
            )
        cpu_ms = {}
        for target in ("ingress", "bare"):
            role = "web" if target == "ingress" else "bare"
            cpu_ms[target] = statistics.fmean(
                r["cpu_cores"].get(role, 0) / r["rps"] * 1000 for r in ing["runs"][target]
            )
        others = max(r["cpu_cores"].get("others", 0) for runs in ing["runs"].values() for r in runs)
        add(
            "ingress",
            "server CPU per request: ingress / bare",
            f"{cpu_ms['ingress']:.2f} / {cpu_ms['bare']:.2f} ms (others used up to {others:.2f} cores)",
        )
        errors = [r["errors"] for runs in ing["runs"].values() for r in runs]
        bad = sum(e["status"] + e["timeout"] + e["connect"] + e["read"] + e["write"] for e in errors)
        add("ingress", "non-2xx answers and socket errors", str(bad))
    e = sections.get("e2e", {})
    for step in e.get("steps", []):
        add(
            "e2e",
            f"offered {step['offered_rate']:g}/s: sent, routed; queue max/end; p50",
            f"{fmt(step['achieved_rate'])}/s, {fmt(step['routed_rate'])}/s; {step['queue_max']}/"
            f"{step['queue_end']:.0f}; {fmt(step['e2e_p50_ms'], '.0f', ' ms')}: "
            + ("sustained" if step["sustained"] else "NOT sustained"),
        )
    if "max_sustained_rate" in e:
        add(
            "e2e",
            f"highest sustained rate (CXone latency {e['cxone_latency_ms']:g} ms)",
            f"{e['max_sustained_rate']:g}/s",
            ">= 300/s",
            e["max_sustained_rate"] >= 300,
        )
    if e.get("steps"):
        busiest = max(e["steps"], key=lambda st: st["routed_rate"] or 0)
        per = busiest.get("cpu_ms_per_contact", {})
        add(
            "e2e",
            f"CPU per contact at {busiest['offered_rate']:g}/s offered",
            cpu_text(per, busiest.get("cpu_cores", {})),
        )
        product = sum(per.get(role, 0) for role in ("web", "worker", "redis"))
        sandbox = per.get("sandbox", 0)
        if product:
            add(
                "e2e",
                "CPU per routed contact, all processes (web + worker + sandbox + Redis)",
                f"{product + sandbox:.1f} ms",
                "<= 4 ms",
                product + sandbox <= 4,
            )
        if product:
            add(
                "e2e",
                f"CPU ceiling: {cores} cores / CPU per contact",
                f"{cores * 1000 / (product + sandbox):.0f}/s with the sandbox on the machine, "
                f"{cores * 1000 / product:.0f}/s for web + worker + Redis alone",
            )
    lat = e.get("latency_run")
    if lat:
        add(
            "e2e",
            f"webhook->CXone p50 at {lat['offered_rate']:g}/s (sent {fmt(lat['achieved_rate'])}/s)",
            fmt(lat["e2e_p50_ms"], ".1f", " ms"),
            "<= 80 ms",
            lat["e2e_p50_ms"] is not None and lat["e2e_p50_ms"] <= 80,
        )
        add(
            "e2e",
            "webhook->CXone p99; webhook answer p50 / p99 at half rate",
            f"{fmt(lat['e2e_p99_ms'], '.1f', ' ms')}; {fmt(lat['answer_p50_ms'], '.1f')} / "
            f"{fmt(lat['answer_p99_ms'], '.1f', ' ms')}",
        )
    lim = sections.get("limit", {})
    if "limit_share" in lim:
        add(
            "limit",
            f"routings per sliding minute ({lim['offered_rate']:g}/s offered, {lim['seconds']:.0f}s)",
            f"{lim['routings_per_minute']:.0f} of {lim['limit_per_minute']} (windows "
            f"{lim['window_min']}..{lim['window_max']})",
        )
        add(
            "limit",
            "routings per minute / limit",
            f"{lim['limit_share']:.1%}",
            ">= 95%",
            lim["limit_share"] >= 0.95,
        )
        share_429 = "n/a (no calls)" if lim["share_429"] is None else f"{lim['share_429']:.2%}"
        add(
            "limit",
            "calls answered 429",
            f"{share_429} ({lim['answered_429']} of {lim['api_calls']})",
            "<= 1%",
            lim["share_429"] is not None and lim["share_429"] <= 0.01,
        )
        add("limit", "accepted but not yet routed at the end (offered > limit)", f"{lim['backlog_at_end']}")
    blg = sections.get("backlog", {})
    if "accepted" in blg:
        add(
            "backlog",
            f"worker RSS every {CURVE_EVERY_SECONDS:.0f} s ({blg['offered_rate']:g}/s offered for "
            f"{blg['offer_seconds']:.0f} s at {blg['limit_per_minute']}/min, then the drain)",
            " ".join(f"{mb:.0f}" for _, mb in blg["worker_rss_curve_mb"]) + " MB",
        )
        peak = blg["worker_rss_max_mb"]
        add(
            "backlog",
            "worker RSS, highest",
            fmt(peak, ".0f", " MB"),
            "<= 150 MB",
            peak is not None and peak <= 150,
        )
        growth = blg["worker_rss_growth_mb_per_min_second_half_of_offer"]
        add(
            "backlog",
            "worker RSS growth, second half of the offer",
            fmt(growth, ".2f", " MB/min"),
            "< 2 MB/min",
            growth is not None and growth < 2,
        )
        add(
            "backlog",
            "routed after the drain / accepted (backlog peak)",
            f"{blg['routed']} / {blg['accepted']} (peak {blg['backlog_peak']} waiting in Redis; "
            f"drain {blg['drain'].get('seconds')} s)",
            "all",
            blg["all_routed"],
        )
        add(
            "backlog",
            "arrival order: largest inversion",
            f"{blg['max_order_inversion_s']:.2f} s (a slot is {blg['slot_seconds']:.2f} s)",
        )
        share = blg["limit_share"]
        add(
            "backlog",
            "routings per sliding minute / limit while routings waited",
            "n/a (run too short)" if share is None else f"{share:.1%} ({blg['routings_per_minute']:.0f})",
            ">= 95%",
            share is not None and share >= 0.95,
        )
        add("backlog", "calls answered 429", f"{blg['answered_429']}", "0", blg["answered_429"] == 0)
        cost = blg["cost"]
        add(
            "backlog",
            "CXone calls per routed contact",
            fmt(cost["calls_per_routed_contact"], ".4f"),
            "<= 1.01",
            cost["calls_per_routed_contact"] is not None and cost["calls_per_routed_contact"] <= 1.01,
        )
        add(
            "backlog",
            "task runs per routed contact",
            fmt(cost["task_runs_per_routed_contact"], ".3f"),
            "<= 1.5",
            cost["task_runs_per_routed_contact"] is not None and cost["task_runs_per_routed_contact"] <= 1.5,
        )
    for name in ("e2e", "limit"):
        cost = sections.get(name, {}).get("cost")
        if not cost:
            continue
        add(
            "cost",
            f"{name}: CXone calls per routed contact",
            f"{fmt(cost['calls_per_routed_contact'], '.4f')} ({cost['api_calls']} / "
            f"{cost['contacts_routed']}; routed twice: {cost['contacts_routed_more_than_once']})",
            "<= 1.01",
            cost["calls_per_routed_contact"] is not None and cost["calls_per_routed_contact"] <= 1.01,
        )
        add(
            "cost",
            f"{name}: token requests in {cost['run_seconds']:.0f}s (TTL {cost['token_ttl_seconds']}s)",
            str(cost["token_requests"]),
            f"<= {cost['token_lifetimes_in_run']} (1 per lifetime)",
            cost["token_requests"] <= cost["token_lifetimes_in_run"],
        )
        add(
            "cost",
            f"{name}: skill lookup calls ({cost['distinct_queue_names']} queue names)",
            str(cost["skill_lookup_calls"]),
        )
        add(
            "cost",
            f"{name}: task runs / Redis commands per routed contact",
            f"{fmt(cost['task_runs_per_routed_contact'], '.2f')} / "
            f"{fmt(cost['redis_commands_per_routed_contact'], '.1f')}",
        )
    w = sections.get("wait", {})
    if "routed_latency" in w:
        r = w["routed_latency"]
        add(
            "wait",
            f"webhook -> 200 routed at {r['offered_rate']:g}/s with ?wait=5 "
            f"(sent {fmt(r['achieved_rate'])}/s): p50 / p99",
            f"{fmt(r['p50_ms'], '.0f')} / {fmt(r['p99_ms'], '.0f', ' ms')} ({r['answers']}; answered "
            f"p99 {fmt(r['answered_after_routed_p99_ms'], '.0f', ' ms')} after routedAt)",
            "p50 <= 120, p99 <= 250 ms",
            r["p50_ms"] is not None and r["p50_ms"] <= 120 and r["p99_ms"] <= 250,
        )
    if "mixed" in w:
        m = w["mixed"]
        add(
            "wait",
            f"{m['waiting_at_once']} waiting at once ({m['held_seconds']:g}s): {m['plain_rate']:g}/s "
            "without a wait, answer p50 / p99",
            f"{fmt(m['plain_held_p50_ms'], '.1f')} / {fmt(m['plain_held_p99_ms'], '.1f', ' ms')} "
            f"(max {fmt(m['plain_held_max_ms'], '.0f', ' ms')}, {m['plain_held']} webhooks)",
            "p99 <= 20 ms",
            m["plain_held_p99_ms"] is not None and m["plain_held_p99_ms"] <= 20,
        )
        add(
            "wait",
            f"without a wait, answer p99: before the burst / while it arrives / drains "
            f"({m['drain_seconds']:g}s) / after",
            f"{fmt(m['plain_before_p99_ms'], '.1f')} / {fmt(m['plain_arriving_p99_ms'], '.1f')} / "
            f"{fmt(m['plain_drain_p99_ms'], '.1f')} / {fmt(m['plain_after_p99_ms'], '.1f', ' ms')}",
        )
        add(
            "wait",
            "waiting ones: answered after routedAt, p50 / p99 / max",
            f"{fmt(m['answered_after_routed_p50_ms'], '.1f')} / "
            f"{fmt(m['answered_after_routed_p99_ms'], '.1f')} / "
            f"{fmt(m['answered_after_routed_max_ms'], '.1f', ' ms')} ({m['burst_answers']}; 202 later "
            f"than 7.1 s: {m['answered_202_after_more_than_7_1s']})",
            "every one <= 100 ms",
            m["answered_after_routed_max_ms"] is not None
            and m["answered_after_routed_max_ms"] <= 100
            and m["answered_202_after_more_than_7_1s"] == 0,
        )
    memory = results.get("memory", {}).get("by_role", {})
    for role, label in (("web", "web (gunicorn master + workers)"), ("worker", "worker (celery)")):
        if role in memory:
            peak = memory[role]["max_process_mb"]
            per_section = ", ".join(
                f"{sec} {mb:.0f}" for sec, mb in memory[role].get("by_section_mb", {}).items()
            )
            add(
                "memory",
                f"{label}: peak RSS per process",
                f"{peak:.0f} MB (by section: {per_section})",
                f"< {RSS_LIMIT_MB} MB",
                peak < RSS_LIMIT_MB,
            )
    growth = results.get("memory", {}).get("worker_rss_growth_mb_per_min_second_half", {})
    if growth:
        add(
            "memory",
            "worker RSS trend, second half of each section",
            ", ".join(f"{sec} {mb:+.1f} MB/min" for sec, mb in growth.items()),
        )
    for role in ("bare", "sandbox", "redis"):
        if role in memory:
            add("memory", f"{role}: peak RSS per process", f"{memory[role]['max_process_mb']:.0f} MB")
    return rows, targets


def format_table(rows: list[tuple[str, str, str, str, str]]) -> str:
    """The rows as a text table, a rule between sections."""
    header = ("section", "figure", "value", "target", "result")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    line = "-+-".join("-" * w for w in widths)
    out = [line, " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    previous = None
    for row in rows:
        if previous is not None and row[0] != previous:
            out.append(line)
        out.append(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        previous = row[0]
    out.append(line)
    return "\n".join(out)


def settings_text(args: argparse.Namespace) -> str:
    """The settings of this run, printed above the table."""
    access = "" if args.access_log else ", no access log"
    redis_kind = "given" if args.redis_given else "private redis-server, no persistence"
    web_tweaks = f"; tweaks: {args.web_tweaks} (bench.tuned_web)" if args.web_tweaks else ""
    worker_tweaks = f"; tweaks: {args.worker_tweaks} (bench.tuned_worker)" if args.worker_tweaks else ""
    events = "" if "no-events" in args.worker_tweaks else " --events"
    return "\n".join(
        [
            f"web:    gunicorn (gunicorn.conf.py) --workers {args.web_workers} --worker-class "
            f"{args.web_worker_class} --threads {args.web_threads}{access}{web_tweaks}",
            f"worker: {args.worker_processes} x celery worker --pool {args.worker_pool} "
            f"--concurrency {args.worker_concurrency} --loglevel INFO{events} (WORKER_CONCURRENCY="
            f"{args.worker_concurrency}){worker_tweaks}",
            f"ingress: wrk -t{args.wrk_threads} -c{args.wrk_connections} -d{args.wrk_seconds:g}s "
            f"(+{args.wrk_warmup:g}s warm-up), rounds {args.rounds}, workers stopped",
            f"e2e:    CXone latency {args.cxone_latency_ms:g} ms, no limit; steps "
            f"{'/'.join(f'{s:g}' for s in args.steps)} per s x {args.step_seconds:g}s; latency run "
            f"{args.latency_seconds:g}s; sender: {args.sender_threads} threads, requests.Session each",
            f"limit:  {args.limit}/min (sandbox and CXONE_RATE_LIMIT_PER_MINUTE), {args.limit_rate:g} "
            f"webhooks/s for {args.limit_seconds:g}s, CXone latency {args.limit_latency_ms:g} ms",
            f"wait:   {args.wait_rate:g}/s with ?wait=5 for {args.wait_seconds:g}s; then {args.burst} "
            f"at once with ?wait=7 beside {args.mixed_rate:g}/s without, CXone latency "
            f"{args.cxone_latency_ms:g} ms",
            f"redis:  {args.redis_url} ({redis_kind}; flushed before and after each section)",
        ]
    )


# ----------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (with a private redis-server unless ``--redis-url`` is given); exit status."""
    args = parse_args(argv)
    logroot = RESULTS_DIR / "logs"
    if logroot.exists():
        shutil.rmtree(logroot)
    logroot.mkdir(parents=True)
    private = None
    if args.redis_url is None:
        if shutil.which("redis-server") is None:
            print(
                "bench: redis-server is not installed (apt-get install redis-server), and no "
                "--redis-url / BENCH_REDIS_URL was given",
                file=sys.stderr,
            )
            return 2
        # A Redis of the bench's own: nobody else's keys or commands in the figures, no persistence.
        private = PrivateRedis(logroot / "redis", durable=False)
        private.start()
        args.redis_url = private.url
    try:
        return run(args, logroot)
    finally:
        if private is not None:
            private.kill()


def run(args: argparse.Namespace, logroot: Path) -> int:
    """Run the chosen sections against the Redis at ``args.redis_url`` and report; exit status."""
    client = redis.Redis.from_url(args.redis_url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        print(f"bench: no Redis answers at {args.redis_url}: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()
    results: dict = {
        "tag": args.tag,
        "quick": args.quick,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_facts(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "settings_text": settings_text(args),
        "sections": {},
    }
    watches: list = []
    runners: dict[str, Callable[[argparse.Namespace, Path, list], dict]] = {
        "ingress": section_ingress,
        "e2e": section_e2e,
        "limit": section_limit,
        "wait": section_wait,
        "backlog": section_backlog,
    }
    began = time.monotonic()
    for name in args.sections:
        section_started = time.monotonic()
        try:
            results["sections"][name] = runners[name](args, logroot / name, watches)
        except KeyboardInterrupt:
            log(f"{name}: interrupted")
            results["sections"][name] = {"error": "interrupted"}
            break
        except Exception as exc:  # a failed section is reported, the others still run
            log(f"{name}: FAILED: {exc}")
            traceback.print_exc()
            results["sections"][name] = {"error": f"{exc.__class__.__name__}: {exc}"}
        results["sections"][name]["section_seconds"] = round(time.monotonic() - section_started, 1)
    results["memory"] = memory_summary(watches)
    results["machine"]["loadavg_after"] = list(os.getloadavg())
    results["total_seconds"] = round(time.monotonic() - began, 1)
    rows, targets = build_table(results)
    results["table"] = [
        dict(zip(("section", "figure", "value", "target", "result"), r, strict=True)) for r in rows
    ]
    results["targets"] = targets

    m = results["machine"]
    print()
    print(
        f"cognigy-cxone-router bench{' [' + args.tag + ']' if args.tag else ''}"
        f"{' (quick)' if args.quick else ''}: {m['cores']} cores ({m['cores_usable']} usable), "
        f"{m['cpu_model']}, {m['memory_gb']} GB, Linux {m['kernel']}, Python {m['python']}, "
        f"load {m['loadavg_before'][0]:.2f} before / {m['loadavg_after'][0]:.2f} after; code "
        f"{m.get('git_commit')}"
        + (f" + {m['git_modified_files']} modified files" if m.get("git_modified_files") else "")
    )
    print(results["settings_text"])
    print(format_table(rows))
    for name, section in results["sections"].items():
        if "error" in section:
            print(
                f"section {name} did not complete: {section['error']} (logs: "
                f"{(logroot / name).relative_to(REPO)})"
            )
    missed = [t for t in targets if t["met"] is False]
    print(
        f"targets: {len(targets) - len(missed)} of {len(targets)} met"
        + (f"; missed: {', '.join(t['figure'] for t in missed)}" if missed else "")
    )
    for step in results["sections"].get("e2e", {}).get("steps", []):
        if "profile" in step:
            p = step["profile"]
            print(
                f"py-spy --gil, worker at {step['offered_rate']:g}/s ({p['samples']} samples, "
                f"{p['file']}): where the worker's CPU (GIL) time goes"
            )
            print("  by thread: " + ", ".join(f"{n} {v}%" for n, v in p["consumer_vs_tasks"]))
            print("  by package (self): " + ", ".join(f"{n} {v}%" for n, v in p["self_by_package"][:10]))
            for frame, share in p["project_inclusive_pct"][:8]:
                print(f"  {share:5.1f}% incl  {frame}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print(
        f"JSON: {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}; "
        f"logs: {logroot.relative_to(REPO)}/ ; {results['total_seconds']:.0f}s in all"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
