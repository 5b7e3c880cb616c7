"""The soak run of scripts/soak.sh (which builds the binaries and sets the environment read here).

The collector runs on a spool in SOAK_WORK; an open-loop generator sends SOAK_RATE events/s in
requests of SOAK_BATCH events over SOAK_WORKERS keep-alive connections; the batcher drains the
spool into a local lake every SOAK_BATCHER_EVERY seconds. At the end the collector is stopped
(it seals the spool), the batcher runs once more, and the lake's Parquet rows are counted.
"""

import datetime
import http.client
import json
import math
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid

import duckdb

SECONDS = int(os.environ["SOAK_SECONDS"])
RATE = float(os.environ["SOAK_RATE"])
BATCH = int(os.environ["SOAK_BATCH"])
BATCHER_EVERY = float(os.environ["SOAK_BATCHER_EVERY"])
SAMPLE_EVERY = float(os.environ["SOAK_SAMPLE_SECONDS"])
WORKERS = int(os.environ["SOAK_WORKERS"])
COLLECTOR = os.environ["SOAK_COLLECTOR"]
BATCHER = os.environ["SOAK_BATCHER"]
WORK = pathlib.Path(os.environ["SOAK_WORK"])
REPORT = pathlib.Path("bench/SOAK.md")
WRITE_KEY = "soak-key"
# RSS and fd flatness are judged on the last FLAT_WINDOW seconds (the last half of shorter runs).
FLAT_WINDOW = min(600.0, SECONDS / 2)


def log(message):
    print(f"soak: {message}", flush=True)


def proc_status(pid):
    """(VmRSS, VmHWM) in bytes and the open fd count of a running process, or None once it exited."""
    try:
        fields = {}
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return fields["VmRSS"], fields["VmHWM"], fds
    except (FileNotFoundError, ProcessLookupError, KeyError):
        return None


def start_collector():
    spool = WORK / "spool"
    log_file = open(WORK / "collector.log", "w")
    child = subprocess.Popen(
        [COLLECTOR, "--listen", "127.0.0.1:0", "--log-format", "json", "--spool-dir", str(spool),
         "--write-key", f"{WRITE_KEY}=soak", "--rate-limit-per-second", "0"],
        stdout=subprocess.DEVNULL, stderr=log_file, env={**os.environ, "RUST_LOG": "info"},
    )
    # The collector picks its own ephemeral port and logs it; wait at most 30 s for that line.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if child.poll() is not None:
            sys.exit(f"soak: the collector exited at start; see {WORK}/collector.log")
        for line in (WORK / "collector.log").read_text().splitlines():
            if '"address":"' in line:
                address = line.split('"address":"', 1)[1].split('"', 1)[0]
                host, port = address.rsplit(":", 1)
                return child, host, int(port)
        time.sleep(0.1)
    child.kill()
    sys.exit("soak: the collector did not log its address within 30 s")


def event(now):
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "product_view",
        "event_time": now,
        "anonymous_id": f"anon-{uuid.uuid4().hex[:8]}",
        "session_id": f"s-{uuid.uuid4().hex[:8]}",
        "page": {"url": "https://shop.example/p/42?utm_source=newsletter", "title": "Acme Phone 12",
                 "referrer": "https://www.google.com/"},
        "product": {"product_id": "1000042", "category_code": "electronics.smartphone", "brand": "acme",
                    "price": 489.07, "currency": "EUR"},
        "context": {"platform": "web", "locale": "en-GB", "screen": {"width": 1440, "height": 900},
                    "library": {"name": "clickstream-js", "version": "0.1.0"}},
    }


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = []  # seconds from the scheduled send time to the answer, per request
        self.service = []  # seconds from the actual send to the answer, per request
        self.accepted = 0
        self.sent = 0
        self.statuses = {}
        self.errors = 0


def worker(index, host, port, started, stop_at, results):
    interval = BATCH / RATE
    connection = http.client.HTTPConnection(host, port, timeout=30)
    n = index
    while True:
        scheduled = started + n * interval
        if scheduled >= stop_at:
            break
        delay = scheduled - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = json.dumps({"sent_at": now, "events": [event(now) for _ in range(BATCH)]})
        sent = time.monotonic()
        try:
            connection.request("POST", "/v1/events", body=body,
                               headers={"Content-Type": "application/json", "X-Write-Key": WRITE_KEY})
            response = connection.getresponse()
            answer = response.read()
            done = time.monotonic()
            accepted = json.loads(answer).get("accepted", 0) if response.status == 200 else 0
            with results.lock:
                results.latency.append(done - scheduled)
                results.service.append(done - sent)
                results.statuses[response.status] = results.statuses.get(response.status, 0) + 1
                results.accepted += accepted
                results.sent += BATCH
        except (OSError, http.client.HTTPException, ValueError):
            with results.lock:
                results.errors += 1
                results.sent += BATCH
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=30)
        n += WORKERS
    connection.close()


def sampler(pid, started, stop, samples):
    while not stop.wait(SAMPLE_EVERY):
        status = proc_status(pid)
        if status is None:
            return
        samples.append((time.monotonic() - started, *status))


def run_batcher(lake, spool):
    """One batcher run; (seconds, exit code, peak RSS bytes, most open fds)."""
    t0 = time.monotonic()
    child = subprocess.Popen([BATCHER, "run", "--spool-dir", str(spool), "--lake", str(lake)],
                             stdout=subprocess.DEVNULL, stderr=open(WORK / "batcher.log", "a"))
    peak, fds = 0, 0
    while child.poll() is None:
        status = proc_status(child.pid)
        if status is not None:
            peak, fds = max(peak, status[1]), max(fds, status[2])
        time.sleep(0.1)
    return time.monotonic() - t0, child.returncode, peak, fds


def batcher_schedule(lake, spool, stop, runs):
    while not stop.wait(BATCHER_EVERY):
        runs.append(run_batcher(lake, spool))
        seconds, code, peak, fds = runs[-1]
        log(f"batcher run {len(runs)}: exit {code}, {seconds:.1f} s, peak RSS {peak / 2**20:.1f} MiB, {fds} fds")


def slope(points):
    """Least-squares slope of (x, y) points."""
    if len(points) < 2:
        return 0.0
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else float("nan")


def main():
    lake, spool = WORK / "lake", WORK / "spool"
    collector, host, port = start_collector()
    log(f"collector pid {collector.pid} on {host}:{port}; {RATE:g} events/s in requests of {BATCH}, "
        f"{SECONDS} s, batcher every {BATCHER_EVERY:g} s")
    results, samples, runs = Results(), [], []
    stop = threading.Event()
    started = time.monotonic()
    stop_at = started + SECONDS
    samples.append((0.0, *proc_status(collector.pid)))
    threads = [threading.Thread(target=worker, args=(i, host, port, started, stop_at, results)) for i in range(WORKERS)]
    threads.append(threading.Thread(target=sampler, args=(collector.pid, started, stop, samples), daemon=True))
    threads.append(threading.Thread(target=batcher_schedule, args=(lake, spool, stop, runs), daemon=True))
    for t in threads:
        t.start()
    next_progress = started + 60
    while any(t.is_alive() for t in threads[:WORKERS]):
        threads[0].join(timeout=1)
        if time.monotonic() >= next_progress and samples:
            next_progress += 60
            _, rss, _, fds = samples[-1]
            with results.lock:
                done, accepted, errors = len(results.service), results.accepted, results.errors
            log(f"{time.monotonic() - started:5.0f} s: {done} requests, {accepted} events accepted, "
                f"{errors} errors; collector RSS {rss / 2**20:.1f} MiB, {fds} fds")
    for t in threads[:WORKERS]:
        t.join(timeout=60)
    stop.set()
    threads[-1].join(timeout=600)  # a batcher run in progress finishes
    collector.send_signal(signal.SIGTERM)
    try:
        collector.wait(timeout=60)
    except subprocess.TimeoutExpired:
        collector.kill()
        sys.exit("soak: the collector did not stop within 60 s of SIGTERM")
    final = run_batcher(lake, spool)
    runs.append(final)
    log(f"final batcher run: exit {final[1]}, {final[0]:.1f} s")

    con = duckdb.connect()
    files = list(lake.glob("events/*/*/*.parquet"))
    landed, distinct = con.execute(
        "select count(*), count(distinct event_id) from read_parquet(?)", [[str(f) for f in files]]
    ).fetchone() if files else (0, 0)

    mib = lambda b: b / 2**20
    rss = [(t, r) for t, r, _, _ in samples]
    fds = [(t, f) for t, _, _, f in samples]
    window_from = samples[-1][0] - FLAT_WINDOW
    rss_slope = slope([(t, r) for t, r in rss if t >= window_from]) * 60  # bytes per minute
    fd_slope = slope([(t, f) for t, f in fds if t >= window_from]) * 60
    mean_rss = statistics.fmean(r for _, r in rss)
    # Flat: the slope would add less than max(2 MiB, 2 % of the mean RSS) over 10 minutes, and
    # less than one open file.
    rss_flat = abs(rss_slope) * 10 <= max(2 * 2**20, 0.02 * mean_rss)
    fd_flat = abs(fd_slope) * 10 < 1
    verdict = "flat" if rss_flat and fd_flat else "NOT flat"
    batcher_ok = all(code == 0 for _, code, _, _ in runs)
    loss = results.accepted - landed
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(results.statuses.items())) or "none"
    window = f"{FLAT_WINDOW / 60:.1f} min"

    table = f"""| measure | value |
|---|---:|
| duration, rate | {SECONDS} s at {RATE:g} events/s, {BATCH} events per request, {WORKERS} connections |
| requests answered (status: count) | {statuses}; {results.errors} connection errors |
| events sent / accepted / landed in the lake (Parquet rows) / distinct event ids | {results.sent} / {results.accepted} / {landed} / {distinct} |
| accepted but not landed | {loss} |
| latency p50 / p99 / max (send → answer) | {percentile(results.service, 0.5) * 1e3:.1f} / {percentile(results.service, 0.99) * 1e3:.1f} / {max(results.service, default=float('nan')) * 1e3:.1f} ms |
| latency p99 from the scheduled send time (includes client queueing) | {percentile(results.latency, 0.99) * 1e3:.1f} ms |
| collector RSS first / last / max (peak VmHWM) | {mib(rss[0][1]):.1f} / {mib(rss[-1][1]):.1f} / {mib(max(r for _, r in rss)):.1f} MiB ({mib(samples[-1][2]):.1f} MiB) |
| collector open fds first / last / max | {fds[0][1]} / {fds[-1][1]} / {max(f for _, f in fds)} |
| collector RSS slope, last {window} | {rss_slope / 1024:+.1f} KiB/min |
| collector fd slope, last {window} | {fd_slope:+.3f} fds/min |
| batcher runs (every {BATCHER_EVERY:g} s, plus a final one) | {len(runs)}, {'all exit 0' if batcher_ok else 'SOME FAILED'} |
| batcher run seconds median / max | {statistics.median(r[0] for r in runs):.1f} / {max(r[0] for r in runs):.1f} |
| batcher peak RSS first / last / max | {mib(runs[0][2]):.1f} / {mib(runs[-1][2]):.1f} / {mib(max(r[2] for r in runs)):.1f} MiB |
| batcher open fds first / last / max | {runs[0][3]} / {runs[-1][3]} / {max(r[3] for r in runs)} |
| verdict | **{verdict}** (RSS {'flat' if rss_flat else 'growing'}, fds {'flat' if fd_flat else 'growing'}) |"""
    print()
    print(table)
    samples_text = "\n".join(f"| {t:.0f} | {mib(r):.1f} | {f} |" for t, r, _, f in samples)
    REPORT.write_text(f"""# Soak: collector → spool → batcher (`make soak` → scripts/soak.sh)

Measured {datetime.date.today().isoformat()} on {os.cpu_count()} cores, shared with other work;
release binaries, collector on the local spool (every 2xx fsync'd), load generator on the same
machine. The batcher ran every {BATCHER_EVERY:g} s beside the live collector, and once more
after the collector stopped. Collector sampled every {SAMPLE_EVERY:g} s; the flatness verdict is
from least-squares slopes over the last {window}: flat when the RSS slope adds less
than max(2 MiB, 2 % of the mean RSS) per 10 min and the fd slope less than one fd per 10 min.

{table}

Collector samples:

| seconds | RSS MiB | open fds |
|---:|---:|---:|
{samples_text}
""")
    log(f"wrote {REPORT}")
    failed = loss != 0 or not batcher_ok or results.errors or set(results.statuses) - {200}
    if failed:
        sys.exit("soak: FAILED (errors, non-200 answers, failed batcher runs or accepted events missing from the lake)")


if __name__ == "__main__":
    main()
