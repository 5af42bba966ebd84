"""`CSVMetrics`: a Lightning logger writing one CSV row per logged step, that a resumed run continues.

Lightning's own CSV logger deletes an existing ``metrics.csv`` when it starts; a resumed inrgen run
must keep the rows up to its checkpoint instead. This logger keeps the rows with ``step <= resume_step``
(rows a run logged after its last checkpoint are dropped, since the resumed run logs those steps again),
appends new rows, and rewrites the file with a wider header when new columns appear. Every write goes
through a temporary file and ``os.replace``.

Example:
    >>> lg = CSVMetrics("runs/a/logs/metrics.csv")  # doctest: +SKIP
    >>> lg.log_metrics({"train/loss": 0.5}, step=10); lg.save()  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from inrgen.training.outputs import write_bytes

__all__ = ["CSVMetrics"]


class CSVMetrics(Logger):
    """Metrics as CSV at ``path`` (columns: ``step`` then the metric names, sorted)."""

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        if resume_step is not None and self.path.is_file():
            with open(self.path, newline="") as f:
                old = list(csv.DictReader(f))
            self.rows = [r for r in old if r.get("step") and float(r["step"]) <= resume_step]
        self._dirty = False

    @property
    def name(self) -> str:
        return "csv"

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self.path.parent)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        row: dict[str, Any] = {"step": step if step is not None else len(self.rows)}
        row.update({k: float(v) for k, v in metrics.items()})
        self.rows.append(row)
        self._dirty = True

    @rank_zero_only
    def save(self) -> None:
        if not self._dirty:
            return
        keys = sorted({k for r in self.rows for k in r} - {"step"})
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["step", *keys])
        w.writeheader()
        w.writerows(self.rows)
        write_bytes(self.path, buf.getvalue().encode())
        self._dirty = False

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()
