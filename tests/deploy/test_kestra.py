"""Kestra flows: parse, follow the blueprint conventions, use pinned plugin types, and every
clickstream command line they run exists in the binaries' --help."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import FLOWS, KESTRA, check_command_line, strip_interpolation, terraform_jobs

FLOW_FILES = sorted(FLOWS.glob("*.yml")) + sorted(FLOWS.glob("*.yaml"))
NAMESPACE = "clickstream.prod"
NETWORK_TASKS = {
    "io.kestra.plugin.scripts.shell.Commands",
    "io.kestra.plugin.dbt.cli.DbtCLI",
    "io.kestra.plugin.git.Clone",
}
ALERT_TYPES_PREFIX = "io.kestra.plugin.notifications."


def _plugins() -> tuple[str, set[str]]:
    doc = yaml.safe_load((KESTRA / "plugins.yml").read_text())
    types = {t for group in doc["plugins"].values() for t in group}
    return str(doc["kestra_version"]), types


def _flow(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _walk_tasks(tasks):
    """Every task, including those nested in flowable tasks (tasks/then/else)."""
    for task in tasks or []:
        yield task
        for key in ("tasks", "then", "else", "errors", "finally"):
            if isinstance(task.get(key), list):
                yield from _walk_tasks(task[key])


def _all_tasks(flow: dict):
    yield from _walk_tasks(flow.get("tasks"))
    yield from _walk_tasks(flow.get("errors"))


def _types_in(node):
    """Every `type:` value anywhere in the flow (tasks, triggers, task runners, defaults)."""
    if isinstance(node, dict):
        if isinstance(node.get("type"), str) and "." in node["type"]:
            yield node["type"]
        for value in node.values():
            yield from _types_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _types_in(value)


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def test_there_are_flows():
    ids = {p.stem for p in FLOW_FILES}
    assert {"hourly-batch-load", "dbt-nightly-rebuild", "backfill-range", "dbt-build"} <= ids


def test_plugin_list_pins_a_kestra_version():
    version, types = _plugins()
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", version), version
    assert types and all(t.startswith("io.kestra.plugin.") for t in types)


@pytest.mark.parametrize("path", FLOW_FILES, ids=lambda p: p.name)
def test_flow_structure(path):
    flow = _flow(path)
    for key in ("id", "namespace", "tasks", "description"):
        assert flow.get(key), f"{path.name}: missing {key}"
    assert flow["id"] == path.stem, f"{path.name}: id {flow['id']} is not the file name"
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", flow["id"]), f"{path.name}: id is not kebab-case"
    assert flow["namespace"] == NAMESPACE
    ids = [t["id"] for t in _all_tasks(flow)]
    assert len(ids) == len(set(ids)), f"{path.name}: duplicate task ids"
    for task in _all_tasks(flow):
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", task["id"]), f"{path.name}: task id {task['id']} is not snake_case"
        assert (task.get("description") or "").strip(), f"{path.name}: task {task['id']} has no description"
    for trigger in flow.get("triggers", []):
        assert re.fullmatch(r"[a-z][a-z0-9_]*", trigger["id"])


@pytest.mark.parametrize("path", FLOW_FILES, ids=lambda p: p.name)
def test_plugin_types_are_pinned(path):
    _, known = _plugins()
    used = set(_types_in(_flow(path)))
    unknown = sorted(used - known)
    assert not unknown, f"{path.name}: plugin types not in kestra/plugins.yml: {unknown}"


@pytest.mark.parametrize("path", FLOW_FILES, ids=lambda p: p.name)
def test_concurrency_retries_and_alerting(path):
    flow = _flow(path)
    concurrency = flow.get("concurrency") or {}
    assert concurrency.get("limit") == 1, f"{path.name}: concurrency limit must be 1"
    assert concurrency.get("behavior") in ("QUEUE", "FAIL"), f"{path.name}: concurrency behavior"
    for task in _walk_tasks(flow["tasks"]):
        if task["type"] in NETWORK_TASKS:
            retry = task.get("retry") or {}
            assert retry.get("type") in ("exponential", "constant", "random"), f"{path.name}: {task['id']} has no retry"
            assert retry.get("maxAttempts"), f"{path.name}: {task['id']} retry has no maxAttempts"
            if retry["type"] == "exponential":
                assert retry.get("interval") and retry.get("maxInterval"), f"{path.name}: {task['id']} backoff"
    errors = flow.get("errors") or []
    assert any(t["type"].startswith(ALERT_TYPES_PREFIX) for t in errors), f"{path.name}: errors branch sends no alert"
    for task in errors:
        if task["type"].startswith(ALERT_TYPES_PREFIX):
            assert "secret(" in task.get("url", ""), f"{path.name}: alert URL must come from secret()"


@pytest.mark.parametrize("path", FLOW_FILES, ids=lambda p: p.name)
def test_secrets_come_from_secret_function(path):
    text = path.read_text()
    assert "hooks.slack.com" not in text
    assert "BEGIN PRIVATE KEY" not in text
    assert "private_key" not in text
    for match in re.finditer(r"(?i)(key-file|keyfile|credentials)\S*", text):
        pass  # key files are written from secret() by inputFiles; checked below
    flow = _flow(path)
    for default in flow.get("pluginDefaults", []):
        for name, value in (default["values"].get("inputFiles") or {}).items():
            assert "secret(" in value, f"{path.name}: inputFiles {name} must come from secret()"


def test_schedules():
    hourly = _flow(FLOWS / "hourly-batch-load.yml")
    (trigger,) = hourly["triggers"]
    assert trigger["type"] == "io.kestra.plugin.core.trigger.Schedule"
    assert re.fullmatch(r"\d+ \* \* \* \*", trigger["cron"]), "hourly flow must run every hour"
    nightly = _flow(FLOWS / "dbt-nightly-rebuild.yml")
    (trigger,) = nightly["triggers"]
    assert trigger["type"] == "io.kestra.plugin.core.trigger.Schedule"
    assert re.fullmatch(r"\d+ \d+ \* \* \*", trigger["cron"]), "dbt flow must run nightly"
    assert hourly["concurrency"]["behavior"] == "QUEUE", "two hourly runs must never overlap, later ones wait"


def _dbt_commands(flow: dict) -> list[str]:
    return [" ".join(t["commands"]) for t in _all_tasks(flow) if t["type"] == "io.kestra.plugin.dbt.cli.DbtCLI"]


def _selectors() -> set[str]:
    doc = yaml.safe_load((KESTRA.parent / "dbt" / "selectors.yml").read_text())
    return {s["name"] for s in doc["selectors"]}


def _dbt_subflows(flow: dict) -> list[dict]:
    return [
        t for t in _all_tasks(flow)
        if t["type"] == "io.kestra.plugin.core.flow.Subflow" and t["flowId"] == "dbt-build"
    ]


def test_every_dbt_run_goes_through_one_flow_that_never_runs_twice_at_once():
    """Incremental models record what they consumed at the end of a run: two dbt runs at once
    could rebuild a day from a snapshot the other already moved past."""
    for path in FLOW_FILES:
        if path.stem != "dbt-build":
            assert not _dbt_commands(_flow(path)), f"{path.name} runs dbt itself instead of through dbt-build"
    flow = _flow(FLOWS / "dbt-build.yml")
    assert flow["concurrency"] == {"limit": 1, "behavior": "QUEUE"}
    (dbt,) = _dbt_commands(flow)
    assert "dbt build" in dbt and "--target bigquery" in dbt
    assert "--selector ' ~ inputs.selector" in dbt and "--full-refresh" in dbt
    (selector,) = [i for i in flow["inputs"] if i["id"] == "selector"]
    assert set(selector["values"]) <= _selectors() and selector["defaults"] == "hourly"
    callers = {path.stem: _dbt_subflows(_flow(path)) for path in FLOW_FILES}
    for name in ("hourly-batch-load", "dbt-nightly-rebuild", "backfill-range"):
        assert callers[name], f"{name} does not build dbt through dbt-build"
        for task in callers[name]:
            assert task["namespace"] == NAMESPACE and task["wait"] is True and task["transmitFailed"] is True


def test_the_hourly_flow_loads_without_a_window_and_builds_the_hourly_dbt_models_after_the_load():
    flow = _flow(FLOWS / "hourly-batch-load.yml")
    order = [t["id"] for t in flow["tasks"]]
    assert order == ["batch", "compact", "load", "dbt_hourly"], order
    text = (FLOWS / "hourly-batch-load.yml").read_text()
    for window in ("--from", "--to", "--hour=", "dateAdd"):
        assert window not in text, f"the hourly flow still passes a fixed window ({window}): late data would be missed"
    (dbt,) = _dbt_subflows(flow)
    assert dbt["inputs"] == {"selector": "hourly"}


def test_the_nightly_flow_builds_what_needs_the_history_and_full_refresh_is_on_demand():
    flow = _flow(FLOWS / "dbt-nightly-rebuild.yml")
    (dbt,) = _dbt_subflows(flow)
    assert dbt["inputs"]["selector"] == "nightly"
    assert dbt["inputs"]["full_refresh"] == "{{ inputs.full_refresh }}"
    assert flow["triggers"][0]["inputs"]["full_refresh"] is False, "the schedule must not full-refresh every night"


def test_the_backfill_loads_changed_days_and_rebuilds_them_from_the_load_record():
    flow = _flow(FLOWS / "backfill-range.yml")
    (dbt,) = _dbt_subflows(flow)
    assert dbt["inputs"] == {"selector": "hourly"}
    text = (FLOWS / "backfill-range.yml").read_text()
    assert "{% if inputs.reload %},--from=" in text, "a forced reload only when asked"


# --- Command lines -----------------------------------------------------------------------

PEBBLE_BLOCK = re.compile(r"\{%.*?%\}", re.S)
PEBBLE_EXPR = re.compile(r"\{\{.*?\}\}", re.S)
GCLOUD_EXECUTE = re.compile(r"gcloud\s+(?:beta\s+)?run\s+jobs\s+execute\s+(\S+)([^\n]*)")
ARGS_OPTION = re.compile(r"--args=(?:\"([^\"]*)\"|'([^']*)'|(\S+))")
DIRECT = re.compile(r"(?<![\w/.-])(clickstream-(?:collector|batcher|loader))\b([^\n;&|]*)")


def _render(text: str) -> str:
    """Make a Pebble template checkable: drop {% %} tags, put a value for {{ }}."""
    return PEBBLE_EXPR.sub("X", PEBBLE_BLOCK.sub("", text))


def _command_lines(flow: dict):
    """(binary, args, where) for every clickstream invocation in the flow."""
    jobs = {job["name"]: job for job in terraform_jobs().values()}
    for task in _all_tasks(flow):
        for raw in _strings({k: v for k, v in task.items() if k in ("commands", "beforeCommands", "script")}):
            text = _render(raw)
            for m in GCLOUD_EXECUTE.finditer(text):
                job_name, rest = m.group(1), m.group(2)
                where = f"{flow['id']}.{task['id']} (job {job_name})"
                assert job_name in jobs, f"{where}: no Cloud Run job {job_name} in terraform (has {sorted(jobs)})"
                job = jobs[job_name]
                binary = Path(job["command"][0]).name
                a = ARGS_OPTION.search(rest)
                if a:
                    args = [x for x in (a.group(1) or a.group(2) or a.group(3)).split(",") if x]
                else:  # no override: the job's default arguments run
                    args = [strip_interpolation(x) for x in job["args"]]
                yield binary, args, where
            text = GCLOUD_EXECUTE.sub("", text)
            for m in DIRECT.finditer(text):
                yield m.group(1), m.group(2).split(), f"{flow['id']}.{task['id']}"


COMMAND_LINES = [c for path in FLOW_FILES for c in _command_lines(_flow(path))]


@pytest.mark.parametrize("binary,args,where", COMMAND_LINES, ids=[c[2] for c in COMMAND_LINES])
def test_flow_command_line_exists_in_the_binary(binary, args, where):
    problems = check_command_line(binary, args, where)
    assert not problems, "\n".join(problems)


def test_flows_invoke_clickstream_commands():
    binaries = {binary for binary, _, _ in COMMAND_LINES}
    assert binaries == {"clickstream-batcher", "clickstream-loader"}, binaries
