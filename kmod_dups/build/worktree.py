"""The source tree a build compiles: the base with the series applied.

The base (Debian's linux-source-6.1 from the cache, or the user's --tree)
is never modified.  A work tree is made from it with ``git clone --shared``
(objects are shared, so it costs one checkout) and the series is applied
with ``git am``.  There is one work tree per base and variant, kept in the
cache and reused: the feature-on and the control builds compile the same
sources.

When the series changes (a template was edited), the work tree is reset to
the base and the new series applied, and every file whose content did not
change gets its old modification time back, so make recompiles only what
really changed (dups.c alone, after an edit of the dups.c template).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kmod_dups.build.runlog import RunLog
from kmod_dups.cache import cache_dir
from kmod_dups.errors import UserError

STATE = "kmod-dups-worktree.json"
GIT_IDENT = ["-c", "user.name=kmod-dups", "-c", "user.email=kmod-dups@localhost",
             "-c", "commit.gpgsign=false", "-c", "core.autocrlf=false"]


@dataclass
class WorkTree:
    path: Path
    base: Path
    base_head: str
    head: str
    series_digest: str
    action: str  # "created", "updated", "reused", "in-place"
    touched: list[str]


def _git(repo: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *GIT_IDENT, *args], cwd=repo, capture_output=True, text=True)
    if check and proc.returncode:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise UserError(f"git {args[0]} in {repo} failed: {msg[-1] if msg else proc.returncode}")
    return proc.stdout.strip()


def head(repo: Path) -> str:
    """The commit checked out in ``repo`` ("" when there is none)."""
    return _git(repo, "rev-parse", "HEAD", check=False)


def is_git_repo(path: Path) -> bool:
    proc = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True)
    return proc.returncode == 0 and Path(proc.stdout.strip()).resolve() == path.resolve()


def series_patches(files: list[Path]) -> list[Path]:
    """The patches of a series, in order, without the cover letter."""
    return [f for f in sorted(files) if f.suffix == ".patch" and "\ndiff --git " in f.read_text(errors="replace")]


def digest(patches: list[Path]) -> str:
    h = hashlib.sha256()
    for patch in patches:
        # Only the diffs matter: dates and message ids change on every run.
        text = patch.read_text(errors="replace")
        h.update(text[text.find("\ndiff --git "):].encode())
    return h.hexdigest()[:16]


def files_in(patches: list[Path]) -> set[str]:
    out = set()
    for patch in patches:
        for line in patch.read_text(errors="replace").splitlines():
            if line.startswith("diff --git a/"):
                out.add(line.split(" b/", 1)[1])
    return out


def root_for(base: Path, variant: str) -> Path:
    key = hashlib.sha256(str(base.resolve()).encode()).hexdigest()[:12]
    return cache_dir() / "worktrees" / f"{base.resolve().name}-{key}-{variant}"


@contextlib.contextmanager
def lock(root: Path, shared: bool = False) -> Iterator[None]:
    """Builds hold the work tree shared while they compile it; changing it
    (a new series) needs it exclusive, so it waits for them."""
    root.parent.mkdir(parents=True, exist_ok=True)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    with open(root.with_name(root.name + ".lock"), "a") as handle:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"kmod-dups build: waiting for another build using {root} ...", file=sys.stderr, flush=True)
            fcntl.flock(handle, mode)
        yield


def _am(repo: Path, patches: list[Path], log: RunLog) -> None:
    proc = log.run(["git", *GIT_IDENT, "am", "-q", "--keep-cr", *map(str, patches)], "git am",
                   cwd=repo, check=False)
    if proc.returncode:
        subprocess.run(["git", "am", "--abort"], cwd=repo, capture_output=True)
        first = next((line for line in proc.stdout.splitlines()
                      if line.startswith(("error:", "Patch failed", "fatal:"))), proc.stdout.strip()[-200:])
        raise UserError(f"the series does not apply with git am: {first.strip()} "
                        f"(log: {log.path}); is it already in the tree, or made for another base?")


def _blobs(repo: Path, paths: set[str]) -> dict[str, tuple[str, float]]:
    """Content id and mtime of each existing file among ``paths``."""
    out = {}
    for rel in sorted(paths):
        full = repo / rel
        if full.is_file():
            blob = subprocess.run(["git", "hash-object", str(full)], capture_output=True, text=True).stdout.strip()
            out[rel] = (blob, full.stat().st_mtime)
    return out


def _read_state(path: Path) -> dict:
    try:
        return json.loads((path / ".git" / STATE).read_text())
    except (OSError, ValueError):
        return {}


def _write_state(path: Path, state: dict) -> None:
    (path / ".git" / STATE).write_text(json.dumps(state, indent=1) + "\n")


def prepare(base: Path, variant: str, patches: list[Path], log: RunLog) -> WorkTree:
    """The work tree for ``base`` + ``patches``, made or brought up to date."""
    base = base.resolve()
    if not is_git_repo(base):
        raise UserError(f"{base} is not the top of a git repository: the work tree is a git clone of it. "
                        "Make it one (git init && git add -Af && git commit -m base) or pass --in-place")
    base_head = _git(base, "rev-parse", "HEAD")
    root = root_for(base, variant)
    path = root / "linux"
    want = digest(patches)

    def reusable() -> dict | None:
        state = _read_state(path) if path.is_dir() else {}
        if state.get("base_head") == base_head and state.get("series") == want \
                and not (path / ".git" / "rebase-apply").exists() and head(path) == state.get("head"):
            return state
        return None

    with lock(root, shared=True):
        state = reusable()
        if state:
            return WorkTree(path, base, base_head, state["head"], want, "reused", [])
    with lock(root):
        state = reusable()
        if state:
            return WorkTree(path, base, base_head, state["head"], want, "reused", [])
        state = _read_state(path) if path.is_dir() else {}
        if state and (path / ".git" / "rebase-apply").exists():
            subprocess.run(["git", "am", "--abort"], cwd=path, capture_output=True)
            state = {}
        if path.is_dir() and (path / ".git").is_dir():
            return _update(path, base, base_head, patches, want, state, log)
        return _create(root, path, base, base_head, patches, want, log)


def _create(root: Path, path: Path, base: Path, base_head: str, patches: list[Path], want: str,
            log: RunLog) -> WorkTree:
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".clone-*"):
        shutil.rmtree(stale, ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=".clone-", dir=root)) / "linux"
    try:
        log.run(["git", "clone", "-q", "--shared", "--no-checkout", str(base), str(staging)],
                "git clone --shared")
        log.run(["git", "checkout", "-q", "--detach", base_head], "git checkout", cwd=staging)
        _am(staging, patches, log)
        head = _git(staging, "rev-parse", "HEAD")
        _write_state(staging, {"base": str(base), "base_head": base_head, "series": want, "head": head})
        staging.rename(path)
    finally:
        shutil.rmtree(staging.parent, ignore_errors=True)
    return WorkTree(path, base, base_head, head, want, "created", sorted(files_in(patches)))


def _update(path: Path, base: Path, base_head: str, patches: list[Path], want: str, state: dict,
            log: RunLog) -> WorkTree:
    old_head = _git(path, "rev-parse", "HEAD", check=False)
    old_base = state.get("base_head", "")
    paths = files_in(patches)
    if old_base and old_head:
        changed = _git(path, "diff", "--name-only", old_base, old_head, check=False)
        paths |= {p for p in changed.splitlines() if p}
    if old_base != base_head:
        log.run(["git", "fetch", "-q", str(base), base_head], "git fetch", cwd=path)
        changed = _git(path, "diff", "--name-only", old_base or "HEAD", base_head, check=False)
        paths |= {p for p in changed.splitlines() if p}
    before = _blobs(path, paths)
    # Up-to-date stat info in the index, so that reset rewrites only the
    # files whose content differs (a rewritten file is a recompiled file).
    _git(path, "update-index", "-q", "--refresh", check=False)
    log.run(["git", "reset", "-q", "--hard", base_head], "git reset", cwd=path)
    _am(path, patches, log)
    after = _blobs(path, paths)
    touched = []
    for rel, (blob, _) in after.items():
        if rel in before and before[rel][0] == blob:
            mtime = before[rel][1]
            os.utime(path / rel, (mtime, mtime))
        else:
            touched.append(rel)
    _git(path, "update-index", "-q", "--refresh", check=False)
    head = _git(path, "rev-parse", "HEAD")
    _write_state(path, {"base": str(base), "base_head": base_head, "series": want, "head": head})
    return WorkTree(path, base, base_head, head, want, "updated", touched)


def in_place(tree: Path, patches: list[Path], log: RunLog) -> WorkTree:
    """Build ``tree`` itself, applying ``patches`` there with git am when
    given (the user asked for it with --in-place)."""
    tree = tree.resolve()
    if patches:
        if not is_git_repo(tree):
            raise UserError(f"{tree} is not a git repository; --in-place applies the series with git am")
        _am(tree, patches, log)
    head = _git(tree, "rev-parse", "HEAD", check=False) if is_git_repo(tree) else ""
    return WorkTree(tree, tree, head, head, digest(patches) if patches else "", "in-place",
                    sorted(files_in(patches)))
