"""`kmod-dups report RUN_DIR`: a saved run judged again from what its guests
printed (the captured 4-vCPU stress runs of tests/data/stress), and a
tampered one judged differently."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from kmod_dups import debugstorm, report
from kmod_dups.errors import UserError

DATA = Path(__file__).parent / "data" / "stress"
# The sizes of the captured runs (tests/data/stress/README).
SIZES = debugstorm.Sizes(rounds=4, repeat=2, per_cpu=2, crowd=4, inject=3, races=2, starve_threads=100)


def saved_stress(tmp_path: Path, name: str, *, console: str | None = None, result: str = "ok") -> Path:
    folder = tmp_path / f"stress-{name}"
    guest = folder / "guests" / "boot-1"
    guest.mkdir(parents=True)
    (guest / "output.log").write_text((DATA / f"{name}-output.log").read_text())
    if console is None:
        console = (DATA / f"{name}-console.log").read_text()
    (guest / "console.log").write_text(console)
    (guest / "result.json").write_text(json.dumps({"result": result, "timings": {"guest_up": 9.5}}))
    variant = name.split("-4cpu")[0]
    saved = {"variant": variant, "linger_ms": 2000 if variant == "as-posted" else None,
             "build": str(tmp_path / "no-build"), "cpus": 4, "guest": str(guest), "seconds": 330,
             "sizes": asdict(SIZES), "clean": True,
             "scenarios": [{"name": n} for n in debugstorm.DEFAULT_SCENARIOS]}
    (folder / "report.json").write_text(json.dumps(saved))
    return folder


def test_the_captured_hardened_run_is_clean_again(tmp_path):
    again = report.rejudge(saved_stress(tmp_path, "hardened-4cpu"))
    assert again.kind == "stress" and again.ok
    assert again.stress.requests == 493
    assert "0 kernel reports" in again.text()


def test_the_captured_as_posted_run_shows_its_defects_again(tmp_path):
    again = report.rejudge(saved_stress(tmp_path, "as-posted-4cpu"))
    assert not again.ok
    assert {"linger", "announce", "killed", "uaf"} <= set(again.stress.defects)


def test_a_saved_run_whose_console_is_gone_is_not_clean(tmp_path):
    folder = saved_stress(tmp_path, "hardened-4cpu")
    (folder / "guests/boot-1/console.log").unlink()
    again = report.rejudge(folder)
    assert not again.ok and "console.log cannot be read" in again.text()


def test_a_saved_run_that_did_not_end_ok_is_not_clean(tmp_path):
    again = report.rejudge(saved_stress(tmp_path, "hardened-4cpu", result="warn"))
    assert not again.ok and "ended as 'warn'" in again.text()


def test_not_a_run_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match="no such run folder"):
        report.rejudge(tmp_path / "missing")
    (tmp_path / "report.json").write_text("{}")
    with pytest.raises(UserError, match="neither"):
        report.rejudge(tmp_path)


def test_the_command_exits_as_the_judges_say(tmp_path):
    folder = saved_stress(tmp_path, "hardened-4cpu")
    proc = subprocess.run([sys.executable, "-m", "kmod_dups.cli", "report", str(folder), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"clean": true' in proc.stdout
    (folder / "guests/boot-1/result.json").write_text(json.dumps({"result": "bug"}))
    proc = subprocess.run([sys.executable, "-m", "kmod_dups.cli", "report", str(folder)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
