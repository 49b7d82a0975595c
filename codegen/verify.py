"""Apply a written series to a scratch copy of its base tree with git am,
and summarize what landed: the proof that the series is usable as is."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from kmod_dups.cache import cache_dir
from kmod_dups.errors import UserError


def _git(tree: Path, *args: str) -> str:
    env = dict(os.environ, GIT_COMMITTER_NAME="kmod-dups", GIT_COMMITTER_EMAIL="kmod-dups@localhost")
    proc = subprocess.run(["git", *args], cwd=tree, capture_output=True, text=True, env=env)
    if proc.returncode:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise UserError(f"git {args[0]} failed in {tree}: {detail[0] if detail else 'no output'}")
    return proc.stdout


def apply_to_scratch(tree: Path, patches: list[Path]) -> tuple[Path, str]:
    """Clone ``tree`` (a git repo) into the cache's scratch folder, replacing
    the previous scratch copy, and ``git am`` the patches there.  Returns
    the scratch tree and a summary (shortlog and diffstat)."""
    if not (tree / ".git").exists():
        raise UserError(f"{tree} is not a git repository, so it cannot be cloned for a scratch "
                        "git am; drop --verify or use a git tree")
    scratch = cache_dir() / "scratch" / tree.name
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", "--shared", str(tree), str(scratch)], check=True)
    base = _git(scratch, "rev-parse", "HEAD").strip()
    try:
        _git(scratch, "am", "-q", *[str(patch.resolve()) for patch in patches])
    except UserError as err:
        raise UserError(f"the series does not apply to {tree}: {err}") from None
    summary = _git(scratch, "log", "--reverse", "--format=  %h %s", f"{base}..HEAD")
    summary += _git(scratch, "diff", "--stat=72", base, "HEAD")
    return scratch, summary
