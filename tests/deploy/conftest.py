"""Shared helpers for the deployment checks. Everything here runs offline."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
ENV_ROOT = TERRAFORM / "environments" / "prod"
MODULES = TERRAFORM / "modules"
KESTRA = REPO / "kestra"
FLOWS = KESTRA / "flows"

# The names the brief (the deployment contract) fixes; the binaries' defaults are
# compared with these too where the binary exists.
TOPIC = "clickstream-events"
DEAD_LETTER_TOPIC = "clickstream-events-dead-letter"
SUBSCRIPTION = "clickstream-events-batcher"
DEAD_LETTER_SUBSCRIPTION = "clickstream-events-dead-letter-audit"
RAW_DATASET = "clickstream_raw"
EVENTS_TABLE = "events"
PARTITION_TYPE = "DAY"
PARTITION_FIELD = "event_time"
CLUSTERING = ["event_type", "category_code", "product_id"]

BINARIES = {
    "clickstream-collector": "collector",
    "clickstream-batcher": "batcher",
    "clickstream-loader": "loader",
}


# --- HCL -------------------------------------------------------------------------------

def _unquote(value):
    """python-hcl2 (>= 7) keeps string literals quoted and block keys quoted; undo that."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            return value[1:-1]
        return value
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {
            _unquote(k): _unquote(v)
            for k, v in value.items()
            if k not in ("__is_block__", "__comments__", "__inline_comments__")
        }
    return value


@functools.lru_cache(maxsize=None)
def load_hcl(path: Path) -> dict:
    import hcl2  # from .venv-hcl

    with open(path, encoding="utf-8") as f:
        return _unquote(hcl2.load(f))


def blocks(doc: dict, kind: str) -> dict:
    """Merge a list of one-key blocks (module/variable/output/resource type) into a dict."""
    merged: dict = {}
    for item in doc.get(kind, []):
        merged.update(item)
    return merged


def resources(doc: dict) -> dict[tuple[str, str], dict]:
    out = {}
    for item in doc.get("resource", []):
        for rtype, named in item.items():
            for name, body in named.items():
                out[(rtype, name)] = body
    return out


def env_root_modules() -> dict:
    return blocks(load_hcl(ENV_ROOT / "main.tf"), "module")


def terraform_jobs() -> dict:
    """The Cloud Run jobs map of the environment root (component -> job definition)."""
    return env_root_modules()["jobs"]["jobs"]


TEMPLATE_RE = re.compile(r"\$\{[^{}]*(\{[^{}]*\}[^{}]*)*\}")


def strip_interpolation(value: str) -> str:
    """Replace Terraform ${...} interpolations by a placeholder value."""
    return TEMPLATE_RE.sub("X", value)


# --- Binaries ----------------------------------------------------------------------------

def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR") or (REPO / "target"))


def binary_path(binary: str) -> Path:
    return target_dir() / "debug" / binary


@functools.lru_cache(maxsize=None)
def help_text(binary: str, subcommand: str | None = None) -> str:
    """`BIN [SUB] --help`; fails the test (never skips) when the binary is missing."""
    path = binary_path(binary)
    if not path.exists():
        pytest.fail(
            f"{binary} is not built at {path}: run `cargo build -p {BINARIES[binary]}` "
            f"(or set CARGO_TARGET_DIR). The deployment calls this binary, so its CLI must be "
            f"checked; this failure is expected until the {BINARIES[binary]} package lands.",
            pytrace=False,
        )
    argv = [str(path)] + ([subcommand] if subcommand else []) + ["--help"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        pytest.fail(f"`{' '.join(argv)}` exited {proc.returncode}: {proc.stderr.strip()}", pytrace=False)
    return proc.stdout


FLAG_RE = re.compile(r"^\s*(?:-\w,\s+)?(--[a-z0-9][a-z0-9-]*)", re.M)
ENV_RE = re.compile(r"\[env:\s*([A-Z0-9_]+)=")


def help_flags(text: str) -> set[str]:
    return set(FLAG_RE.findall(text))


def help_envs(text: str) -> set[str]:
    return set(ENV_RE.findall(text))


def help_subcommands(text: str) -> set[str]:
    """Subcommand names of a clap 'Commands:' section."""
    subs: set[str] = set()
    in_commands = False
    for line in text.splitlines():
        if re.match(r"^\S.*:\s*$", line):
            in_commands = line.strip().rstrip(":").lower() in ("commands", "subcommands")
            continue
        if in_commands:
            # "  name   description": two spaces of indent; wrapped descriptions are deeper.
            m = re.match(r"^  ([a-z][a-z0-9-]*)(?:\s{2,}|$)", line)
            if m:
                subs.add(m.group(1))
    subs.discard("help")
    return subs


def help_default(text: str, flag: str) -> str | None:
    """The [default: X] of one option in clap's long help."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"^\s*(?:-\w,\s+)?{re.escape(flag)}\b", line):
            for follow in lines[i + 1 :]:
                if FLAG_RE.match(follow):
                    break
                m = re.search(r"\[default:\s*([^\]]+)\]", follow)
                if m:
                    return m.group(1).strip()
            return None
    return None


def check_command_line(binary: str, args: list[str], where: str) -> list[str]:
    """Problems with `binary args...` against the binary's --help (empty list: fine)."""
    problems: list[str] = []
    top = help_text(binary)
    sub = None
    subs = help_subcommands(top)
    if subs:
        if not args or args[0].startswith("-"):
            return [f"{where}: `{binary}` needs a subcommand (one of {sorted(subs)}), got {args}"]
        sub = args[0]
        if sub not in subs:
            return [f"{where}: `{binary} {sub}`: no such subcommand (has {sorted(subs)})"]
        rest = args[1:]
        text = help_text(binary, sub)
    else:
        rest = args
        text = top
    flags = help_flags(text)
    for arg in rest:
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            if flag not in flags:
                problems.append(f"{where}: `{binary}{' ' + sub if sub else ''}` has no flag {flag}")
    return problems
