"""`kmod-dups generate` and `series` from the command line: the happy path
and each bad input (one line on stderr, exit 2, nothing half-written)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SIGNOFF, clone_tree, git_am

CLI = [sys.executable, "-m", "kmod_dups.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmod-dups: error: "), proc.stderr
    assert needle in lines[0]


def test_help_has_examples() -> None:
    for command in ([], ["generate"], ["series"]):
        proc = run(*command, "--help")
        assert proc.returncode == 0 and "examples:" in proc.stdout


def test_generate_writes_the_feature(base_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    proc = run("generate", "--tree", str(base_tree), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "kernel/module/dups.c").is_file() and (out / "feature.diff").is_file()
    assert "+obj-$(CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS) += dups.o" in (out / "feature.diff").read_text()


def test_not_a_kernel_tree(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("all:\n\ttrue\n")
    assert_one_line_error(run("series", "--tree", str(tmp_path), "-o", str(tmp_path / "o"),
                              "--signoff", SIGNOFF), "is not a kernel tree")
    assert_one_line_error(run("generate", "--tree", str(tmp_path / "missing"), "-o", str(tmp_path / "o")),
                          "is not a directory")
    assert not (tmp_path / "o").exists()


def test_tree_with_the_series_applied(base_tree: Path, tmp_path: Path) -> None:
    series = tmp_path / "series"
    assert run("series", "--tree", str(base_tree), "-o", str(series), "--signoff", SIGNOFF).returncode == 0
    tree = clone_tree(base_tree, tmp_path / "linux")
    assert git_am(tree, sorted(series.glob("000[1-9]-*.patch"))).returncode == 0
    assert_one_line_error(run("series", "--tree", str(tree), "-o", str(tmp_path / "o"), "--signoff", SIGNOFF),
                          "already has kernel/module/dups.c")


@pytest.mark.parametrize("command", ["generate", "series"])
def test_unknown_variant(command: str, tmp_path: Path) -> None:
    assert_one_line_error(run(command, "--variant", "posted", "-o", str(tmp_path / "o")), "unknown variant")
    assert not (tmp_path / "o").exists()


def test_output_not_empty_needs_force(base_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me\n")
    assert_one_line_error(run("generate", "--tree", str(base_tree), "-o", str(out)), "--force")
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    proc = run("generate", "--tree", str(base_tree), "-o", str(out), "--force")
    assert proc.returncode == 0 and not (out / "mine.txt").exists()
    assert (out / "kernel/module/dups.c").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"], "no staging folder left behind"


def test_unwritable_output(base_tree: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_one_line_error(run("series", "--tree", str(base_tree), "-o", str(blocker / "out"),
                              "--signoff", SIGNOFF), "not a directory")
    # Root ignores permission bits; /proc refuses new folders to anyone.
    assert_one_line_error(run("generate", "--tree", str(base_tree), "-o", "/proc/kmod-dups-out"),
                          "cannot write")


def test_bad_signoff(base_tree: Path, tmp_path: Path) -> None:
    assert_one_line_error(run("series", "--tree", str(base_tree), "-o", str(tmp_path / "o"),
                              "--signoff", "nobody"), "Name <email>")
    assert not (tmp_path / "o").exists()


def test_failure_midway_leaves_nothing(base_tree: Path, tmp_path: Path, monkeypatch) -> None:
    """A failure after the patches were written (here: checkpatch) leaves no
    output folder and no staging folder."""
    from kmod_dups.codegen import series
    from kmod_dups.errors import UserError

    def broken(tree, patch):
        raise UserError("checkpatch exploded")

    monkeypatch.setattr(series.checkpatch, "run", broken)
    with pytest.raises(UserError):
        series.write_series(base_tree, tmp_path / "out", signoff=SIGNOFF)
    assert list(tmp_path.iterdir()) == []
