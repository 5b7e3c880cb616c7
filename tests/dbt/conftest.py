import sys
from pathlib import Path

# The helpers and the fixture live beside the tests (no package).
sys.path.insert(0, str(Path(__file__).resolve().parent))
