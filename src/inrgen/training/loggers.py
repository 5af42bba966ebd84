"""`CSVMetrics`: a Lightning logger writing one CSV row per logged step, as it is logged, that a
resumed run continues.

Every row is appended to ``metrics.csv`` and flushed when it is logged, so a run killed at any moment
keeps its history up to the last row (``sync`` also fsyncs it; the checkpoint callback calls it at every
checkpoint). A new column (held-out metrics appear at the first evaluation) rewrites the file once with
the wider header, atomically. Lightning's own CSV logger deletes an existing ``metrics.csv`` when it
starts; a resumed inrgen run keeps the rows with ``step <= resume_step`` instead (rows a run logged
after its last checkpoint are dropped, since the resumed run logs those steps again), over any number
of kills and resumes.

Example:
    >>> lg = CSVMetrics("runs/a/logs/metrics.csv")  # doctest: +SKIP
    >>> lg.log_metrics({"train/loss": 0.5}, step=10)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import IO, Any

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
        self.keys: list[str] = []
        self._file: IO[str] | None = None
        if resume_step is not None and self.path.is_file():
            with open(self.path, newline="") as f:
                old = list(csv.DictReader(f))
            self.rows = [r for r in old if _step(r) <= resume_step]
            self.keys = sorted({k for r in self.rows for k, v in r.items() if k != "step" and v})
        self._started = False

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

    def _rewrite(self) -> None:
        """The whole file (header and every row so far), atomically; later rows are appended to it."""
        self.close()
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["step", *self.keys], extrasaction="ignore")
        w.writeheader()
        w.writerows(self.rows)
        write_bytes(self.path, buf.getvalue().encode())
        self._started = True

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        row: dict[str, Any] = {"step": step if step is not None else len(self.rows)}
        row.update({k: float(v) for k, v in metrics.items()})
        self.rows.append(row)
        new = sorted(set(row) - {"step"} - set(self.keys))
        if new or not self._started:
            self.keys = sorted(set(self.keys) | set(new))
            self._rewrite()
            return
        if self._file is None:
            self._file = open(self.path, "a", newline="")  # noqa: SIM115 - kept open while the run logs
        csv.DictWriter(self._file, fieldnames=["step", *self.keys], extrasaction="ignore").writerow(row)
        self._file.flush()

    @rank_zero_only
    def save(self) -> None:
        if not self._started:
            self._rewrite()  # a resumed run's kept rows, before it logs anything
        if self._file is not None:
            self._file.flush()

    @rank_zero_only
    def sync(self) -> None:
        """Flush and fsync the file (at checkpoints: its rows then survive a crash of the machine)."""
        self.save()
        if self._file is not None:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.sync()
        self.close()


def _step(row: dict[str, Any]) -> float:
    """The row's step (infinite when missing or unreadable, so such rows are dropped on resume)."""
    try:
        return float(row.get("step") or "inf")
    except ValueError:
        return float("inf")
