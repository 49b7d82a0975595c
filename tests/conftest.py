"""Shared fixtures: the real base tree, unpacked once and cached."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kmod_dups.codegen import basetree

REPO = Path(__file__).resolve().parent.parent
# The spec: the seed patch, kept in the repository so a clone stands alone.
SEED = REPO / "spec" / "000_b656a6e755026c17.txt"
SIGNOFF = "Kmod Dups Test <kmod-dups-test@example.org>"


@pytest.fixture(scope="session")
def base_tree() -> Path:
    """Debian's linux-source-6.1 as a pristine git repo (unpacked into the
    cache on first use; ``setup-debian`` installs the package)."""
    return basetree.default_base_tree()


@pytest.fixture(scope="session")
def seed_text() -> str:
    if not SEED.is_file():
        pytest.fail(f"the seed is missing: {SEED}")
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


_BUILDS: dict[tuple[tuple[str, ...], str], Path] = {}


def kernel_build(configs: list[str], variant: str = "hardened") -> Path:
    """The build folder of a configuration, built (or brought up to date,
    which costs seconds with ccache and an existing build) once per test
    session through `kmod-dups build`'s pipeline, in the default build
    folders that `kmod-dups run` uses too."""
    from kmod_dups.build import pipeline

    key = (tuple(configs), variant)
    if key not in _BUILDS:
        record = pipeline.run(pipeline.Request(configs=list(configs), variant=variant, quiet=True))
        _BUILDS[key] = Path(record["builddir"])
    return _BUILDS[key]


@pytest.fixture(scope="session")
def default_build() -> Path:
    """The feature-on kernel of the main job (boot + bcc + test_kmod + dups);
    KMOD_DUPS_BUILD names another build folder to use instead."""
    override = os.environ.get("KMOD_DUPS_BUILD")
    if override:
        return Path(override)
    from kmod_dups.run import FEATURE_CONFIGS

    return kernel_build(FEATURE_CONFIGS)


@pytest.fixture(scope="session")
def control_build() -> Path:
    from kmod_dups.run import CONTROL_CONFIGS

    return kernel_build(CONTROL_CONFIGS)
