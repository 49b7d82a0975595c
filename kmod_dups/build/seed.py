"""Start a new build folder from a finished sibling instead of from nothing.

The feature kernel, the control and the _TRACE kernel are one work tree and
one starting config apart by two or three options.  kbuild already knows
how to rebuild exactly what an option change touches: syncconfig touches
include/config/<SYMBOL> for each changed symbol, and fixdep made every
object depend on the symbols it reads.  So a copy of the sibling's folder
plus the new .config rebuilds a handful of files and relinks, where a cold
build (even with ccache warm) preprocesses and hashes all 1,700 of them.

A seed must share the work tree at the same commit and the starting
config, and differ in at most MAX_DIFFERENT options (a debug kernel, with
its own compiler flags everywhere, is rebuilt cold: kbuild would rebuild
it all anyway).  Only a folder whose build finished ("ok") and which no
build holds at the moment is copied.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kmod_dups.build import fragments

MAX_DIFFERENT = 16
LOCK = ".kmod-dups.lock"
SCRATCH = ".kmod-dups-seed"
# Not copied: the seed's own record, logs and lock, the series it was
# built from, its installed modules (modules_install redoes them), and the
# .config the new build has just written.
SKIP = {"build.json", "build.json.tmp", "build.log", "build.log.prev", LOCK, "series",
        "modules-install", ".config", ".config.old", SCRATCH}


@dataclass(frozen=True)
class Seed:
    path: Path
    different: list[str]  # the options whose values differ, sorted


def different_options(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return sorted(k for k in a.keys() | b.keys() if a.get(k, "n") != b.get(k, "n"))


def candidates(builds: Path, own: Path, worktree: str, head: str, start: str) -> Iterator[Path]:
    """Finished sibling build folders of the same source and start."""
    try:
        entries = sorted(builds.iterdir())
    except OSError:
        return
    for folder in entries:
        if folder.resolve() == own.resolve() or not (folder / "vmlinux").is_file():
            continue
        try:
            record = json.loads((folder / "build.json").read_text())
        except (OSError, ValueError):
            continue
        if (record.get("status") == "ok" and record.get("worktree") == worktree
                and record.get("head") == head and record.get("start") == start):
            yield folder


def choose(builds: Path, own: Path, worktree: str, head: str, start: str,
           values: dict[str, str]) -> Seed | None:
    """The sibling whose .config is closest to ``values``, if close enough."""
    best: Seed | None = None
    for folder in candidates(builds, own, worktree, head, start):
        try:
            theirs = fragments.read_config(folder / ".config")
        except OSError:
            continue
        diff = different_options(values, theirs)
        if len(diff) <= MAX_DIFFERENT and (best is None or len(diff) < len(best.different)):
            best = Seed(folder.resolve(), diff)
    return best


@contextlib.contextmanager
def _held(folder: Path) -> Iterator[bool]:
    """The seed's build lock, if no build holds it (a folder being rebuilt
    is no seed)."""
    try:
        handle = open(folder / LOCK, "a")
    except OSError:
        yield False
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def _rewrite_paths(root: Path, old: bytes, new: bytes) -> int:
    """kbuild's command files (.*.cmd) record the commands that built each
    target; objtool's, built by tools/build, name the build folder by its
    absolute path.  A command that changed makes its target rebuild, and a
    rebuilt objtool would make every object rebuild (each object depends
    on it), so the copy's commands are rewritten to its own path."""
    count = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if not (name.endswith(".cmd") or name.endswith(".d")):
                continue
            path = Path(dirpath, name)
            data = path.read_bytes()
            if old + b"/" in data:
                stat = path.stat()
                path.write_bytes(data.replace(old + b"/", new + b"/"))
                os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
                count += 1
    return count


def plant(seed: Seed, builddir: Path) -> bool:
    """Copy the seed's folder into ``builddir`` (which holds only the new
    .config and kmod-dups' own files), keeping file times so that make sees
    only what the new .config changed.  False when the seed is busy.

    The copy goes to a scratch folder first and its entries are renamed
    into place: an interrupted copy must never leave a truncated object
    with a fresh time, which make would take as up to date.  Entries that
    an interrupted earlier plant did not move are simply rebuilt."""
    scratch = builddir / SCRATCH
    shutil.rmtree(scratch, ignore_errors=True)
    with _held(seed.path) as free:
        if not free:
            return False

        def skip(folder: str, names: list[str]) -> set[str]:
            return SKIP & set(names) if Path(folder) == seed.path else set()

        shutil.copytree(seed.path, scratch, symlinks=True, ignore=skip, copy_function=shutil.copy2)
    _rewrite_paths(scratch, str(seed.path).encode(), str(builddir).encode())
    for entry in sorted(scratch.iterdir()):
        target = builddir / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)
    scratch.rmdir()
    return True
