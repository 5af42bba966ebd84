"""Output folders and files that never clobber a user's work, atomic writes, and images for display.

Every folder inrgen writes carries a marker file, ``.inrgen.json`` (which command made it and when).

- An existing, non-empty output folder is only replaced with ``overwrite=True``, only if its marker
  says the same command wrote it, and never when it holds something the command reads (``protect``:
  the input checkpoint, input files). inrgen never deletes a folder it did not write, and never
  replaces anything that is not a regular file or folder (devices, links, FIFOs).
- Task outputs are written into a temporary sibling folder and renamed into place when complete
  (:func:`atomic_output`), so a crash leaves either the old folder or the new one, never a mix; the same
  holds for a training run started with ``--overwrite`` (:class:`RunFolder`).
- Single files (PNG, .npy, JSON) are written to a temporary name in their folder and ``os.replace``-d.
- Temporary names carry the writer's process id (``.NAME.tmp-<pid>-*``, ``.NAME.old-<pid>``): the next
  write of ``NAME`` removes the leftovers of dead processes (:func:`remove_stale`), never a live one's.
- Files and folders get the permissions of the user's umask (``0666`` / ``0777`` masked), as files
  made with ``open`` do (temporary-file helpers alone would leave them private).

Images for display: :func:`display_images` turns values on any grid into ``(B, C, H, W)`` images in
[0, 1] (images as they are; lat/lon maps as images; volumes as a voxel render or a maximum projection;
multi-view sets as their views side by side).

Example:
    >>> with atomic_output("outputs/recon", overwrite=False, command="reconstruct") as tmp:  # doctest: +SKIP
    ...     write_png(tmp / "a.png", image)
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "MARKER",
    "OutputError",
    "check_output_dir",
    "check_output_file",
    "prepare_run_dir",
    "check_run_dir",
    "RunFolder",
    "read_marker",
    "atomic_output",
    "remove_stale",
    "fix_modes",
    "write_bytes",
    "write_json",
    "write_npy",
    "save_grid",
    "display_images",
]

MARKER = ".inrgen.json"
LOCK = ".inrgen.lock"


class OutputError(ValueError):
    """An output folder that cannot be written or would overwrite a user's earlier output."""


# ------------------------------------------------------------------------------ permissions


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fix_modes(path: str | os.PathLike) -> None:
    """Give ``path`` (and, for a folder, everything below it) the permissions of the user's umask:
    ``0o666 & ~umask`` for files, ``0o777 & ~umask`` for folders. Links are left alone."""
    mask = _umask()
    root = Path(path)
    todo = [root]
    while todo:
        p = todo.pop()
        try:
            st = p.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            os.chmod(p, 0o777 & ~mask)
            todo.extend(p.iterdir())
        elif stat.S_ISREG(st.st_mode):
            os.chmod(p, 0o666 & ~mask)


# -------------------------------------------------------------------------------- leftovers


def _temp_prefix(name: str, kind: str) -> str:
    """``.NAME.tmp-<pid>-`` (a temporary write) or ``.NAME.old-<pid>`` (an earlier version set aside)."""
    return f".{name}.{kind}-{os.getpid()}" + ("-" if kind == "tmp" else "")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user
        return True
    except OSError:
        return False
    return True


def _leftover_pid(entry: str, name: str) -> tuple[str, int | None] | None:
    """``(kind, pid)`` when ``entry`` is a temporary name of ``name`` (pid None: an old-style name)."""
    m = re.fullmatch(rf"\.{re.escape(name)}\.(tmp|old)-(.*)", entry)
    if m is None:
        return None
    pid = re.match(r"(\d+)(?:-|$)", m.group(2))
    return m.group(1), (int(pid.group(1)) if pid else None)


def remove_stale(parent: str | os.PathLike, name: str, current: bool = False) -> None:
    """Remove the leftovers of killed writes of ``parent/name``: ``.NAME.tmp-<pid>-*`` and
    ``.NAME.old-<pid>`` of processes that no longer run (``current=True``: this process's too, when the
    caller is not writing ``name`` at the moment). If ``name`` itself is missing because a process was
    killed between setting the old version aside and moving the new one in, the old one is moved back
    first."""
    parent = Path(parent)
    if not parent.is_dir():
        return
    stale: list[tuple[str, Path]] = []
    for entry in parent.iterdir():
        hit = _leftover_pid(entry.name, name)
        if hit is None:
            continue
        kind, pid = hit
        if pid is None or not _alive(pid) or (current and pid == os.getpid()):
            stale.append((kind, entry))
    target = parent / name
    olds = sorted((p for k, p in stale if k == "old" and p.is_dir()), key=lambda p: p.stat().st_mtime)
    whole = olds and ((olds[-1] / MARKER).is_file() or (olds[-1] / "config.json").is_file())
    if whole and not os.path.lexists(target):
        os.replace(olds[-1], target)
        stale = [(k, p) for k, p in stale if p != olds[-1]]
    for _, p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()


# ----------------------------------------------------------------------------------- checks


def _nonempty(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def _kind(path: Path) -> str:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _writable_parent(path: Path) -> Path:
    """The nearest existing ancestor of ``path``; raises if it is not a writable folder."""
    p = path.absolute()
    while not os.path.lexists(p):
        p = p.parent
    if not p.is_dir():
        raise OutputError(f"cannot write to {path}: {p} is {_kind(p)}, not a folder")
    try:  # really try: permission bits say nothing for root, read-only mounts or /proc
        probe = tempfile.mkdtemp(prefix=".inrgen-probe-", dir=p)
        os.rmdir(probe)
    except OSError as err:
        raise OutputError(
            f"cannot write to {path}: {p} is not writable ({err.strerror}); choose another --out"
        ) from None
    return p


def _inside(child: str | os.PathLike, parent: Path) -> bool:
    try:
        c, p = Path(child).expanduser().resolve(), parent.resolve()
    except (OSError, RuntimeError):
        return False
    return c == p or p in c.parents


def read_marker(path: str | os.PathLike) -> dict[str, Any] | None:
    """The contents of ``path/.inrgen.json`` (``{}`` when unreadable), or None without a marker."""
    m = Path(path) / MARKER
    if not m.is_file():
        return None
    try:
        info = json.loads(m.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return info if isinstance(info, dict) else {}


def _refuse_links(path: Path, what: str = "--out") -> None:
    if path.is_symlink():
        raise OutputError(
            f"{what} {path} is a symbolic link; inrgen does not replace links: pass the folder or file it "
            "points to, or another path"
        )


def check_output_dir(
    path: str | os.PathLike,
    overwrite: bool,
    command: str | None = None,
    protect: Iterable[str | os.PathLike | None] = (),
) -> Path:
    """Check that ``path`` may be written (before any work): a writable location, and either absent,
    empty, or (with ``overwrite``) an earlier output of ``command`` (any inrgen output when None)
    that holds none of the ``protect`` paths (what the command reads)."""
    path = Path(path)
    _refuse_links(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path} exists and is {_kind(path)}; --out must name a folder")
    _writable_parent(path if not path.exists() else path / "x")
    for p in protect:
        if p is not None and path.exists() and _inside(p, path):
            raise OutputError(
                f"--out {path} holds {p}, which this command reads: replacing the folder would delete its "
                "own input; choose an --out outside it"
            )
    if _nonempty(path):
        if not overwrite:
            raise OutputError(
                f"{path} already exists and is not empty; pass --overwrite to replace it, "
                "or choose another --out"
            )
        info = read_marker(path)
        if info is None:
            raise OutputError(
                f"{path} was not written by inrgen (no {MARKER}); refusing to delete it even with "
                "--overwrite: choose another --out"
            )
        if command is not None and info.get("command") != command:
            by = f"`inrgen {info['command']}`" if info.get("command") else "another inrgen command"
            raise OutputError(
                f"{path} was written by {by}, not by `inrgen {command}`: refusing to replace it even with "
                "--overwrite; choose another --out"
            )
    return path


def check_output_file(path: str | os.PathLike, overwrite: bool) -> Path:
    """Check (before any work) that the single file ``path`` may be written: its folder is writable, and
    it is absent or (with ``overwrite``) a regular file. Devices, FIFOs, folders and links are never
    replaced."""
    path = Path(path)
    _refuse_links(path)
    if os.path.lexists(path):
        if not path.is_file():
            raise OutputError(
                f"{path} exists and is {_kind(path)}, not a regular file: inrgen never replaces it; "
                "choose another --out"
            )
        if not overwrite:
            raise OutputError(
                f"{path} already exists; pass --overwrite to replace it, or choose another --out"
            )
    _writable_parent(path.parent / ".inrgen-new")
    return path


def _marker(command: str, **info: Any) -> str:
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return json.dumps({"command": command, "created": now, **info}, indent=2, sort_keys=True)


def _replace_dir(tmp: Path, path: Path) -> None:
    """Move the finished folder ``tmp`` to ``path`` (an earlier folder there is removed afterwards)."""
    old = None
    if os.path.lexists(path):
        old = path.with_name(_temp_prefix(path.name, "old"))
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike,
    overwrite: bool,
    command: str,
    protect: Iterable[str | os.PathLike | None] = (),
    **info: Any,
) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``path`` (see the module docstring)."""
    protect = list(protect)
    path = check_output_dir(path, overwrite, command, protect)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, path.name)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path.name, "tmp"), dir=path.parent))
    try:
        (tmp / MARKER).write_text(_marker(command, **info))
        yield tmp
        fix_modes(tmp)
        check_output_dir(path, overwrite, command, protect)  # nothing appeared there meanwhile
        _replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------------------------- runs


def _lock_holder(path: Path) -> int | None:
    """The live process (not this one) that holds ``path``'s run lock, if any."""
    try:
        pid = int((path / LOCK).read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and pid != os.getpid() and _alive(pid) else None


def _has_checkpoint(path: Path) -> bool:
    from inrgen.checkpoint import recover_checkpoint

    recover_checkpoint(path / "checkpoint")
    return (path / "checkpoint" / "config.json").is_file()


def _disposable(path: Path) -> bool:
    """A run folder of ``inrgen train`` that stopped before its first checkpoint: nothing to resume."""
    info = read_marker(path)
    return info is not None and info.get("command") == "train" and not _has_checkpoint(path)


def check_run_dir(
    path: str | os.PathLike,
    overwrite: bool,
    resume: bool,
    protect: Iterable[str | os.PathLike | None] = (),
) -> Path:
    """Check (before any work) that a training run may use ``path``: resuming needs an inrgen run
    folder with a checkpoint; a new run needs an absent or empty folder, a run folder that stopped before
    its first checkpoint, or ``overwrite`` and an earlier training run (replaced only once the new run
    completes)."""
    path = Path(path)
    if resume and overwrite:
        raise OutputError("--resume continues the run in --out and --overwrite replaces it: pass one of them")
    _refuse_links(path)
    if path.is_dir() and (pid := _lock_holder(path)) is not None:
        raise OutputError(f"{path} is in use by a training run (process {pid}); wait for it or stop it first")
    if resume:
        if read_marker(path) is None:
            raise OutputError(
                f"cannot resume: {path} is not an inrgen run folder (no {MARKER}); "
                "train without --resume first"
            )
        if not _has_checkpoint(path):
            raise OutputError(
                f"cannot resume: {path} holds no checkpoint (the run stopped before its first one); "
                "start it again without --resume"
            )
        _writable_parent(path / "x")
        return path
    if _nonempty(path) and _disposable(path):
        return path
    return check_output_dir(path, overwrite, "train", protect)


class RunFolder:
    """Where a training run writes: the run folder itself, or (replacing an earlier run with
    ``overwrite``) a temporary sibling that replaces it only when the run completes.

    ``begin`` creates it (with the marker and a lock naming this process); ``finish`` moves a
    replacement into place; ``keep_aside`` moves an interrupted replacement to a visible sibling
    (``RUN.new``) that can be resumed; ``abandon`` removes a failed replacement.
    """

    def __init__(self, path: str | os.PathLike, overwrite: bool = False, resume: bool = False) -> None:
        self.path = Path(path)
        self.resume = resume
        self.replacing = bool(overwrite) and _nonempty(self.path) and not _disposable(self.path)
        beside = self.path.with_name(_temp_prefix(self.path.name, "tmp") + secrets.token_hex(4))
        self.work = beside if self.replacing else self.path

    def begin(self, command: str = "train", **info: Any) -> Path:
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(path.parent, path.name)
        if self.replacing:
            self.work.mkdir()
        elif not self.resume and path.exists():
            if _nonempty(path):  # empty, or a run that never reached a checkpoint (check_run_dir)
                shutil.rmtree(path)
            else:
                path.rmdir()
        self.work.mkdir(parents=True, exist_ok=True)
        if not self.resume:
            write_bytes(self.work / MARKER, _marker(command, **info).encode())
        self._clean_leftovers()
        write_bytes(self.work / LOCK, f"{os.getpid()}\n".encode())
        if not self.resume:
            fix_modes(self.work)
        return self.work

    def _clean_leftovers(self) -> None:
        """Temporary files of killed writes inside the run folder (the lock makes them all stale)."""
        for d in (self.work, self.work / "logs", self.work / "images"):
            if not d.is_dir():
                continue
            for f in d.iterdir():
                if f.name.startswith(".") and (".tmp" in f.name) and f.is_file() and not f.is_symlink():
                    with contextlib.suppress(OSError):
                        f.unlink()
        remove_stale(self.work, "checkpoint", current=True)

    def _unlock(self, folder: Path) -> None:
        with contextlib.suppress(OSError):
            (folder / LOCK).unlink()

    def finish(self) -> Path:
        """The run completed: move a replacement into place. Returns the run folder."""
        self._unlock(self.work)
        if self.replacing and self.work != self.path:
            _replace_dir(self.work, self.path)
            self.work = self.path
        return self.path

    def keep_aside(self) -> Path:
        """The run was interrupted: a replacement moves to the first free ``RUN.new``, ``RUN.new-2``...
        (the earlier run stays in place). Returns where the interrupted run now is."""
        self._unlock(self.work)
        if not (self.replacing and self.work != self.path):
            return self.path
        k = 1
        while True:
            dest = self.path.with_name(f"{self.path.name}.new" + (f"-{k}" if k > 1 else ""))
            if not os.path.lexists(dest):
                break
            k += 1
        os.replace(self.work, dest)
        self.work = dest
        return dest

    def abandon(self) -> None:
        """The run failed: a replacement is removed (the earlier run stays in place)."""
        self._unlock(self.work)
        if self.replacing and self.work != self.path:
            shutil.rmtree(self.work, ignore_errors=True)


def prepare_run_dir(
    path: str | os.PathLike, overwrite: bool, resume: bool, command: str, **info: Any
) -> Path:
    """Create (or, resuming, reuse) a folder that this process fills in place; never clobbers a user's
    folder (see :func:`check_output_dir`: with ``overwrite`` an earlier output of the same ``command`` is
    removed first, so prefer :class:`RunFolder` or :func:`atomic_output` where the old folder must
    survive a failure)."""
    path = Path(path)
    if resume:
        return check_run_dir(path, overwrite=False, resume=True)
    check_output_dir(path, overwrite, command)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, path.name)
    if path.exists():
        if _nonempty(path):
            old = path.with_name(_temp_prefix(path.name, "old"))
            os.replace(path, old)
            shutil.rmtree(old, ignore_errors=True)
        else:
            path.rmdir()
    path.mkdir(parents=True)
    write_bytes(path / MARKER, _marker(command, **info).encode())
    return path


# ------------------------------------------------------------------------------------------ files


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write a file atomically (temporary name in the same folder, then ``os.replace``), with the
    permissions of the user's umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name, "tmp"), dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def write_npy(path: str | os.PathLike, array: Tensor | np.ndarray) -> Path:
    buf = io.BytesIO()
    np.save(buf, array.detach().cpu().numpy() if isinstance(array, Tensor) else np.asarray(array))
    return write_bytes(path, buf.getvalue())


def display_images(
    values: Tensor, grid_shape: tuple[int, ...] | None, kind: str = "grid", meta: dict[str, Any] | None = None
) -> Tensor | None:
    """Values ``(B, N, C)`` on a grid of ``grid_shape`` as display images ``(B, C', H, W)`` in [0, 1]
    (NaN values stay NaN, drawn grey by ``inrgen.viz``), or None when the points are not on a grid.

    Images as they are; lat/lon fields as maps (north up, ``inrgen.viz.render_latlon``) when ``meta``
    holds ``lat`` and ``lon``; volumes as shaded voxel renders (``inrgen.viz.render_voxels``); multi-view
    sets ``(V, H, W)`` as their views side by side.
    """
    from inrgen import viz

    if grid_shape is None:
        return None
    b, n, c = values.shape
    g = values.detach().float().cpu().transpose(1, 2).reshape(b, c, *grid_shape)
    meta = meta or {}
    if kind == "rays" and len(grid_shape) == 3:
        return torch.cat([g[:, :, i] for i in range(grid_shape[0])], dim=-1).clamp(0, 1)
    if len(grid_shape) == 3:
        return torch.stack([viz.render_voxels(vol[0].nan_to_num(0.0), size=96) for vol in g])
    if len(grid_shape) != 2:
        return None
    if kind == "sphere" and "lat" in meta and "lon" in meta:
        lo, hi = float(np.nanmin(g.numpy())), float(np.nanmax(g.numpy()))
        return torch.stack([viz.render_latlon(f[0], meta["lat"], meta["lon"], vmin=lo, vmax=hi) for f in g])
    if g.shape[1] not in (1, 3):
        g = g[:, :1]
    return g.clamp(0, 1)


def save_grid(path: str | os.PathLike, images: Tensor, nrow: int = 8) -> Path:
    """Tile ``(B, C, H, W)`` images into one PNG (small images enlarged so digits stay readable)."""
    from inrgen import viz

    scale = max(1, 96 // max(images.shape[-2:]))
    out = viz.save_image_grid(images, path, nrow=nrow, scale=scale)
    fix_modes(out)  # viz writes through a private temporary file
    return out
