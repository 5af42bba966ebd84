"""The README's "Using it" Python block runs as written, in a fresh interpreter (issue 12, item 2)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

README = Path(__file__).resolve().parents[2] / "README.md"


def using_it_block() -> str:
    """The first ```python block of the README's "## Using it" section, verbatim."""
    text = README.read_text()
    section = text[text.index("## Using it\n") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "README.md's 'Using it' section has no ```python block"
    return blocks[0]


def test_readme_using_it_block_runs_verbatim(tmp_path):
    code = using_it_block()
    env = dict(os.environ, TMPDIR=str(tmp_path), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # it did what it says: a 4 x 112 x 112 super-resolved grid written under the temporary folder
    m = re.search(r"wrote (\S+superres\.png): \(4, 1, 112, 112\)", proc.stdout)
    assert m, proc.stdout
    png = Path(m.group(1))
    assert png.is_file() and png.resolve().is_relative_to(tmp_path.resolve())
    arr = np.asarray(Image.open(png))
    assert arr.shape[:2] == (112, 4 * 112)  # the 4 images in one row, no padding
