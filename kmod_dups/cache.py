"""Where kmod-dups keeps what is expensive to make again: the unpacked base
tree, builds, probe answers.  ``KMOD_DUPS_CACHE`` overrides the default."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from kmod_dups.errors import UserError


def cache_dir() -> Path:
    root = os.environ.get("KMOD_DUPS_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kmod-dups"


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """Serialize a slow one-time step (unpacking, configuring) between
    processes: pytest workers, helpers, a second terminal."""
    lock_dir = cache_dir() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def runs_dir() -> Path:
    """Where run folders go unless told otherwise: every job's, one place."""
    return cache_dir() / "runs"


def new_run_folder(base: Path | None, prefix: str, cpus: int) -> Path:
    """A fresh folder PREFIX-<date>-<time>-<cpus>cpu for one run's report
    and guests, under *base* (default: ``runs_dir()``)."""
    base = base or runs_dir()
    folder = base / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{cpus}cpu"
    try:
        folder.mkdir(parents=True, exist_ok=False)
    except OSError as err:
        raise UserError(f"cannot make the run folder {folder}: {err.strerror}") from None
    return folder
