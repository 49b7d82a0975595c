"""``kmod-dups boot``: run a command in a many-vCPU guest of the built kernel."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kmod_dups.qemu import limits
from kmod_dups.qemu.boot import BootRequest, boot, summary

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


def request_from(args: argparse.Namespace) -> BootRequest:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    return BootRequest(build=args.build, cpus=args.cpus, command=tuple(command), runs=args.runs,
                       append=tuple(args.append), qemu_args=tuple(args.qemu_arg), timeout=args.timeout,
                       quiet_timeout=args.quiet_timeout, memory=args.memory, accel=args.accel,
                       qemu=args.qemu, show_console=args.show_console, echo_output=True)


def main(args: argparse.Namespace) -> int:
    result = boot(request_from(args), say)
    say(summary(result))
    if not result.outcome.qemu_gone:
        say(f"QEMU (pid from {result.folder.pidfile}) could not be ended; kill it by hand")
    return result.outcome.status
