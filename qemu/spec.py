"""The guest as data, and the one pure function from it to a command line.

``GuestSpec`` says what to boot (kernel image, build folder for modules),
how big (vCPUs, memory), how (KVM or TCG), what to run and which host
folders to share.  ``vng_command(spec)`` turns it into the ``vng`` (virtme-ng)
command that boots it; ``qemu_args`` and ``kernel_args`` are the parts the
harness adds to what virtme-ng already passes to QEMU and to the kernel.

virtme-ng supplies the guest: the host's root over 9p read-only, its own
init, ``-machine q35 -cpu max`` under TCG (``-cpu host`` under KVM),
``-smp``/``-m``, serial console, virtio-serial ports for CMD's stdout and
stderr and exit code, ``-no-reboot`` and ``panic=-1``.  The harness adds the
fast-boot defaults measured on 2-core hosts:

* direct boot of ``vmlinux`` through its PVH entry (no bzImage
  decompression); QEMU keeps the last ``-kernel``, so ours overrides
  virtme-ng's bzImage while virtme-ng still prepares modules from the build;
* ``-accel tcg,thread=single``: one round-robin TCG thread beat MTTCG on two
  host cores (29 s against 189 s at 64 vCPUs);
* ``tsc=reliable`` (no clocksource watchdog), a preset ``lpj=`` (no
  per-CPU delay-loop calibration);
* under TCG, RCU stall reports suppressed during the kernel's own boot
  (``rcupdate.rcu_cpu_stall_suppress_at_boot=1``): at 448 vCPUs the CPU
  freeing init memory went 21 s without a quiescent state, an artefact of
  one host thread emulating them all; stalls once init runs are reported;
  above 128 vCPUs the soft-lockup and RCU-stall limits grow with N
  (``watchdog_thresh``, ``rcupdate.rcu_cpu_stall_timeout``, see
  ``detector_scale``): still caught, judged on the emulated clock's pace;
* above 255 vCPUs: x2APIC, which Linux enables only with interrupt
  remapping, so an emulated ``intel-iommu`` with ``intremap=on,eim=on``
  (its DMA translation off: the guest only needs the interrupt remapping),
  and under KVM ``kernel-irqchip=split``, which QEMU requires for that.

virtme-ng passes ``--append``, ``--exec`` and its option values through a
shell: values that it does not quote itself are shell-quoted here.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Accel = Literal["kvm", "tcg"]
ACCELS: tuple[Accel, ...] = ("kvm", "tcg")
XAPIC_MAX_CPUS = 255


@dataclass(frozen=True)
class GuestSpec:
    """An x86_64 q35 guest running one command."""

    build_dir: Path  # kernel build folder (.config, modules.order): virtme-ng's kdir
    kernel: Path  # the image QEMU boots: vmlinux (PVH) or arch/x86/boot/bzImage
    cpus: int
    memory_mb: int
    accel: Accel
    guest_script: Path  # shell script the guest runs (guestscript.render)
    rw_dirs: tuple[Path, ...] = ()  # host folders shared read-write, same path in the guest
    cmdline: tuple[str, ...] = ()  # extra kernel arguments, after the defaults
    devices: tuple[str, ...] = ()  # extra QEMU -device values
    qemu_extra: tuple[str, ...] = ()  # any other QEMU arguments, last
    lpj: int | None = None  # preset loops-per-jiffy; None: let the kernel calibrate
    vng: str = "vng"
    qemu: str | None = None  # QEMU binary; None: virtme-ng's choice
    pidfile: Path | None = None  # where QEMU writes its pid
    name: str = "kmod-dups"

    def __post_init__(self) -> None:
        if self.cpus < 1:
            raise ValueError(f"cpus must be >= 1, not {self.cpus}")
        if self.memory_mb < 1:
            raise ValueError(f"memory_mb must be >= 1, not {self.memory_mb}")
        if self.accel not in ACCELS:
            raise ValueError(f"accel must be one of {ACCELS}, not {self.accel!r}")

    @property
    def x2apic(self) -> bool:
        return self.cpus > XAPIC_MAX_CPUS

    @property
    def direct_vmlinux(self) -> bool:
        return self.kernel.name == "vmlinux"


def detector_scale(cpus: int) -> int:
    """How much longer soft-lockup and RCU-stall limits get under TCG.

    One host thread runs every vCPU, so a CPU's work takes longer the more
    vCPUs there are: at 448 the CPU running init spent 26-28 s (guest time)
    in free_reserved_area() poisoning 888K of freed init memory, past the
    default 20 s soft-lockup and 21 s RCU-stall limits.  Up to 128
    vCPUs the defaults stay; above, they grow by one step per 128 vCPUs.
    """
    return max(1, -(-cpus // 128))


def kernel_args(spec: GuestSpec) -> list[str]:
    """Kernel command line the harness adds (virtme-ng adds its own before)."""
    args = ["tsc=reliable"]
    if spec.accel == "tcg":
        # With hundreds of vCPUs on one TCG thread, the CPU running init can
        # go 21 s without a quiescent state while freeing init memory: an
        # emulation artefact, not a kernel bug.  Stalls after boot still show.
        args.append("rcupdate.rcu_cpu_stall_suppress_at_boot=1")
        scale = detector_scale(spec.cpus)
        if scale > 1:
            args.append(f"watchdog_thresh={min(10 * scale, 60)}")
            args.append(f"rcupdate.rcu_cpu_stall_timeout={min(21 * scale, 300)}")
    if spec.lpj:
        args.append(f"lpj={spec.lpj}")
    if spec.x2apic:
        args.append("intremap=on")
    args.extend(spec.cmdline)
    return args


def qemu_args(spec: GuestSpec) -> list[str]:
    """QEMU arguments the harness adds after virtme-ng's own."""
    args: list[str] = []
    if spec.direct_vmlinux:
        args += ["-kernel", str(spec.kernel)]
    if spec.accel == "tcg":
        args += ["-accel", "tcg,thread=single"]
    else:
        # virtme-ng asks for "-machine accel=kvm:tcg" and the default (i440fx)
        # machine under KVM; -machine options merge, so this makes it q35.
        args += ["-machine", "q35,kernel-irqchip=split" if spec.x2apic else "q35"]
    if spec.x2apic:
        args += ["-device", "intel-iommu,intremap=on,eim=on,dma-translation=off"]
    for device in spec.devices:
        args += ["-device", device]
    if spec.pidfile is not None:
        args += ["-pidfile", str(spec.pidfile)]
    args += spec.qemu_extra
    return args


def vng_command(spec: GuestSpec) -> list[str]:
    """The complete ``vng`` command line booting *spec* and running its script."""
    quote = shlex.quote  # for values vng pastes into its shell command unquoted
    cmd = [
        spec.vng,
        "--run", quote(str(spec.build_dir)),
        "--exec", f"sh {quote(str(spec.guest_script))}",
        "--name", quote(spec.name),
        "--cpus", str(spec.cpus),
        "--memory", f"{spec.memory_mb}M",
        # q35, always: microvm has no ACPI for many CPUs, and 9p needs no
        # virtiofsd on the host.
        "--disable-microvm",
        "--force-9p",
        # Kernel console on stderr, at loglevel 7: the harness reads it.
        "--verbose",
    ]
    if spec.accel == "tcg":
        cmd.append("--disable-kvm")
    if spec.qemu:
        cmd += ["--qemu", quote(spec.qemu)]
    for folder in spec.rw_dirs:
        cmd += ["--rwdir", quote(str(folder))]
    for arg in kernel_args(spec):
        cmd += ["--append", quote(arg)]
    extra = qemu_args(spec)
    if extra:
        # Last, and glued with "=": the value starts with "-", which vng's
        # argparse would otherwise take for an option of its own.
        cmd.append("--qemu-opts=" + " ".join(quote(arg) for arg in extra))
    return cmd
