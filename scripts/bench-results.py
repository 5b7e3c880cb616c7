"""Replaces one section of bench/RESULTS.md (between <!-- BEGIN name --> and <!-- END name -->),
or appends it: each benchmark script owns its section.

Usage: python3 scripts/bench-results.py RESULTS_FILE NAME SECTION_TEXT
"""
import pathlib
import re
import sys

path, name, section = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
text = path.read_text() if path.exists() else "# Benchmark results\n\nWritten by `make bench`; each section by its own script.\n"
pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
path.write_text(text)
