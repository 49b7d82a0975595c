"""What a guest may ask for: QEMU's vCPU ceiling, the kernel's NR_CPUS, memory.

Everything here is checked before a guest starts, so bad input ends in a
one-line ``UserError`` instead of a QEMU that dies (or hangs) half-way.

* QEMU: found on PATH (or given), its version read from ``--version``, the
  q35 machine's vCPU ceiling asked from QEMU itself over QMP
  (``query-machines`` -> ``cpu-max``): Debian bookworm's 7.2 says 288,
  bookworm-backports' 10.0 says 4096.
* Kernel: ``CONFIG_NR_CPUS`` from the build's ``.config``; above 255 vCPUs
  the guest needs x2APIC, which Linux only turns on with interrupt
  remapping (``CONFIG_X86_X2APIC`` + ``CONFIG_IRQ_REMAP`` + an IOMMU driver).
* Memory: the default grows with the vCPU count (per-CPU areas, stacks,
  slab and 9p buffers); an explicit ``--memory`` below the floor is refused.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kmod_dups import dotconfig
from kmod_dups.errors import UserError

QEMU_NAME = "qemu-system-x86_64"
# Oldest QEMU the harness drives: Debian bookworm's.  Older ones lack pieces
# the command line relies on (tcg thread=single is old, but PVH boot of
# vmlinux, intel-iommu eim and QMP cpu-max all are there by 7.2).
MIN_QEMU = (7, 2, 0)
# Linux keeps xAPIC (8-bit APIC IDs) up to here; above, x2APIC is needed.
XAPIC_MAX_CPUS = 255
# TCG emulates x2APIC (needed above 255 vCPUs) from QEMU 9.0 on; KVM has it.
TCG_X2APIC_QEMU = (9, 0, 0)
# q35's ceiling in bookworm-backports' QEMU 10.0, what setup-debian installs.
BACKPORTS_Q35_MAX_CPUS = 4096
SETUP_HINT = "install QEMU from bookworm-backports: run ./setup-debian as root"


@dataclass(frozen=True)
class QemuInfo:
    """One QEMU binary as probed on this host."""

    binary: str
    version: tuple[int, int, int]
    version_text: str
    q35_max_cpus: int

    @property
    def version_str(self) -> str:
        return ".".join(str(part) for part in self.version)


def parse_qemu_version(text: str) -> tuple[int, int, int]:
    """``QEMU emulator version 10.0.2 (Debian ...)`` -> ``(10, 0, 2)``."""
    match = re.search(r"version (\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        raise UserError(f"cannot read QEMU's version from {text.strip()[:80]!r}; {SETUP_HINT}")
    major, minor, micro = match.groups()
    return int(major), int(minor), int(micro or 0)


def find_qemu(explicit: str | None = None) -> str:
    """The QEMU binary to use, or a one-line error saying how to get one."""
    name = explicit or QEMU_NAME
    path = shutil.which(name)
    if path is None:
        raise UserError(f"{name} not found; {SETUP_HINT}")
    return path


def parse_query_machines(replies: str, machine: str = "q35") -> int:
    """``cpu-max`` of *machine* (name or alias) from QMP's JSON-lines output."""
    for line in replies.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            continue
        machines = reply.get("return")
        if not isinstance(machines, list):
            continue
        for entry in machines:
            if machine in (entry.get("name"), entry.get("alias")):
                return int(entry["cpu-max"])
    raise ValueError(f"machine {machine!r} not in QEMU's query-machines reply")


def probe_qemu(binary: str) -> QemuInfo:
    """Ask *binary* its version and q35's vCPU ceiling (two quick runs)."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise UserError(f"cannot run {binary} --version ({err}); {SETUP_HINT}") from err
    version = parse_qemu_version(out)
    if version < MIN_QEMU:
        have = ".".join(map(str, version))
        need = ".".join(map(str, MIN_QEMU))
        raise UserError(f"QEMU {have} is too old (need {need} or later); {SETUP_HINT}")
    qmp = (
        '{"execute":"qmp_capabilities"}\n'
        '{"execute":"query-machines"}\n'
        '{"execute":"quit"}\n'
    )
    try:
        replies = subprocess.run(
            [binary, "-machine", "none", "-nodefaults", "-display", "none", "-qmp", "stdio"],
            input=qmp,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
        max_cpus = parse_query_machines(replies)
    except (OSError, subprocess.SubprocessError, ValueError) as err:
        raise UserError(f"cannot ask {binary} for q35's vCPU limit ({err}); {SETUP_HINT}") from err
    return QemuInfo(binary, version, out.splitlines()[0].strip() if out else "", max_cpus)


def parse_kconfig(text: str) -> dict[str, str]:
    """``CONFIG_X=y`` lines of a .config as a dict (unset options absent)."""
    return dotconfig.parse(text)


def read_build_config(build_dir: Path) -> dict[str, str]:
    path = build_dir / ".config"
    try:
        return parse_kconfig(path.read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        raise UserError(f"{build_dir} has no .config; give --build a kernel build folder "
                        "(kmod-dups build writes one)") from None


def nr_cpus(config: dict[str, str]) -> int:
    """The kernel's CPU ceiling: CONFIG_NR_CPUS (1 on a kernel without SMP)."""
    if config.get("CONFIG_SMP", "n") != "y":
        return 1
    value = config.get("CONFIG_NR_CPUS")
    if value is None or not value.isdigit():
        raise UserError("the build's .config has no CONFIG_NR_CPUS; rebuild with CONFIG_SMP=y")
    return int(value)


def kernel_supports_x2apic(config: dict[str, str]) -> bool:
    """x2APIC with interrupt remapping, as Linux needs it above 255 CPUs."""
    return all(config.get(opt) == "y" for opt in ("CONFIG_X86_X2APIC", "CONFIG_IRQ_REMAP")) and (
        config.get("CONFIG_INTEL_IOMMU") == "y"
    )


# Memory: 512 MiB for the kernel, the 9p root and the command, plus 4 MiB per
# vCPU (per-CPU areas, idle and kthread stacks, slab, page-table caches).
BASE_MEMORY_MB = 512
PER_CPU_MEMORY_MB = 4
# Below this the guest is likely to OOM while bringing CPUs up.
MIN_BASE_MEMORY_MB = 256
MIN_PER_CPU_MEMORY_MB = 2


def default_memory_mb(cpus: int) -> int:
    """Default guest RAM for *cpus* vCPUs, rounded up to 128 MiB."""
    raw = BASE_MEMORY_MB + PER_CPU_MEMORY_MB * cpus
    return -(-raw // 128) * 128


def min_memory_mb(cpus: int) -> int:
    return MIN_BASE_MEMORY_MB + MIN_PER_CPU_MEMORY_MB * cpus


def parse_memory_mb(text: str) -> int:
    """``2048``, ``2048M``, ``2G`` -> MiB."""
    match = re.fullmatch(r"\s*(\d+)\s*([mMgG]?)(?:i?[bB])?\s*", text)
    if not match:
        raise UserError(f"--memory {text!r}: give MiB (2048) or a size with M or G (2G)")
    value, unit = int(match.group(1)), match.group(2).upper()
    return value * 1024 if unit == "G" else value


def check_cpus(cpus: int, qemu: QemuInfo, config: dict[str, str], accel: str = "tcg") -> None:
    """Refuse a vCPU count that QEMU's q35 or the kernel cannot boot."""
    if cpus < 1:
        raise UserError(f"--cpus {cpus}: need at least 1 vCPU")
    if cpus > qemu.q35_max_cpus:
        # An upgrade only helps when the QEMU that setup-debian installs
        # allows more than this one does.
        hint = SETUP_HINT if qemu.q35_max_cpus < BACKPORTS_Q35_MAX_CPUS else "ask for fewer vCPUs"
        kernel = nr_cpus(config)
        also = f" (and the kernel was built with CONFIG_NR_CPUS={kernel})" if kernel < cpus else ""
        raise UserError(
            f"--cpus {cpus}: QEMU {qemu.version_str} allows at most {qemu.q35_max_cpus} "
            f"vCPUs on q35{also}; {hint}"
        )
    if cpus > XAPIC_MAX_CPUS and accel == "tcg" and qemu.version < TCG_X2APIC_QEMU:
        need = ".".join(map(str, TCG_X2APIC_QEMU))
        raise UserError(
            f"--cpus {cpus}: above {XAPIC_MAX_CPUS} vCPUs TCG needs x2APIC emulation "
            f"(QEMU {need} or later, have {qemu.version_str}); {SETUP_HINT}"
        )
    limit = nr_cpus(config)
    if cpus > limit:
        raise UserError(
            f"--cpus {cpus}: the kernel was built with CONFIG_NR_CPUS={limit}; "
            f"rebuild with CONFIG_NR_CPUS>={cpus} or ask for fewer vCPUs"
        )
    if cpus > XAPIC_MAX_CPUS and not kernel_supports_x2apic(config):
        raise UserError(
            f"--cpus {cpus}: above {XAPIC_MAX_CPUS} vCPUs the kernel needs "
            "CONFIG_X86_X2APIC, CONFIG_IRQ_REMAP and CONFIG_INTEL_IOMMU; rebuild with them"
        )


def check_memory(memory_mb: int, cpus: int) -> None:
    floor = min_memory_mb(cpus)
    if memory_mb < floor:
        raise UserError(
            f"--memory {memory_mb}M is too little for {cpus} vCPUs (need at least {floor}M; "
            f"default is {default_memory_mb(cpus)}M)"
        )


def host_tsc_khz(cpuinfo: str | None = None) -> int | None:
    """The host's TSC rate in kHz, from /proc/cpuinfo's ``cpu MHz``.

    Under TCG (and KVM) the guest's TSC ticks at the host's rate, so this
    gives a preset ``lpj=`` that spares every vCPU its delay-loop calibration.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    match = re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.M)
    if not match:
        return None
    return int(float(match.group(1)) * 1000)


def preset_lpj(config: dict[str, str], tsc_khz: int | None) -> int | None:
    """Loops per jiffy for ``lpj=``: TSC cycles per jiffy (x86 delays use the TSC)."""
    if not tsc_khz:
        return None
    hz_text = config.get("CONFIG_HZ", "")
    hz = int(hz_text) if hz_text.isdigit() else 250
    return tsc_khz * 1000 // hz
