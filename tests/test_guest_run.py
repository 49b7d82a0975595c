"""kmod_dups.guest.session: a guest run as `kmod-dups run` and `stress` make it,
through the in-process boot API.  A stand-in for vng plays QEMU (a process
that never ends and writes -pidfile); an interrupt of the job must end it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

# vng's stand-in: finds -pidfile in its arguments, starts "QEMU" there and
# says the kernel is up, then waits like a guest that runs for ever.
ENGINE = """#!/bin/sh
while [ $# -gt 0 ]; do
	case "$1" in *-pidfile*) pidfile=$(printf '%s' "$1" | sed 's/.*-pidfile \\([^ ]*\\).*/\\1/');; esac
	shift
done
sleep 1000 &
echo $! > "$pidfile"
echo "[    0.000000] Linux version 6.1.0-fake" >&2
wait
"""

PARENT = """
import sys
from pathlib import Path
from kmod_dups import cli
from kmod_dups.guest import session as guest_run
from kmod_dups.qemu import boot, limits

boot.find_vng = lambda: {engine!r}
boot.accelmod.choose = lambda *a, **k: ("tcg", "test")
boot.check = lambda request: boot.Plan(limits.QemuInfo("qemu", (10, 0, 2), "", 4096), {{}},
                                       Path({kernel!r}), 512, request.runs)
cli.install_signal_handlers()
try:
    guest_run.run_script(Path({build!r}), 2, "true", Path({runs!r}), name="t")
except cli.Terminated:
    sys.exit(143)
"""


def test_an_interrupted_run_ends_its_guest(tmp_path: Path) -> None:
    engine = tmp_path / "fake-vng"
    engine.write_text(ENGINE)
    engine.chmod(0o755)
    (tmp_path / "vmlinux").write_text("")
    runs = tmp_path / "runs"
    parent = textwrap.dedent(PARENT.format(engine=str(engine), kernel=str(tmp_path / "vmlinux"),
                                           build=str(tmp_path), runs=str(runs)))
    proc = subprocess.Popen([sys.executable, "-c", parent])
    pidfiles: list[Path] = []
    for _ in range(400):
        pidfiles = [p for p in runs.glob("boot-*/qemu.pid") if p.read_text().strip()]
        if pidfiles:
            break
        time.sleep(0.05)
    assert pidfiles, "the stand-in QEMU never started"
    qemu = int(pidfiles[0].read_text())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    time.sleep(0.2)
    assert not Path(f"/proc/{qemu}").exists() or "zombie" in Path(f"/proc/{qemu}/status").read_text().lower()
