"""`make up`: the local twin, kept running on the production schedule.

Started by scripts/up.sh (which builds what it needs first). Runs, until Ctrl-C:

- the **collector** on CLICKSTREAM_LISTEN (default 127.0.0.1:8080), queuing to the spool of
  the state home (CLICKSTREAM_HOME, default .clickstream/ of this checkout);
- the **demo storefront** (storefront-sdk/demo, with the SDK it is built on) on
  CLICKSTREAM_STOREFRONT_LISTEN (127.0.0.1:8060), sending to that collector;
- the **simulator** live beside it at CLICKSTREAM_UP_RATE events/s (default 2; 0 turns it off);
- the **dashboard** on CLICKSTREAM_DASHBOARD_LISTEN (127.0.0.1:8050), which refreshes itself;
- the **hourly flow** every CLICKSTREAM_UP_INTERVAL_SECONDS (default 60): the same four steps,
  with the same windows, as kestra/flows/hourly-batch-load.yml — `clickstream-batcher run`
  (what is queued), `clickstream-batcher compact --closed-before-hours 1`, `clickstream-loader
  load` (every day whose files changed, no window) and `dbt build --selector hourly`; a cycle
  starts only when the one before has finished, as Kestra's flow does not overlap itself;
- the **nightly flow** (kestra/flows/dbt-nightly-rebuild.yml, cron `30 2 * * *` UTC):
  `dbt build --selector nightly` once a day at 02:30 UTC, or at the first cycle of a state home
  whose marts were never built.

Ctrl-C stops the simulator, then the collector (which answers what is in flight and seals its
spool segment), lets a running step finish (a bounded wait), and stops the rest. Everything
the collector accepted is in the spool; `make up` again continues from the same state.
"""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The binaries scripts/up.sh built; the make-up test points this at the debug build.
BIN = Path(os.environ.get("CLICKSTREAM_UP_BIN_DIR") or Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release")
PYTHON = REPO / ".venv" / "bin" / "python"
DBT = REPO / ".venv" / "bin" / "dbt"

HOME = Path(os.environ.get("CLICKSTREAM_HOME") or REPO / ".clickstream").resolve()
LISTEN = os.environ.get("CLICKSTREAM_LISTEN", "127.0.0.1:8080")
DASHBOARD = os.environ.get("CLICKSTREAM_DASHBOARD_LISTEN", "127.0.0.1:8050")
STOREFRONT = os.environ.get("CLICKSTREAM_STOREFRONT_LISTEN", "127.0.0.1:8060")
INTERVAL = float(os.environ.get("CLICKSTREAM_UP_INTERVAL_SECONDS", "60"))
RATE = float(os.environ.get("CLICKSTREAM_UP_RATE", "2"))
NIGHTLY_AT = dt.time(2, 30)  # kestra/flows/dbt-nightly-rebuild.yml: cron "30 2 * * *" (UTC)
STEP_GRACE_SECONDS = 60  # how long Ctrl-C lets a running step finish

stopping = threading.Event()


def log(message: str) -> None:
    print(f"up {dt.datetime.now().strftime('%H:%M:%S')} {message}", flush=True)


LOCKED = b"Could not set lock on file"  # DuckDB: another process (the dashboard reading) holds the file
LOCK_RETRIES = 10


class Step:
    """One command of a flow, its output appended to HOME/logs/<name>.log. A dbt step that
    finds the warehouse file locked by a reader (the dashboard opens it read-only for each
    request) is retried after a short pause, as the loader waits for the lock itself."""

    def __init__(self, name: str, command: list[str], cwd: Path = REPO):
        self.name, self.command, self.cwd = name, command, cwd

    def run(self) -> bool:
        for attempt in range(LOCK_RETRIES):
            code, locked = self.attempt()
            if code == 0 or not locked or stopping.is_set():
                return code == 0
            time.sleep(0.5 + attempt * 0.5)
        return False

    def attempt(self) -> tuple[int, bool]:
        log_path = HOME / "logs" / f"{self.name}.log"
        start_offset = log_path.stat().st_size if log_path.exists() else 0
        started = time.monotonic()
        with open(log_path, "a") as out:
            out.write(f"\n--- {dt.datetime.now().isoformat(timespec='seconds')} {' '.join(self.command)}\n")
            out.flush()
            child = subprocess.Popen(self.command, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT, env=ENV,
                                     start_new_session=True)
            while child.poll() is None:
                if stopping.is_set() and time.monotonic() - stopping_since[0] > STEP_GRACE_SECONDS:
                    child.terminate()
                    child.wait()
                    break
                time.sleep(0.2)
        seconds = time.monotonic() - started
        if child.returncode == 0:
            log(f"  {self.name}: ok in {seconds:.1f} s")
            return 0, False
        with open(log_path, "rb") as written:
            written.seek(start_offset)
            locked = LOCKED in written.read()
        if locked:
            log(f"  {self.name}: the warehouse was locked by a reader; trying again")
        else:
            log(f"  {self.name}: exit {child.returncode} after {seconds:.1f} s (see {log_path})")
        return child.returncode, locked


ENV = dict(os.environ, CLICKSTREAM_DUCKDB_PATH=str(HOME / "warehouse.duckdb"), CLICKSTREAM_HOME=str(HOME))
stopping_since = [0.0]

HOURLY = [
    Step("batcher", [str(BIN / "clickstream-batcher"), "run", "--spool-dir", str(HOME / "spool"),
                     "--lake", str(HOME / "lake")]),
    Step("compact", [str(BIN / "clickstream-batcher"), "compact", "--lake", str(HOME / "lake"),
                     "--closed-before-hours", "1"]),
    Step("loader", [str(BIN / "clickstream-loader"), "load", "--lake", str(HOME / "lake"),
                    "--duckdb-path", str(HOME / "warehouse.duckdb"), "--duckdb-python", str(PYTHON)]),
    Step("dbt-hourly", [str(DBT), "build", "--profiles-dir", ".", "--target", "duckdb", "--selector", "hourly"],
         cwd=REPO / "dbt"),
]
NIGHTLY = Step("dbt-nightly", [str(DBT), "build", "--profiles-dir", ".", "--target", "duckdb", "--selector", "nightly"],
               cwd=REPO / "dbt")


def marts_built() -> bool:
    """True once a nightly build has made the all-time marts the dashboard reads."""
    flag = HOME / "nightly-built-at"
    return flag.exists()


def run_cycle(nightly: bool) -> None:
    """The hourly flow; when the nightly one is due, its dbt build (selector nightly: every model,
    the hourly ones included) takes the place of the hourly dbt step. A state home whose marts
    were never built starts that way, as a deployment starts with a full build: the hourly
    selector leaves out the identity map and the all-time marts."""
    steps = HOURLY[:-1] + [NIGHTLY] if nightly else HOURLY
    log("hourly flow: batch → compact → load → dbt " + ("(selector nightly: the nightly flow is due)" if nightly else "(selector hourly)"))
    for step in steps:
        if stopping.is_set() or not step.run():
            return  # as in Kestra: a failed task ends the execution; the next one redoes the work
    if nightly:
        (HOME / "nightly-built-at").write_text(dt.datetime.now(dt.timezone.utc).isoformat())


def next_nightly(after: dt.datetime) -> dt.datetime:
    at = dt.datetime.combine(after.date(), NIGHTLY_AT, tzinfo=dt.timezone.utc)
    return at if at > after else at + dt.timedelta(days=1)


class Storefront(http.server.SimpleHTTPRequestHandler):
    """storefront-sdk/ as a site: /demo/ the shop, /dist/ the built SDK."""

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):  # noqa: N802
        if self.path in ("/", "/index.html"):
            self.send_response(302)
            self.send_header("Location", f"/demo/?endpoint=http://{LISTEN}&flush=2000")
            self.end_headers()
            return
        super().do_GET()


def serve_storefront() -> http.server.ThreadingHTTPServer:
    host, port = STOREFRONT.rsplit(":", 1)
    handler = functools.partial(Storefront, directory=str(REPO / "storefront-sdk"))
    server = http.server.ThreadingHTTPServer((host, int(port)), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def wait_ready(url: str, process: subprocess.Popen, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"up: the {what} exited (code {process.returncode}); see {HOME / 'logs'}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"up: the {what} did not become ready at {url} within {seconds:.0f} s")


def start(name: str, command: list[str]) -> subprocess.Popen:
    out = open(HOME / "logs" / f"{name}.log", "a")
    return subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=ENV, start_new_session=True)


def stop(process: subprocess.Popen | None, name: str, seconds: float = 30) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        log(f"{name} did not stop within {seconds:.0f} s; killing it")
        process.kill()
        process.wait()


def main() -> int:
    (HOME / "logs").mkdir(parents=True, exist_ok=True)

    def on_signal(signum, frame):
        if not stopping.is_set():
            stopping_since[0] = time.monotonic()
            stopping.set()
            log("stopping (a running step may take up to a minute to finish)")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    collector = start("collector", [str(BIN / "clickstream-collector"), "--listen", LISTEN,
                                    "--spool-dir", str(HOME / "spool"), "--cors-origin", "*"])
    wait_ready(f"http://{LISTEN}/readyz", collector, "collector")
    dashboard = start("dashboard", [str(PYTHON), str(REPO / "dashboard" / "server.py"),
                                    "--duckdb", str(HOME / "warehouse.duckdb"), "--listen", DASHBOARD])
    storefront = serve_storefront()
    simulator = None
    if RATE > 0:
        simulator = start("simulator", [str(BIN / "clickstream-simulator"), "--live", "--rate", str(RATE),
                                        "--collector", f"http://{LISTEN}", "--seed", str(int(time.time()))])
    log(f"collector  http://{LISTEN}  (spool {HOME / 'spool'})")
    log(f"storefront http://{STOREFRONT}/  (the demo shop: your clicks go to the collector)")
    log(f"dashboard  http://{DASHBOARD}/  (refreshes itself)")
    log(f"simulator  {'live at ' + str(RATE) + ' events/s' if simulator else 'off (CLICKSTREAM_UP_RATE=0)'}")
    log(f"schedule   hourly flow every {INTERVAL:g} s, nightly flow at {NIGHTLY_AT:%H:%M} UTC; logs in {HOME / 'logs'}")
    log("Ctrl-C stops everything; `make up` again continues from the same state")

    nightly_due = next_nightly(dt.datetime.now(dt.timezone.utc))
    while not stopping.is_set():
        began = time.monotonic()
        now = dt.datetime.now(dt.timezone.utc)
        nightly = not marts_built() or now >= nightly_due
        if nightly and now >= nightly_due:
            nightly_due = next_nightly(now)
        run_cycle(nightly)
        stopping.wait(max(0.0, INTERVAL - (time.monotonic() - began)))

    stop(simulator, "simulator")
    stop(collector, "collector")
    storefront.shutdown()
    stop(dashboard, "dashboard")
    log(f"stopped; the state is kept in {HOME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
