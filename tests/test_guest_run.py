"""kmod_dups.guest_run: a guest run as `kmod-dups run` and `stress` make it,
through `kmod-dups boot` in a child process."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

# Stands in for `kmod-dups boot`: installs the CLI's handlers as the real one
# does, says it is up, and on SIGTERM does its cleanup (the real one kills
# its guest's process group) before it exits.
HARNESS = """
import pathlib, sys, time
from kmod_dups import cli
cli.install_signal_handlers()
state = pathlib.Path(sys.argv[1])
state.write_text("up")
try:
    time.sleep(600)
except cli.Terminated:
    state.write_text("cleaned up")
    sys.exit(143)
"""


def test_an_interrupted_run_lets_the_harness_end_its_guest(tmp_path: Path) -> None:
    state = tmp_path / "harness-state"
    parent = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from kmod_dups import cli, guest_run
        guest_run.boot_command = lambda *a, **k: [sys.executable, "-c", {HARNESS!r}, {str(state)!r}]
        cli.install_signal_handlers()
        try:
            guest_run.run_script(Path("/nonexistent"), 2, "true", Path({str(tmp_path / "runs")!r}), name="t")
        except cli.Terminated:
            sys.exit(143)
    """)
    proc = subprocess.Popen([sys.executable, "-c", parent])
    for _ in range(200):
        if state.is_file():
            break
        time.sleep(0.05)
    assert state.read_text() == "up"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert state.read_text() == "cleaned up"
