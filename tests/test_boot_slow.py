"""Real boots of the built kernel under TCG (slow: tens of seconds each).

The kernel is the main job's feature-on build (boot bcc test_kmod dups),
built once per session by conftest's ``default_build`` (KMOD_DUPS_BUILD
names an existing build folder instead).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kmod_dups.qemu import accel, limits

pytestmark = pytest.mark.slow

CPUS = 4


def boot(build: Path, tmp_path: Path, *command: str, cpus: int = CPUS, extra: tuple[str, ...] = (),
         env: dict[str, str] | None = None, timeout: float = 600) -> tuple[subprocess.CompletedProcess[str], dict]:
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "-m", "kmod_dups.cli", "boot", "--build", str(build), "--cpus", str(cpus),
         "--accel", "tcg", "--runs", str(runs), *extra, "--", *command],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )
    results = sorted(runs.glob("*/result.json"))
    assert len(results) == 1, proc.stderr
    return proc, json.loads(results[0].read_text())


def qemu_alive(result: dict) -> bool:
    pid = result.get("qemu_pid")
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def test_output_exit_code_and_all_cpus(default_build, tmp_path):
    proc, result = boot(default_build, tmp_path, 'echo "hello from $(uname -r)"; echo oops-not >&2; '
                        'echo data > "$KMOD_DUPS_SCRATCH/out.txt"; exit 3')
    assert result["result"] == "ok", result
    assert proc.returncode == 3 and result["exit_code"] == 3
    assert "hello from" in proc.stdout and "oops-not" in proc.stdout
    assert result["cpus_online"] == CPUS and result["all_cpus_online"]
    run = Path(result["run_dir"])
    assert (run / "scratch" / "out.txt").read_text() == "data\n"
    for name in ("console.log", "output.log", "qemu-command.txt", "vng-command.txt"):
        assert (run / name).stat().st_size > 0, name
    # CMD's output came through its own virtio port, not the kernel console.
    assert "oops-not" not in (run / "console.log").read_text()
    qemu_cmd = (run / "qemu-command.txt").read_text()
    assert "tcg,thread=single" in qemu_cmd and "vmlinux" in qemu_cmd
    assert result["timings"]["guest_up"] > 0
    assert not qemu_alive(result)


def test_sysrq_panic_is_reported_with_console(default_build, tmp_path):
    proc, result = boot(default_build, tmp_path, "echo 1 > /proc/sys/kernel/sysrq; echo c > /proc/sysrq-trigger")
    assert result["result"] == "panic", result
    assert proc.returncode == 125
    console_log = (Path(result["run_dir"]) / "console.log").read_text()
    assert "Kernel panic - not syncing" in console_log
    assert not qemu_alive(result)


def test_hanging_command_hits_timeout_and_qemu_is_gone(default_build, tmp_path):
    proc, result = boot(default_build, tmp_path, "sleep 100000", extra=("--timeout", "60"))
    assert result["result"] == "timeout", result
    assert proc.returncode == 124
    assert result["timings"]["guest_up"] is not None  # it booted, then hung
    assert result["qemu_gone"] and not qemu_alive(result)


def test_silent_command_hits_the_watchdog(default_build, tmp_path):
    proc, result = boot(default_build, tmp_path, "sleep 100000", extra=("--quiet-timeout", "20"))
    assert result["result"] == "no_output", result
    assert not qemu_alive(result)


def test_kvm_probe_and_fallback(default_build, tmp_path):
    """The real probe on this host, then `--accel auto` twice: said once, cached."""
    qemu = limits.find_qemu()
    kernel = default_build / "vmlinux"
    usable, reason, _ = accel.run_probe(qemu, kernel, timeout=60)
    assert reason
    if not accel.kvm_accessible():
        assert not usable and "not accessible" in reason
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    runs = tmp_path / "runs"
    outputs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "kmod_dups.cli", "boot", "--build", str(default_build),
             "--cpus", "2", "--accel", "auto", "--runs", str(runs), "--", "true"],
            capture_output=True, text=True, timeout=600,
            # a KMOD_DUPS_CACHE of the caller's would take the probe's record elsewhere
            env={**{k: v for k, v in os.environ.items() if k != "KMOD_DUPS_CACHE"}, **env})
        outputs.append(proc)
        assert proc.returncode == 0, proc.stderr
    verdict = "KVM works here" if usable else "falling back to TCG"
    if accel.kvm_accessible():
        assert verdict in outputs[0].stderr
        assert verdict not in outputs[1].stderr  # said once, then cached
        assert len(list((tmp_path / "cache" / "kmod-dups").glob("kvm-probe-*.json"))) == 1
    accels = {json.loads(p.read_text())["accel"] for p in runs.glob("*/result.json")}
    assert accels == {"kvm" if usable else "tcg"}


@pytest.mark.parametrize("cpus,words", [(0, "at least 1"), (513, "CONFIG_NR_CPUS"),
                                        (5000, "at most 4096")])
def test_bad_cpu_counts_fail_before_booting(default_build, tmp_path, cpus, words):
    proc = subprocess.run(
        [sys.executable, "-m", "kmod_dups.cli", "boot", "--build", str(default_build), "--cpus", str(cpus),
         "--runs", str(tmp_path), "--", "true"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # no run folder: nothing started
