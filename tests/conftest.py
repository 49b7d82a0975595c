"""Shared fixtures: the real base tree, unpacked once and cached."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kmod_dups.codegen import basetree

REPO = Path(__file__).resolve().parent.parent
SEED = REPO.parent / "shared" / "seed" / "000_b656a6e755026c17.txt"
SIGNOFF = "Kmod Dups Test <kmod-dups-test@example.org>"


@pytest.fixture(scope="session")
def base_tree() -> Path:
    """Debian's linux-source-6.1 as a pristine git repo (unpacked into the
    cache on first use; ``setup-debian`` installs the package)."""
    return basetree.default_base_tree()


@pytest.fixture(scope="session")
def seed_text() -> str:
    if not SEED.is_file():
        pytest.fail(f"the seed is missing: {SEED} (the shared/ folder must sit beside the repo)")
    return SEED.read_text()


def clone_tree(base: Path, dest: Path) -> Path:
    """A work tree of the base that shares its objects: cheap to make, and
    the cached base is never modified."""
    subprocess.run(["git", "clone", "-q", "--shared", str(base), str(dest)], check=True)
    return dest


def git_am(tree: Path, patches: list[Path]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
    return subprocess.run(["git", "am", "-q", *map(str, patches)], cwd=tree, env=env,
                          capture_output=True, text=True)


def have(tool: str) -> bool:
    return shutil.which(tool) is not None
