"""Flower's task list as scripts/run-flower sets it up: the columns, and a routing in one line.

config/flowerconfig.py is loaded the way Flower loads it (tornado's ``parse_config_file``), so
these tests also prove Flower accepts it and gets the formatter from it.
"""

from __future__ import annotations

import ast
import re
import sys
import types
from pathlib import Path

import pytest
from celery.events.state import Task
from flower.views.tasks import TASK_COLUMNS  # type: ignore[import-untyped]
from tornado.options import OptionParser

REPO = Path(__file__).resolve().parents[3]
RUN_FLOWER = REPO / "scripts" / "run-flower"
MESSAGE = {
    "routing_id": "3f0c1a2b4d5e6f708192a3b4c5d6e7f8",
    "contact_id": "7000001",
    "intent": "sales_inquiry",
    "mode": "digital",
    "queue_name": "Sales Support",
    "skill_id": None,
    "score": 0.9,
    "channel": "webchat3",
    "input_id": None,
    "received_at": 1764520000.5,
}


def conf_path() -> Path:
    """The configuration file scripts/run-flower hands Flower (``--conf``)."""
    conf = re.search(r'--conf="\$\(dirname "\$0"\)/\.\./([\w/.]+)"', RUN_FLOWER.read_text())
    assert conf, "scripts/run-flower passes no --conf"
    return REPO / conf.group(1)


@pytest.fixture(scope="module")
def flower() -> types.SimpleNamespace:
    """The options Flower reads from the configuration file, as Flower defines and reads them."""
    options = OptionParser()
    options.define("format_task", type=types.FunctionType, default=None)
    options.parse_config_file(str(conf_path()), final=False)
    assert options.format_task is not None, "the configuration file sets no format_task"
    return types.SimpleNamespace(format_task=options.format_task)


def routing_task(**fields) -> Task:
    """A task as Flower keeps it from Celery's events (``args`` is the repr Celery sends)."""
    return Task(uuid="a219c55c", name="router.route_contact", args=repr((MESSAGE,)), **fields)


def test_a_routing_reads_as_contact_queue_intent_mode_and_routing_id(flower):
    shown = flower.format_task(routing_task(state="RETRY", eta="2026-11-30T17:41:07.564254+00:00"))

    assert shown.args == (
        "contact 7000001 → Sales Support · sales_inquiry · digital · routing 3f0c1a2b4d5e6f708192a3b4c5d6e7f8"
    )
    assert shown.eta == "17:41:07\u00a0UTC"  # a space that does not wrap in the narrow column


def test_a_routing_to_a_skill_id_names_the_skill(flower):
    task = Task(uuid="b1", args=repr([{**MESSAGE, "queue_name": None, "skill_id": 1200042}]))

    assert "contact 7000001 → skill 1200042 ·" in flower.format_task(task).args


def test_a_task_that_succeeded_shows_no_stale_retry_reason(flower):
    exception = "retry in 4.4 s: CXone answered 503 (outage) on skills"
    routed = routing_task(state="SUCCESS", exception=exception, traceback="Traceback …")
    failed = routing_task(state="FAILURE", exception="failed: revoked by an operator; dead-lettered")

    assert flower.format_task(routed).exception is None
    assert flower.format_task(routed).traceback is None
    assert flower.format_task(failed).exception == "failed: revoked by an operator; dead-lettered"


def test_a_finished_task_shows_no_next_attempt(flower):
    for state in ("SUCCESS", "FAILURE", "REVOKED"):
        assert flower.format_task(routing_task(state=state, eta="2026-11-30T17:41:07+00:00")).eta is None


def test_anything_else_is_shown_as_it_is(flower):
    for args in ("[1, 2]", "({'x': 1},)", "[{'routing_id': 'r'", None):
        assert flower.format_task(Task(uuid="c1", args=args, eta="soon")).args == args
    assert flower.format_task(Task(uuid="c2", eta="soon")).eta == "soon"


def test_run_flower_asks_for_columns_flower_has():
    script = RUN_FLOWER.read_text()
    found = re.search(r"--tasks_columns=([\w,]+)", script)
    assert found, "scripts/run-flower sets no --tasks_columns"
    columns = found.group(1).split(",")
    assert set(columns) <= set(TASK_COLUMNS), set(columns) - set(TASK_COLUMNS)
    assert {"uuid", "args", "state", "retries", "exception", "eta", "received", "worker"} <= set(columns)
    assert "--natural_time=True" in script


def test_the_configuration_imports_only_the_standard_library():
    # Flower runs it after Celery took the working directory off sys.path again: an import of
    # the project would work under `make run` (editable install) and fail in the Docker image.
    tree = ast.parse(conf_path().read_text())
    imported = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
