"""Write outputs so that a reader never sees half of one: into a temporary
file or folder beside the target, then renamed over it.  Every job's
staging and publishing goes through here."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from kmod_dups.errors import UserError


def write_text(path: Path, text: str) -> None:
    """*path* holds either its old content or all of *text*, never part."""
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def staging_dir(dest: Path, hint: str = "choose a writable place") -> Path:
    """A fresh folder beside *dest* to write into before ``publish_dir``."""
    try:
        dest.resolve().parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.resolve().parent))
    except OSError as err:
        raise UserError(f"cannot write {dest}: {err.strerror}; {hint}") from None


def publish_dir(staging: Path, dest: Path) -> None:
    """Replace *dest* by the finished *staging* folder in one rename, so a
    failure never leaves a half-written output behind."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        dest.rename(old)
    staging.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
