"""``.env.example`` and the README's settings table list exactly the variables the product reads.

What is read comes from the code itself: every variable declared on :class:`Settings`, plus every
variable that other product code reads on purpose (the sandbox's ``SANDBOX_*``, ``make demo``'s
``ROUTER_URL``, the Procfile's and the scripts' ``$WEB_THREADS``, compose's ``$WEB_PUBLISH``, …),
found by reading the Python code (``os.environ``/``getenv``/an ``environ`` mapping) and the
shell lines (``$NAME``/``${NAME…}``) of the files below. A variable that is read but not
documented, or documented but read nowhere, fails with the file and the name.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import yaml

from shared.settings import Settings, environment_variables

REPO = Path(__file__).resolve().parents[3]
#: Product code: what runs in production, in the demo or as an operator tool (tests and the
#: benchmark are not product code).
PYTHON_SOURCES = ("ingress", "worker", "shared", "ops", "cxone_sandbox", "tools", "gunicorn.conf.py")
SHELL_SOURCES = (
    "scripts",
    "Procfile",
    "docker-compose.yml",
    "docker-compose.edge.yml",
    "deploy/caddy/Caddyfile",
)
#: Read by the programs we start rather than by our code, and documented for that reason.
READ_BY_TOOLS = {
    "WEB_CONCURRENCY": "gunicorn's default number of worker processes",
    "FLOWER_BASIC_AUTH": "Flower reads its FLOWER_* options from the environment itself",
}
#: Set by the operating system or the container, never configured by an operator.
PLATFORM = {"HOME", "HOSTNAME", "PATH", "PWD", "TMPDIR", "PPID", "SECONDS"}
#: Scripts of the test tooling, not of the product (they configure test runs, not the router).
TEST_TOOLING = {"scripts/test-under-load"}

#: ``$NAME``, ``${NAME}`` (shell, compose) and ``{$NAME}`` (Caddyfile).
_SHELL_VARIABLE = re.compile(r"\{?\$\{?([A-Z][A-Z0-9_]*)")
_ENV_EXAMPLE_LINE = re.compile(r"^#?([A-Z][A-Z0-9_]*)=", re.MULTILINE)
_README_TABLE_HEADER = "| Variable | Default | Meaning |"


def _python_files() -> list[Path]:
    files: list[Path] = []
    for name in PYTHON_SOURCES:
        path = REPO / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else []
    return files


def _shell_files() -> list[Path]:
    files: list[Path] = []
    for name in SHELL_SOURCES:
        path = REPO / name
        files += sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return [path for path in files if str(path.relative_to(REPO)) not in TEST_TOOLING]


def _is_environ(node: ast.expr) -> bool:
    """``os.environ``, or a mapping named ``environ`` passed around in its place (as tests pass a dict)."""
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return name == "environ"


def _names_read_in_python(source: str) -> set[str]:
    """Upper-case string constants used as keys of an environment: ``os.environ["X"]``,
    ``environ.get("X")``, ``os.getenv("X")`` and ``helper(environ, "X", …)``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        keys: list[ast.expr] = []
        if isinstance(node, ast.Subscript) and _is_environ(node.value):
            keys = [node.slice]
        elif isinstance(node, ast.Call):
            func = node.func
            receiver_is_environ = isinstance(func, ast.Attribute) and _is_environ(func.value)
            is_getenv = isinstance(func, ast.Attribute | ast.Name) and (
                getattr(func, "attr", None) == "getenv" or getattr(func, "id", None) == "getenv"
            )
            if receiver_is_environ or is_getenv:
                keys = node.args[:1]
            elif any(_is_environ(arg) for arg in node.args):
                keys = list(node.args)
        found |= {
            key.value
            for key in keys
            if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.isupper()
        }
    return found


def _names_read_in_shell(text: str) -> set[str]:
    """``$NAME`` and ``${NAME…}`` outside comment lines."""
    lines = (line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return {match for line in lines for match in _SHELL_VARIABLE.findall(line)}


def _compose_environment_names() -> set[str]:
    """Variables docker-compose.yml sets for our processes: they read them, so they are settings."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    names: set[str] = set()
    for service in compose["services"].values():
        environment = service.get("environment") or {}
        names |= set(environment) if isinstance(environment, dict) else {e.split("=")[0] for e in environment}
    return names


def variables_read_by_the_product() -> dict[str, set[str]]:
    """Every variable the product reads → where it is read (a file, or ``Settings``)."""
    where: dict[str, set[str]] = defaultdict(set)
    for variable in environment_variables(Settings):
        where[variable.name].add("shared/settings.py (Settings)")
    for path in _python_files():
        for name in _names_read_in_python(path.read_text(encoding="utf-8")):
            where[name].add(str(path.relative_to(REPO)))
    for path in _shell_files():
        for name in _names_read_in_shell(path.read_text(encoding="utf-8")):
            where[name].add(str(path.relative_to(REPO)))
    for name in _compose_environment_names():
        where[name].add("docker-compose.yml (environment)")
    for name, why in READ_BY_TOOLS.items():
        where[name].add(why)
    return {name: files for name, files in where.items() if name not in PLATFORM}


def variables_in_env_example() -> set[str]:
    """Every ``NAME=`` line of .env.example, commented out (``#NAME=``) or not."""
    return set(_ENV_EXAMPLE_LINE.findall((REPO / ".env.example").read_text(encoding="utf-8")))


def variables_in_readme_table() -> set[str]:
    """The names in the first column of the README's settings table (one row may name several)."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(_README_TABLE_HEADER) + 2  # past the header and the |---| line
    names: set[str] = set()
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        first_cell = line.split("|")[1]
        names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    return names


def _difference(documented: set[str], read: dict[str, set[str]], where: str) -> list[str]:
    missing = [f"{name} (read in {', '.join(sorted(read[name]))})" for name in sorted(set(read) - documented)]
    unread = sorted(documented - set(read))
    return [f"not in {where}: {name}" for name in missing] + [
        f"in {where} but read nowhere: {n}" for n in unread
    ]


def test_the_env_example_lists_exactly_the_variables_the_product_reads() -> None:
    problems = _difference(variables_in_env_example(), variables_read_by_the_product(), ".env.example")

    assert problems == [], "\n".join(problems)


def test_the_readme_settings_table_lists_exactly_the_variables_the_product_reads() -> None:
    problems = _difference(variables_in_readme_table(), variables_read_by_the_product(), "the README table")

    assert problems == [], "\n".join(problems)


def test_the_demo_settings_set_only_variables_the_product_reads() -> None:
    demo = set(_ENV_EXAMPLE_LINE.findall((REPO / "config" / "demo.env").read_text(encoding="utf-8")))

    assert demo - set(variables_read_by_the_product()) == set()


def test_the_scan_finds_every_way_the_product_reads_a_variable() -> None:
    # The scan is what keeps the documentation honest, so it must see each form the code uses.
    source = """
import os
a = os.environ["DIRECT"]
b = os.environ.get("WITH_GET", "x")
c = os.getenv("WITH_GETENV")
def read(environ):
    return environ.get("PASSED_MAPPING"), _positive_int(environ, "THROUGH_A_HELPER", 1)
d = {"NOT_AN_ENVIRONMENT": 1}["NOT_AN_ENVIRONMENT"]
"""
    assert _names_read_in_python(source) == {
        "DIRECT",
        "WITH_GET",
        "WITH_GETENV",
        "PASSED_MAPPING",
        "THROUGH_A_HELPER",
    }
    shell = 'exec app --port "${APP_PORT:-1}" --user $APP_USER\n# ${IN_A_COMMENT}\nx="$${ESCAPED:-2}"'
    assert _names_read_in_shell(shell) == {"APP_PORT", "APP_USER", "ESCAPED"}
