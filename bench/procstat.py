"""Reading processes from /proc: the tree under a pid, peak memory (VmHWM/VmRSS) and CPU time.

A :class:`ProcessWatch` samples the trees of a few named roots (gunicorn master, celery worker,
sandbox, Redis) in a background thread and keeps, per process, the highest VmRSS it saw and the
kernel's own high-water mark VmHWM (exact peak RSS since the process started, whatever the
sampling interval). CPU shares come from utime+stime in /proc/<pid>/stat.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:  # the process exited between listing and reading
        return None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (via /proc/<pid>/task/*/children, else a scan of /proc)."""
    tasks = PROC / str(pid) / "task"
    found: list[int] = []
    try:
        task_dirs = list(tasks.iterdir())
    except OSError:
        return found
    have_children_files = False
    for task in task_dirs:
        text = _read(task / "children")
        if text is None:
            continue
        have_children_files = True
        found += [int(part) for part in text.split()]
    if have_children_files:
        return sorted(set(found))
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _read(entry / "stat")
            if stat and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are alive now."""
    if not (PROC / str(pid)).exists():
        return []
    result, pending = [], [pid]
    while pending:
        current = pending.pop()
        result.append(current)
        pending += children(current)
    return result


def memory_kb(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in kB, or None when the process is gone."""
    text = _read(PROC / str(pid) / "status")
    if text is None:
        return None
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    if "VmRSS" not in values:
        return None  # a zombie has no memory lines
    return values["VmRSS"], values.get("VmHWM", values["VmRSS"])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` (0 when it is gone)."""
    text = _read(PROC / str(pid) / "stat")
    if text is None:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def command_line(pid: int) -> str:
    """A process's command line, arguments joined by spaces (empty once it has exited)."""
    text = _read(PROC / str(pid) / "cmdline") or ""
    return " ".join(part for part in text.split("\0") if part)


@dataclass
class ProcessPeak:
    """The highest memory one process showed while it was watched."""

    pid: int
    role: str
    kind: str  # "master"/"worker" for gunicorn and prefork trees, "process" otherwise
    command: str
    rss_max_kb: int = 0
    hwm_kb: int = 0

    def to_json(self) -> dict:
        """The peak as bench.json reports it (MB, the higher of sampled RSS and VmHWM)."""
        return {
            "pid": self.pid,
            "role": self.role,
            "kind": self.kind,
            "command": self.command[:160],
            "peak_rss_mb": round(max(self.rss_max_kb, self.hwm_kb) / 1024, 1),
            "sampled_rss_max_mb": round(self.rss_max_kb / 1024, 1),
            "vm_hwm_mb": round(self.hwm_kb / 1024, 1),
        }


@dataclass
class ProcessWatch:
    """Samples the process trees under ``roots`` (role -> pid) every ``interval`` seconds."""

    roots: dict[str, int] = field(default_factory=dict)
    interval: float = 0.5
    peaks: dict[int, ProcessPeak] = field(default_factory=dict)
    #: Every ``timeline_every`` seconds: [seconds since start, role, pid, VmRSS MB], to tell growth
    #: from a plateau.
    timeline: list[list] = field(default_factory=list)
    timeline_every: float = 5.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="bench-procwatch", daemon=True)
        self._started = time.monotonic()
        self._next_point = 0.0

    def add(self, role: str, pid: int) -> None:
        """Watch the process tree under ``pid`` as ``role``, sampling it at once."""
        with self._lock:
            self.roots[role] = pid
        self.sample()

    def start(self) -> ProcessWatch:
        """Start sampling in a background thread; returns the watch."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take a last sample (the high-water marks of processes about to be stopped) and stop."""
        self.sample()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        """Read the memory of every process in the watched trees and keep each one's peak."""
        with self._lock:
            roots = dict(self.roots)
        elapsed = time.monotonic() - self._started
        record = elapsed >= self._next_point
        if record:
            self._next_point = elapsed + self.timeline_every
        for role, root in roots.items():
            for pid in tree(root):
                memory = memory_kb(pid)
                if memory is None:
                    continue
                peak = self.peaks.get(pid)
                if peak is None:
                    peak = self.peaks[pid] = ProcessPeak(pid, role, "process", command_line(pid))
                if pid != root:
                    peak.kind = "worker"
                elif peak.kind == "process" and children(pid):
                    peak.kind = "master"
                peak.rss_max_kb = max(peak.rss_max_kb, memory[0])
                peak.hwm_kb = max(peak.hwm_kb, memory[1])
                if record and role.split(":")[0] in ("web", "worker"):
                    self.timeline.append([round(elapsed, 1), role, pid, round(memory[0] / 1024, 1)])

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds used so far by each role's live process tree."""
        with self._lock:
            roots = dict(self.roots)
        return {role: sum(cpu_seconds(pid) for pid in tree(root)) for role, root in roots.items()}

    def report(self) -> list[dict]:
        """Every process seen, with its peak, grouped by role (masters first)."""
        return [
            peak.to_json()
            for peak in sorted(self.peaks.values(), key=lambda p: (p.role, p.kind != "master", p.pid))
        ]


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine spent busy (not idle nor iowait) since boot."""
    text = _read(PROC / "stat") or ""
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            return (sum(values[:8]) - idle) / CLOCK_TICKS
    return 0.0


def reaped_children_seconds() -> float:
    """CPU seconds of this process's children that have exited and been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuWindow:
    """CPU used during a measurement, per role, by the load generator, and by everything else.

    ``others`` is the machine's busy CPU minus ours: other users of a shared machine (a test run
    next door) show up there, so a noisy figure can be recognised as such.
    """

    def __init__(self, watch: ProcessWatch):
        self.watch = watch
        self.roles = watch.cpu_by_role()
        self.machine = machine_busy_seconds()
        self.children = reaped_children_seconds()
        self.started = time.monotonic()

    def close(self) -> dict[str, float]:
        """CPU cores used on average since the window opened: per role, ``loadgen``, the whole
        ``machine`` and ``others`` (what was not ours)."""
        seconds = time.monotonic() - self.started
        if seconds <= 0:
            return {}
        roles = self.watch.cpu_by_role()
        shares = {role: round((roles[role] - self.roles.get(role, 0.0)) / seconds, 3) for role in roles}
        loadgen = (reaped_children_seconds() - self.children) / seconds
        machine = (machine_busy_seconds() - self.machine) / seconds
        merged: dict[str, float] = {}
        for role, share in shares.items():
            merged[role.split(":")[0]] = round(merged.get(role.split(":")[0], 0.0) + share, 3)
        merged["loadgen"] = round(loadgen, 3)
        merged["machine"] = round(machine, 3)
        merged["others"] = round(max(0.0, machine - sum(shares.values()) - loadgen), 3)
        return merged
