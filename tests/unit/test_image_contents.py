"""The image carries everything the Procfile and docker-compose.yml run, and ``python -m ops``.

There is no Docker engine here to build it, so this reads the Dockerfile's ``COPY`` lines and
.dockerignore, works out what the processes start (the Procfile's and compose's commands, the
scripts they run, the Python packages those import, the files they read by default) and checks that
each is copied into the image and not left out of the build context.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import shlex
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
#: Our own top-level Python packages (the rest are installed from the lock).
FIRST_PARTY = sorted(p.parent.name for p in REPO.glob("*/__init__.py"))
#: Started by operators in the image (README, docs/operations.md), not by the Procfile.
OPERATOR_COMMANDS = ["python -m ops doctor"]


def commands() -> list[list[str]]:
    """Every command the Procfile and docker-compose.yml start, split as a shell would."""
    found = []
    for line in (REPO / "Procfile").read_text(encoding="utf-8").splitlines():
        if ":" in line:
            found.append(shlex.split(line.partition(":")[2]))
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    for service in compose["services"].values():
        command = service.get("command")
        if isinstance(command, list) and command[:2] == ["sh", "-c"]:
            found.append(shlex.split(command[2]))
        elif isinstance(command, list):
            found.append(command)
    return found + [shlex.split(c) for c in OPERATOR_COMMANDS]


def _module_of(word: str) -> str | None:
    """``ingress.wsgi:app`` → ``ingress``; ``worker.app`` → ``worker``; None when not ours."""
    top = word.split(":")[0].split(".")[0]
    return top if top in FIRST_PARTY else None


def needed() -> set[str]:
    """Paths (relative to the repository) the image's processes need."""
    paths: set[str] = set()
    for argv in commands():
        for word in argv:
            if (REPO / word).is_file():  # a script, e.g. scripts/run-flower
                paths.add(word)
                paths |= _needed_by_script(REPO / word)
            elif (module := _module_of(word)) is not None:
                paths.add(module)
        if "gunicorn" in argv:
            paths.add("gunicorn.conf.py")  # gunicorn reads it from the working directory
    paths.add("config")  # the default ROUTES_FILE, config/routes.example.yaml
    return _with_imports(paths)


def _needed_by_script(script: Path) -> set[str]:
    """Our packages a shell script runs (``python -m shared.x``, ``--app worker.app``)."""
    text = script.read_text(encoding="utf-8")
    return {m for word in re.findall(r"[\w.:/-]+", text) if (m := _module_of(word)) is not None}


def _with_imports(paths: set[str]) -> set[str]:
    """``paths`` plus every first-party package the Python in them imports, transitively."""
    result, todo = set(paths), list(paths)
    while todo:
        path = REPO / todo.pop()
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.suffix == ".py" else []
        for file in files:
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    module = _module_of(name)
                    if module is not None and module not in result:
                        result.add(module)
                        todo.append(module)
    return result


def copied() -> set[str]:
    """What the Dockerfile's ``COPY`` lines take from the build context (without a trailing /)."""
    sources: set[str] = set()
    for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words[:1] != ["COPY"] or any(w.startswith("--from") for w in words):
            continue
        arguments = [w for w in words[1:] if not w.startswith("--")]
        sources |= {source.rstrip("/") for source in arguments[:-1]}
    return sources


def ignored_by_dockerignore(path: str) -> bool:
    """``path`` (or a folder above it) matches a .dockerignore pattern, so the build never sees it."""
    patterns = [
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes for pattern in patterns)


def test_everything_the_processes_run_is_copied_into_the_image() -> None:
    required = needed()
    # What the processes run, found from the files themselves (a sanity check of the search).
    assert {"ingress", "worker", "shared", "ops", "cxone_sandbox", "gunicorn.conf.py", "config"} <= required
    assert "scripts/run-flower" in required

    sources = copied()
    missing = sorted(p for p in required if not any(p == s or p.startswith(s + "/") for s in sources))
    assert missing == [], f"not copied into the image: {missing}"


def test_nothing_the_image_copies_is_left_out_of_the_build_context() -> None:
    for source in copied():
        assert not ignored_by_dockerignore(source), (
            f".dockerignore drops {source}, which the Dockerfile copies"
        )
        assert (REPO / source).exists(), source


def test_tests_and_tools_stay_out_of_the_image() -> None:
    assert ignored_by_dockerignore("tests") and ignored_by_dockerignore("tools/demo.py")
    assert ignored_by_dockerignore(".env") and ignored_by_dockerignore("shared/__pycache__")
    assert not {"tests", "tools", "bench"} & copied()
