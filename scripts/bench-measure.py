"""Runs one benchmark stage and measures it: wall seconds and peak RSS of its whole process tree.

The peak is the largest sum of the resident set sizes of the command and all its descendants
(the loader's DuckDB worker, dbt's threads live in one process) seen by sampling every 50 ms
with psutil; GNU time's %M would give only the largest single process. The samples miss a
peak shorter than that interval.

Usage: python scripts/bench-measure.py OUTPUT_FILE -- COMMAND [ARGS...]
Writes "seconds peak_rss_bytes" to OUTPUT_FILE; the command's exit code is this script's.
"""
import subprocess
import sys
import time

import psutil

out, command = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
started = time.perf_counter()
child = subprocess.Popen(command)
root = psutil.Process(child.pid)
peak = 0
while child.poll() is None:
    try:
        tree = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        break
    total = 0
    for process in tree:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    peak = max(peak, total)
    time.sleep(0.05)
code = child.wait()
seconds = time.perf_counter() - started
with open(out, "w") as f:
    f.write(f"{seconds:.2f} {peak}\n")
sys.exit(code)
