"""Start the bqemulator BigQuery emulator offline, for the dbt BigQuery tests.

Run as a script (`python bq_emulator.py REST_PORT GRPC_PORT`) it starts the
emulator in the foreground. The spatial extension is not loaded: DuckDB would
try to download it, and the machines running these tests are offline.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

PROJECT = "test-project"


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    """The emulator as a child process in its own process group, with its own HOME."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.rest_port = free_port()
        self.grpc_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.rest_port}"
        self.log_path = workdir / "bqemulator.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> None:
        home = self.workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, HOME=str(home))
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(self.rest_port), str(self.grpc_port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        url = f"{self.endpoint}/bigquery/v2/projects/{PROJECT}/datasets"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bqemulator exited early:\n{self.log_path.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"bqemulator did not answer within {timeout}s:\n{self.log_path.read_text()[-4000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # own session: the group id is the child's pid
        try:
            os.killpg(pgid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def client(self):
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.endpoint),
        )


def _serve(rest_port: str, grpc_port: str) -> None:
    import bqemulator.cli
    import bqemulator.storage.engine

    bqemulator.storage.engine.DuckDBEngine._load_spatial = lambda self: None
    sys.argv = ["bqemulator", "start", "--rest-port", rest_port, "--grpc-port", grpc_port, "--project", PROJECT]
    bqemulator.cli.main()


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2])
