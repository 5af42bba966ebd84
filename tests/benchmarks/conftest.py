"""Make the repository's ``benchmarks`` package importable (``pytest`` does not put the root on sys.path;
``python -m pytest`` does)."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
