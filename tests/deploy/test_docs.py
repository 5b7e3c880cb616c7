"""docs/deploy.md: the job executions it tells the user to run use real jobs and real flags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO, check_command_line, terraform_jobs

DOC = REPO / "docs" / "deploy.md"
GCLOUD_EXECUTE = re.compile(r"gcloud\s+run\s+jobs\s+execute\s+(\S+)((?:[^\n]*\\\n)*[^\n]*)")
ARGS_OPTION = re.compile(r"--args=(?:\"([^\"]*)\"|'([^']*)'|(\S+))")


def _executions():
    text = DOC.read_text()
    jobs = {job["name"]: job for job in terraform_jobs().values()}
    found = []
    for m in GCLOUD_EXECUTE.finditer(text):
        name, rest = m.group(1), m.group(2).replace("\\\n", " ")
        assert name in jobs, f"docs/deploy.md executes unknown job {name}"
        a = ARGS_OPTION.search(rest)
        args = re.sub(r"\$\{?\w+\}?", "X", a.group(1) or a.group(2) or a.group(3)).split(",") if a else None
        found.append((name, Path(jobs[name]["command"][0]).name, args))
    return found


EXECUTIONS = _executions()


def test_doc_runs_the_jobs():
    assert {name for name, _, _ in EXECUTIONS} >= {"clickstream-batcher", "clickstream-compactor", "clickstream-loader"}


@pytest.mark.parametrize("name,binary,args", [e for e in EXECUTIONS if e[2]], ids=lambda v: str(v) if isinstance(v, str) else None)
def test_doc_command_lines_exist_in_the_binaries(name, binary, args):
    problems = check_command_line(binary, args, f"docs/deploy.md ({name})")
    assert not problems, "\n".join(problems)


def test_doc_mentions_every_terraform_output():
    outputs = (REPO / "terraform" / "environments" / "prod" / "outputs.tf").read_text()
    used = set(re.findall(r"terraform(?: -chdir=\S+)? output (?:-raw |-json )?(\w+)", DOC.read_text()))
    defined = set(re.findall(r'^output "(\w+)"', outputs, re.M))
    assert used <= defined, f"docs/deploy.md reads outputs that do not exist: {sorted(used - defined)}"
