"""KVM or TCG: does KVM really run a Linux guest on this host?

/dev/kvm can be there and openable while nested KVM still fails Linux
guests.  Seen on these hosts: with ``-cpu host`` (what virtme-ng asks for
under KVM) QEMU aborts at once (``failed to set MSR 0x10a``); with QEMU's
default CPU the kernel stops printing early in boot, and a bzImage sits in
its decompressor; other hosts print ``KVM internal error. Suberror: 1`` /
``emulation failure`` and stop the vCPU.  So ``--accel auto`` boots the
kernel itself once under KVM, the way a run would (q35, ``-cpu host``), with
no root file system: a kernel that gets as far as mounting root (and panics
there, ``panic=-1`` ending QEMU) ran fine under KVM.  Anything else (an
error from QEMU, an early exit, no new console output for
``PROBE_QUIET`` seconds, no root before ``PROBE_TIMEOUT``) means TCG.

The answer depends on the host and the QEMU, not on the guest kernel, so it
is cached per host and QEMU version in ``~/.cache/kmod-dups/`` and the
fallback is announced once, when the probe runs, not on every boot.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from kmod_dups.cache import cache_dir
from kmod_dups.errors import UserError

KVM_DEVICE = "/dev/kvm"
PROBE_TIMEOUT = 60.0
# A kernel under working KVM never goes this long without a console line.
PROBE_QUIET = 15.0

# QEMU's own words when KVM cannot run the guest.
KVM_FAILURE = re.compile(
    r"KVM internal error|emulation failure|KVM: entry failed|"
    r"failed to initialize kvm|Could not access KVM kernel module|kvm run failed|"
    r"failed to set MSR|kvm_buf_set_msrs|kvm_arch_\w+: Assertion"
)
# The kernel got through its initcalls: KVM runs Linux here.
KERNEL_REACHED_ROOT = re.compile(
    r"VFS: Unable to mount root|VFS: Cannot open root device|"
    r"Freeing unused kernel (?:image|memory)|Run \S+ as init process"
)


@dataclass(frozen=True)
class ProbeResult:
    usable: bool
    reason: str
    host: str
    qemu_version: str
    seconds: float
    probed_at: str
    kernel: str




def host_identity() -> str:
    """What the KVM answer depends on: this host's kernel and CPU."""
    cpu = ""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        cpu = match.group(1).strip() if match else ""
    except OSError:
        pass
    return f"{platform.node()}|{platform.release()}|{cpu}"


def cache_path(host: str, qemu_version: str, directory: Path | None = None) -> Path:
    digest = hashlib.sha256(f"{host}|{qemu_version}".encode()).hexdigest()[:16]
    return (directory or cache_dir()) / f"kvm-probe-{digest}.json"


def kvm_accessible(device: str = KVM_DEVICE) -> bool:
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def judge_probe(output: str, exited: bool, returncode: int | None) -> tuple[bool, str]:
    """Decide from a probe boot's console+stderr whether KVM runs Linux."""
    failure = KVM_FAILURE.search(output)
    if failure:
        line = next((l for l in output.splitlines() if failure.group(0) in l), failure.group(0))
        return False, f"QEMU under KVM: {line.strip()[:160]}"
    if KERNEL_REACHED_ROOT.search(output):
        return True, "the kernel booted under KVM to mounting root"
    lines = [l for l in output.splitlines() if l.strip()]
    last = lines[-1].strip()[:120] if lines else "(no console output)"
    if not exited:
        return False, f"the kernel stopped making progress under KVM; last line: {last}"
    return False, f"QEMU under KVM exited ({returncode}) before the kernel mounted root; last line: {last}"


def probe_command(qemu: str, kernel: Path) -> list[str]:
    # The CPU model virtme-ng picks under KVM, so the probe fails where a run would.
    return [
        qemu, "-accel", "kvm", "-machine", "q35", "-cpu", "host,topoext=on", "-smp", "1",
        "-m", "256",
        "-nodefaults", "-display", "none", "-no-reboot", "-serial", "stdio",
        "-kernel", str(kernel),
        "-append", "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1 loglevel=7 "
        "root=/dev/kmod-dups-kvm-probe-no-root",
    ]


def run_probe(qemu: str, kernel: Path, timeout: float = PROBE_TIMEOUT,
              device: str = KVM_DEVICE, quiet: float = PROBE_QUIET,
              log: Path | None = None) -> tuple[bool, str, float]:
    """Boot *kernel* under KVM for at most *timeout* seconds: (usable, reason, seconds).

    *log*, if given, receives QEMU's console and messages.
    """
    start = time.monotonic()
    if not kvm_accessible(device):
        return False, f"{device} is missing or not accessible", 0.0
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            probe_command(qemu, kernel), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        exited = False
        seen = 0
        last_growth = start
        try:
            while time.monotonic() - start < timeout:
                if proc.poll() is not None:
                    exited = True
                    break
                out.seek(0)
                text = out.read().decode("utf-8", "replace")
                # Decided early: a failure message, or root reached.
                if KVM_FAILURE.search(text) or KERNEL_REACHED_ROOT.search(text):
                    break
                now = time.monotonic()
                if len(text) != seen:
                    seen, last_growth = len(text), now
                elif now - last_growth > quiet:
                    break
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if log is not None:
        log.write_text(text, encoding="utf-8")
    usable, reason = judge_probe(text, exited, proc.returncode)
    return usable, reason, time.monotonic() - start


def choose(
    requested: str,
    qemu: str,
    qemu_version: str,
    kernel: Path,
    say: Callable[[str], None],
    device: str = KVM_DEVICE,
    cache: Path | None = None,
    prober: Callable[[str, Path], tuple[bool, str, float]] | None = None,
) -> tuple[str, str]:
    """The accelerator to use and why: ``("kvm"|"tcg", reason)``.

    ``kvm``: /dev/kvm must be accessible (one-line error otherwise); no probe,
    the user asked.  ``tcg``: as asked.  ``auto``: the cached probe answer for
    this host and QEMU, or a fresh probe whose fallback is announced via *say*.
    """
    if requested == "tcg":
        return "tcg", "asked for (--accel tcg)"
    if requested == "kvm":
        if not kvm_accessible(device):
            raise UserError(
                f"--accel kvm: {device} is missing or not accessible; "
                "use --accel tcg or auto, or give this user access to it"
            )
        return "kvm", "asked for (--accel kvm)"
    if requested != "auto":
        raise UserError(f"--accel {requested}: choose auto, kvm or tcg")
    if not kvm_accessible(device):
        # Nothing to cache: this is a plain fact of the host.
        return "tcg", f"{device} is missing or not accessible"
    host = host_identity()
    path = cache_path(host, qemu_version, cache)
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("host") == host and cached.get("qemu_version") == qemu_version:
            accel = "kvm" if cached["usable"] else "tcg"
            return accel, f"cached KVM probe ({path}): {cached['reason']}"
    except (OSError, ValueError, KeyError):
        pass
    say(f"probing KVM with this kernel (once per host and QEMU {qemu_version})...")
    usable, reason, seconds = (prober or run_probe)(qemu, kernel)
    result = ProbeResult(usable, reason, host, qemu_version, round(seconds, 2),
                         time.strftime("%Y-%m-%dT%H:%M:%S%z"), str(kernel))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    if usable:
        say(f"KVM works here ({reason}); using it (answer cached in {path})")
        return "kvm", f"KVM probe: {reason}"
    say(f"KVM unusable here ({reason}); falling back to TCG "
        f"(answer cached in {path}; delete it to probe again)")
    return "tcg", f"KVM probe: {reason}"
