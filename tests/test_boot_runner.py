"""kmod_dups.qemu.runner: timeouts, watchdog, sure kill, run folder, result.

These drive the runner with a stand-in for vng (a shell script that behaves
like vng+QEMU would: console on stderr, CMD output on stdout, a "QEMU"
process writing -pidfile); the real thing is in test_boot_slow.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kmod_dups.qemu import runner
from kmod_dups.qemu.console import classify
from kmod_dups.qemu.spec import GuestSpec


def fake_engine(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-vng"
    script.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return script


def setup(tmp_path: Path, body: str, monkeypatch) -> tuple[GuestSpec, runner.RunFolder]:
    folder = runner.new_run_folder(tmp_path / "runs", 2)
    monkeypatch.setenv("FAKE_PIDFILE", str(folder.pidfile))
    monkeypatch.setenv("FAKE_GUEST", str(folder.guest))
    spec = GuestSpec(
        build_dir=tmp_path, kernel=tmp_path / "vmlinux", cpus=2, memory_mb=512, accel="tcg",
        guest_script=folder.script, rw_dirs=(folder.guest, folder.scratch),
        vng=str(fake_engine(tmp_path, body)), pidfile=folder.pidfile,
    )
    return spec, folder


# A "QEMU" that never ends on its own: a sleep writing its pid like -pidfile.
START_QEMU = """
sleep 1000 &
echo $! > "$FAKE_PIDFILE"
echo "Linux version 6.1.0-fake" >&2
"""


def alive(pid: int) -> bool:
    return runner._alive(pid)


def test_clean_run_brings_output_and_exit_code_back(tmp_path, monkeypatch):
    spec, folder = setup(tmp_path, """
        echo "[    0.000000] Linux version 6.1.0-fake" >&2
        echo "[    1.500000] kmod-dups-guest: up uptime=1.50 online=0-1" >&2
        printf '1.50 0-1\\n' > "$FAKE_GUEST/guest-up"
        echo "hello from CMD"
        printf '3\\n' > "$FAKE_GUEST/exit-code"
        echo "kmod-dups-guest: exit=3" >&2
        exit 3
    """, monkeypatch)
    seen = []
    outcome = runner.run(spec, folder, timeout=30, quiet_timeout=30, echo_output=seen.append)
    assert outcome.result == "ok"
    assert outcome.exit_code == 3 and outcome.status == 3
    assert outcome.cpus_online == 2
    assert b"".join(seen) == b"hello from CMD\n"
    assert folder.output.read_text() == "hello from CMD\n"
    assert "kmod-dups-guest: exit=3" in folder.console.read_text()
    result = json.loads(folder.result.read_text())
    assert result["result"] == "ok" and result["all_cpus_online"] is True
    assert result["timings"]["guest_up"] is not None
    assert (folder.path / "vng-command.txt").read_text().startswith(spec.vng)


def test_timeout_kills_the_whole_group(tmp_path, monkeypatch):
    spec, folder = setup(tmp_path, START_QEMU + "wait\n", monkeypatch)
    start = time.monotonic()
    outcome = runner.run(spec, folder, timeout=2, quiet_timeout=60)
    assert time.monotonic() - start < 20
    assert outcome.result == "timeout" and outcome.status == runner.EXIT_TIMEOUT
    pid = int(folder.pidfile.read_text())
    assert not alive(pid) and outcome.qemu_gone
    assert json.loads(folder.result.read_text())["result"] == "timeout"


def test_sigterm_to_kmod_dups_kills_the_guest(tmp_path, monkeypatch):
    """QEMU runs in a process group of its own: a SIGTERM to kmod-dups (the
    CLI's handler, as `kmod-dups boot/run/stress` install it) must still end it."""
    spec, folder = setup(tmp_path, START_QEMU + "wait\n", monkeypatch)
    child = textwrap.dedent(f"""
        import pathlib, sys
        from kmod_dups import cli
        from kmod_dups.qemu import runner
        from kmod_dups.qemu.spec import GuestSpec
        cli.install_signal_handlers()
        spec = GuestSpec(build_dir=pathlib.Path({str(tmp_path)!r}), kernel=pathlib.Path({str(spec.kernel)!r}),
                         cpus=2, memory_mb=512, accel="tcg", guest_script=pathlib.Path({str(folder.script)!r}),
                         rw_dirs=(pathlib.Path({str(folder.guest)!r}),), vng={spec.vng!r},
                         pidfile=pathlib.Path({str(folder.pidfile)!r}))
        folder = runner.RunFolder(pathlib.Path({str(folder.path)!r}))
        try:
            runner.run(spec, folder, timeout=120, quiet_timeout=120)
        except cli.Terminated:
            sys.exit(143)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child])
    for _ in range(100):
        if folder.pidfile.is_file() and folder.pidfile.read_text().strip():
            break
        time.sleep(0.1)
    pid = int(folder.pidfile.read_text())
    assert alive(pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert not alive(pid)
    assert json.loads(folder.result.read_text())["result"] == "interrupted"


def test_no_output_watchdog(tmp_path, monkeypatch):
    spec, folder = setup(tmp_path, START_QEMU + "wait\n", monkeypatch)
    outcome = runner.run(spec, folder, timeout=60, quiet_timeout=1.5)
    assert outcome.result == "no_output"
    assert not alive(int(folder.pidfile.read_text()))


def test_sigterm_ignoring_qemu_still_dies(tmp_path, monkeypatch):
    spec, folder = setup(tmp_path, """
        sh -c 'trap "" TERM; while :; do sleep 1; done' &
        echo $! > "$FAKE_PIDFILE"
        trap "" TERM
        wait
    """, monkeypatch)
    outcome = runner.run(spec, folder, timeout=1.5, quiet_timeout=60)
    assert outcome.result == "timeout"
    assert outcome.qemu_gone and not alive(int(folder.pidfile.read_text()))


def test_panic_on_console_is_the_result(tmp_path, monkeypatch):
    spec, folder = setup(tmp_path, """
        echo "[    0.000000] Linux version 6.1.0-fake" >&2
        echo "[    1.500000] kmod-dups-guest: up uptime=1.50 online=0-1" >&2
        printf '1.50 0-1\\n' > "$FAKE_GUEST/guest-up"
        echo "[    2.000000] Kernel panic - not syncing: sysrq triggered crash" >&2
        exit 255
    """, monkeypatch)
    outcome = runner.run(spec, folder, timeout=30, quiet_timeout=30)
    assert outcome.result == "panic" and outcome.status == runner.EXIT_FAILURE
    assert "sysrq triggered crash" in outcome.message
    assert outcome.exit_code is None


def test_engine_that_fails_before_the_kernel(tmp_path, monkeypatch):
    spec, folder = setup(tmp_path, "echo 'qemu-system-x86_64: -device foo: not found' >&2\nexit 1\n",
                         monkeypatch)
    outcome = runner.run(spec, folder, timeout=30, quiet_timeout=30)
    assert outcome.result == "boot_failed"
    assert "not found" in outcome.message


@pytest.mark.parametrize("kwargs,result", [
    (dict(exit_code=0, cpus_online=8), "ok"),
    (dict(exit_code=0, cpus_online=7), "cpus_offline"),
    (dict(exit_code=None, cpus_online=8), "truncated"),
    (dict(exit_code=None, cpus_online=None, saw_kernel=False), "boot_failed"),
    (dict(exit_code=None, cpus_online=8, timed_out=True), "timeout"),
    (dict(exit_code=None, cpus_online=8, quiet=True), "no_output"),
    (dict(exit_code=None, cpus_online=None, kvm_error=True), "kvm_error"),
])
def test_decide_without_findings(kwargs, result):
    base = dict(kvm_error=False, timed_out=False, quiet=False, cpus=8, saw_kernel=True)
    base.update(kwargs)
    assert runner.decide(classify(""), **base) == result


def test_kernel_failure_beats_timeout():
    report = classify("INFO: task modprobe:99 blocked for more than 120 seconds.\n")
    assert runner.decide(report, kvm_error=False, timed_out=True, quiet=False, exit_code=None,
                         cpus=8, cpus_online=8, saw_kernel=True) == "hung_task"


def test_timeout_beats_a_warning():
    report = classify("WARNING: CPU: 0 PID: 1 at mm/slab.c:1 f+0x1/0x2\n")
    assert runner.decide(report, kvm_error=False, timed_out=True, quiet=False, exit_code=None,
                         cpus=8, cpus_online=8, saw_kernel=True) == "timeout"
    assert runner.decide(report, kvm_error=False, timed_out=False, quiet=False, exit_code=0,
                         cpus=8, cpus_online=8, saw_kernel=True) == "warn"


def test_run_folders_do_not_collide(tmp_path):
    a = runner.new_run_folder(tmp_path, 4)
    b = runner.new_run_folder(tmp_path, 4)
    assert a.path != b.path and a.guest.is_dir() and b.scratch.is_dir()
