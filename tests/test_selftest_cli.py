"""`kmod-dups selftest`: kmod.sh from the command line, and its bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli_codegen import assert_one_line_error, run


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    runs = ["--runs", str(tmp_path)]
    assert_one_line_error(run("selftest", "--count", "0", *runs), "--count 0")
    assert_one_line_error(run("selftest", "--cpus", "0", *runs), "--cpus 0")
    assert_one_line_error(run("selftest", "--upstream", *runs), "--upstream builds a tree's own dups.c")
    assert_one_line_error(run("selftest", "--build", str(tmp_path / "nope"), "0001", *runs),
                          "not a configured kernel build folder")
    assert not any(tmp_path.iterdir()), "nothing written for bad input"


@pytest.mark.slow
def test_one_kmod_sh_test_in_a_guest(tmp_path: Path) -> None:
    """The default kernel (built by the main job's tests), kmod.sh 0001 once,
    2 vCPUs: its row passes; an unknown test id is refused before the boot."""
    proc = run("selftest", "0001", "--count", "1", "--cpus", "2", "--runs", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    head, *rows = proc.stdout.strip().splitlines()
    assert head.split()[:3] == ["test", "result", "runs"]
    assert [row.split()[:3] for row in rows] == [["0001", "pass", "1/1"]], proc.stdout
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("selftest-")]
    assert (folder / "selftest.txt").read_text().strip() == proc.stdout.strip()
    build = next(line.split(" in ", 1)[1] for line in proc.stderr.splitlines()
                 if line.startswith("kmod-dups build: "))
    assert_one_line_error(run("selftest", "--build", build, "9999", "--runs", str(tmp_path / "x")),
                          "unknown kmod.sh test(s) 9999")
    assert not (tmp_path / "x").exists()
