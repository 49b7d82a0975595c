"""The main job on Debian's 7.2: the tree's own dups.c (upstream), the
fix-up series and the control kernel, built, booted at 2 vCPUs, stormed
under dupstrace, and the verdict.  Three kernels of a second tree cost
about 25 minutes from cold, so it is behind `-m base72`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.base72,
              pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get fetches Debian's 7.2")]


def test_the_main_job_on_72(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "kmod_dups.cli", "run", "--base", "7.2", "--cpus", "2",
                           "--runs", str(tmp_path)], capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    assert "series: none, " in proc.stderr and "series: 7 patch(es) for " in proc.stderr, \
        "the upstream kernel without a series, the dups kernel with the fix-up series"
    out = proc.stdout
    assert "verdict: duplicates converge with the feature on" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("kmod_dups_target ")]
    kernels = {row[1]: row for row in rows}
    assert set(kernels) == {"upstream", "dups", "control"}, rows
    assert kernels["dups"][-1] == "yes" and kernels["dups"][5] == "1", kernels["dups"]  # one launch
    assert int(kernels["control"][5]) > 1, kernels["control"]  # the storm opened a window
