"""``kmod-dups boot``: run a command in a many-vCPU guest of the built kernel."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from kmod_dups.cache import runs_dir
from kmod_dups.errors import UserError
from kmod_dups.qemu import accel as accelmod
from kmod_dups.qemu import guestscript, limits, runner
from kmod_dups.qemu.spec import GuestSpec
from kmod_dups.qemu.visibility import check_visible

DESCRIPTION = """\
Boot the kernel of a build folder in an x86_64 q35 QEMU guest with N vCPUs,
whose root is this host's own file system, read-only (virtme-ng), run CMD
inside, and bring back its output and exit code.  CMD can write results to
$KMOD_DUPS_SCRATCH, a folder shared read-write with the host (RUN/scratch).

After boot the harness checks that all N CPUs are online.  The console is
read for kernel panic, BUG, oops, RCU stall, hung task and unexpected WARN
(the dups WARN of module.enable_dups_trace=1 is expected); a wall-clock
timeout and a no-output watchdog end runs that hang.  Every run leaves a
folder: the QEMU command, console.log, output.log, result.json.

Fast-boot defaults are built in: vmlinux booted directly through PVH,
single-threaded TCG, tsc=reliable, a preset lpj=, and above 255 vCPUs x2APIC
with an emulated intel-iommu doing interrupt remapping.  Under TCG on a
2-core host, boot to CMD took about 5 s at 8 vCPUs, 11 s at 64, 30 s at 128
and 9-10 minutes at 448; the default --timeout allows for that.
"""

EPILOG = """\
exit status: CMD's own when the run is clean (result "ok"); 124 when the
timeout or the no-output watchdog ended it; 125 for any other result
(panic, bug, oops, rcu_stall, hung_task, warn, truncated, boot_failed,
cpus_offline, kvm_error).  result.json in the run folder says which.

examples:
  kmod-dups boot --build build/ --cpus 8 -- uname -a
  kmod-dups boot --build build/ --cpus 64 -- 'nproc; cat /proc/cmdline'
  kmod-dups boot --build build/ --cpus 448 --timeout 3600 -- nproc
  kmod-dups boot --build build/ --cpus 4 --accel tcg --append module.enable_dups_trace=1 \\
      -- sh tools/testing/selftests/kmod/kmod.sh
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "boot",
        help="boot the built kernel in a QEMU guest with N vCPUs and run a command",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--build", required=True, type=Path, metavar="BUILDDIR",
                        help="kernel build folder (.config, vmlinux, arch/x86/boot/bzImage, modules)")
    parser.add_argument("--cpus", required=True, type=int, metavar="N", help="number of vCPUs")
    parser.add_argument("--memory", metavar="M",
                        help="guest memory, MiB or with M/G (default grows with N: "
                        f"{limits.BASE_MEMORY_MB}M + {limits.PER_CPU_MEMORY_MB}M per vCPU)")
    parser.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                        help="auto (default): KVM if a probe boot works on this host, else TCG")
    parser.add_argument("--timeout", type=float, metavar="S",
                        help="wall-clock limit in seconds (default: 600 + 3 s per vCPU under TCG, "
                        "300 + 1 s per vCPU under KVM)")
    parser.add_argument("--quiet-timeout", type=float, default=600.0, metavar="S",
                        help="end the run when neither console nor CMD prints for S seconds "
                        "(default 600)")
    parser.add_argument("--append", action="append", default=[], metavar="ARG",
                        help="extra kernel command-line argument (repeatable)")
    parser.add_argument("--qemu-arg", action="append", default=[], metavar="ARG",
                        help="extra QEMU argument, after the harness's own (repeatable; "
                        "e.g. --qemu-arg=-device --qemu-arg=virtio-rng-pci)")
    parser.add_argument("--runs", type=Path, metavar="DIR",
                        help="where run folders go (default ~/.cache/kmod-dups/runs, as for every job)")
    parser.add_argument("--qemu", metavar="BINARY", help="QEMU binary (default qemu-system-x86_64)")
    parser.add_argument("--show-console", action="store_true",
                        help="copy the kernel console to stderr as it comes")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD",
                        help="command run in the guest; one argument is a shell command line")
    parser.set_defaults(func=main)


def say(message: str) -> None:
    print(f"kmod-dups: {message}", file=sys.stderr, flush=True)


def find_vng() -> str:
    """virtme-ng's vng: next to this Python (the venv) or on PATH."""
    beside = Path(sys.executable).parent / "vng"
    if beside.is_file():
        return str(beside)
    found = shutil.which("vng")
    if found is None:
        raise UserError("virtme-ng's vng not found; pip install virtme-ng (./setup-debian does)")
    return found


def pick_kernel(build: Path, config: dict[str, str]) -> Path:
    """vmlinux through PVH when the kernel has it, else bzImage; both must be there."""
    bzimage = build / "arch/x86/boot/bzImage"
    vmlinux = build / "vmlinux"
    if not bzimage.is_file() and not vmlinux.is_file():
        raise UserError(f"{build} has no kernel (neither vmlinux nor arch/x86/boot/bzImage); "
                        "build it first (kmod-dups build)")
    if not bzimage.is_file():
        # virtme-ng finds the kernel of a build folder by its bzImage.
        raise UserError(f"{build} has no arch/x86/boot/bzImage; finish the build (make bzImage)")
    if config.get("CONFIG_PVH") == "y" and vmlinux.is_file():
        return vmlinux
    return bzimage


def validate(args: argparse.Namespace) -> tuple[limits.QemuInfo, dict[str, str], Path, int, list[str]]:
    """Every check that needs no guest: one-line errors before anything starts."""
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UserError("no command to run: put it after --, e.g. kmod-dups boot ... -- uname -a")
    if args.cpus < 1:
        raise UserError(f"--cpus {args.cpus}: need at least 1 vCPU")
    build: Path = args.build
    if not build.is_dir():
        raise UserError(f"--build {build}: no such folder")
    args.runs = args.runs or runs_dir()
    check_visible({"the build": build, "the run folder": args.runs})
    config = limits.read_build_config(build)
    kernel = pick_kernel(build, config)
    qemu = limits.probe_qemu(limits.find_qemu(args.qemu))
    requested = args.accel
    # With auto the probe decides later; check against TCG's needs, the stricter.
    limits.check_cpus(args.cpus, qemu, config, "kvm" if requested == "kvm" else "tcg")
    if args.memory is not None:
        memory = limits.parse_memory_mb(args.memory)
        limits.check_memory(memory, args.cpus)
    else:
        memory = limits.default_memory_mb(args.cpus)
    if requested == "kvm" and not accelmod.kvm_accessible(accelmod.KVM_DEVICE):
        raise UserError(f"--accel kvm: {accelmod.KVM_DEVICE} is missing or not accessible; "
                        "use --accel tcg or auto, or give this user access to it")
    if args.timeout is not None and args.timeout <= 0:
        raise UserError(f"--timeout {args.timeout}: give a positive number of seconds")
    return qemu, config, kernel, memory, command


def main(args: argparse.Namespace) -> int:
    qemu, config, kernel, memory, command = validate(args)
    vng = find_vng()
    accel, reason = accelmod.choose(args.accel, qemu.binary, qemu.version_str, kernel, say)
    timeout = args.timeout or (600 + 3 * args.cpus if accel == "tcg" else 300 + args.cpus)

    folder = runner.new_run_folder(args.runs.resolve(), args.cpus)
    folder.script.write_text(
        guestscript.render(command, str(folder.guest), str(folder.scratch)), encoding="utf-8")
    spec = GuestSpec(
        build_dir=args.build.resolve(),
        kernel=kernel.resolve(),
        cpus=args.cpus,
        memory_mb=memory,
        accel=accel,  # type: ignore[arg-type]
        guest_script=folder.script,
        rw_dirs=(folder.scratch,),
        cmdline=tuple(args.append),
        qemu_extra=tuple(args.qemu_arg),
        lpj=limits.preset_lpj(config, limits.host_tsc_khz()),
        vng=vng,
        qemu=qemu.binary,
        pidfile=folder.pidfile,
    )
    say(f"booting {kernel.name} with {args.cpus} vCPUs, {memory}M, {accel.upper()} "
        f"(QEMU {qemu.version_str}); run folder {folder.path}")
    outcome = runner.run(
        spec, folder, timeout=timeout, quiet_timeout=args.quiet_timeout, accel_reason=reason,
        echo_output=runner.stdout_writer,
        echo_console=runner.stderr_writer if args.show_console else None,
        say=say,
    )
    up = outcome.timings.get("guest_up")
    boot = f"boot {up:.1f} s" if up is not None else "no boot"
    cpus = (f"{outcome.cpus_online}/{outcome.cpus} CPUs online"
            if outcome.cpus_online is not None else f"?/{outcome.cpus} CPUs online")
    detail = f" ({outcome.message})" if outcome.message else ""
    say(f"result: {outcome.result}, exit code {outcome.exit_code}, {boot}, {cpus}{detail}; "
        f"see {folder.result}")
    if not outcome.qemu_gone:
        say(f"QEMU (pid from {folder.pidfile}) could not be ended; kill it by hand")
    return outcome.status
