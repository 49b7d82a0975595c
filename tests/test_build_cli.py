"""`kmod-dups build` bad input that is refused before anything slow starts:
one line on stderr, non-zero exit, no traceback, no build folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def kmod_dups(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kmod_dups.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=120)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmod-dups: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_help_has_examples_and_lists_fragments() -> None:
    proc = kmod_dups("build", "--help")
    assert proc.returncode == 0
    assert "kmod-dups build --config boot bcc test_kmod dups" in proc.stdout
    assert "nodups" in proc.stdout and "dups-trace" in proc.stdout and "debug" in proc.stdout


def test_unknown_fragment(tmp_path: Path) -> None:
    err = one_line_error(kmod_dups("build", "--config", "boot", "nosuch", "-O", str(tmp_path / "b")))
    assert "unknown config fragment 'nosuch'" in err and "nodups" in err
    assert not (tmp_path / "b").exists()


def test_unknown_variant(tmp_path: Path) -> None:
    err = one_line_error(kmod_dups("build", "--config", "boot", "--variant", "nope", "-O", str(tmp_path / "b")))
    assert "unknown variant 'nope'" in err


def test_missing_compiler(tmp_path: Path) -> None:
    err = one_line_error(kmod_dups("build", "--config", "boot", "--cc", "no-such-gcc", "-O", str(tmp_path / "b")))
    assert "C compiler 'no-such-gcc' not found" in err and "apt-get install gcc" in err
    assert not (tmp_path / "b").exists()


def test_missing_ccache(tmp_path: Path) -> None:
    """A PATH with every tool a build needs except ccache."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("git", "make", "flex", "bison", "bc", "perl", "gcc", "sh"):
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is not installed")
        (bindir / tool).symlink_to(found)
    err = one_line_error(kmod_dups("build", "--config", "boot", "-O", str(tmp_path / "b"),
                                   env={"PATH": str(bindir)}))
    assert "ccache not found" in err and "--no-ccache" in err
    assert not (tmp_path / "b").exists()


def test_bad_fragment_line(tmp_path: Path) -> None:
    frag = tmp_path / "bad.config"
    frag.write_text("CONFIG_FOO y\n")
    err = one_line_error(kmod_dups("build", "--config", "boot", str(frag), "-O", str(tmp_path / "b")))
    assert "bad.config:1: not a config line" in err


def test_tree_that_is_not_a_kernel_tree(tmp_path: Path) -> None:
    (tmp_path / "notkernel").mkdir()
    err = one_line_error(kmod_dups("build", "--config", "boot", "--tree", str(tmp_path / "notkernel"),
                                   "-O", str(tmp_path / "b")))
    assert "is not a kernel tree" in err
    assert not (tmp_path / "b").exists()


def test_zero_jobs(tmp_path: Path) -> None:
    err = one_line_error(kmod_dups("build", "--config", "boot", "--jobs", "0", "-O", str(tmp_path / "b")))
    assert "--jobs 0" in err
