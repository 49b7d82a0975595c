"""The boot API: one typed request in, one typed result out, in-process.

``boot(request)`` checks everything that needs no guest (``check``: one-line
``UserError``s), picks the accelerator, makes the run folder, writes the
guest script, runs the guest (``runner.run``) and returns a ``BootResult``:
the runner's ``Outcome`` (result kind, exit code, timings, CPUs online,
console findings), the run folder, CMD's output and the console.  The
``kmod-dups boot`` command, the main job, stress and the tests all call it;
none of them spawns the CLI or reads result.json back.

The vCPU count is checked here, once (``limits.check_cpus``).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kmod_dups.cache import runs_dir
from kmod_dups.errors import UserError
from kmod_dups.qemu import accel as accelmod
from kmod_dups.qemu import guestscript, limits, runner
from kmod_dups.qemu.spec import GuestSpec
from kmod_dups.qemu.visibility import check_visible

Say = Callable[[str], None]


@dataclass(frozen=True)
class BootRequest:
    """What to boot and run."""

    build: Path
    cpus: int
    command: tuple[str, ...]  # one argument: a shell command line
    runs: Path | None = None  # default: runs_dir()
    append: tuple[str, ...] = ()  # extra kernel command-line arguments
    qemu_args: tuple[str, ...] = ()
    timeout: float | None = None  # default grows with the vCPU count
    quiet_timeout: float = 600.0
    memory: str | None = None  # MiB or with M/G; default grows with the vCPU count
    accel: str = "auto"
    qemu: str | None = None
    show_console: bool = False  # copy the console to stderr as it comes
    echo_output: bool = False  # copy CMD's output to stdout as it comes


@dataclass(frozen=True)
class Plan:
    """What ``check`` decided: nothing here has started anything."""

    qemu: limits.QemuInfo
    config: dict[str, str]
    kernel: Path
    memory_mb: int
    runs: Path


@dataclass
class BootResult:
    outcome: runner.Outcome
    folder: runner.RunFolder
    output: str  # CMD's output
    console: str | None  # the console stream; None when it cannot be read

    @property
    def ok(self) -> bool:
        return self.outcome.result == "ok"


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


def check(request: BootRequest) -> Plan:
    """Every check that needs no guest: one-line errors before anything starts."""
    if not request.command:
        raise UserError("no command to run: put it after --, e.g. kmod-dups boot ... -- uname -a")
    if request.cpus < 1:
        raise UserError(f"--cpus {request.cpus}: need at least 1 vCPU")
    build = request.build
    if not build.is_dir():
        raise UserError(f"--build {build}: no such folder")
    runs = (request.runs or runs_dir()).expanduser().resolve()
    check_visible({"the build": build, "the run folder": runs})
    config = limits.read_build_config(build)
    kernel = pick_kernel(build, config)
    qemu = limits.probe_qemu(limits.find_qemu(request.qemu))
    # With auto the probe decides later; check against TCG's needs, the stricter.
    limits.check_cpus(request.cpus, qemu, config, "kvm" if request.accel == "kvm" else "tcg")
    if request.memory is not None:
        memory = limits.parse_memory_mb(request.memory)
        limits.check_memory(memory, request.cpus)
    else:
        memory = limits.default_memory_mb(request.cpus)
    if request.accel == "kvm" and not accelmod.kvm_accessible(accelmod.KVM_DEVICE):
        raise UserError(f"--accel kvm: {accelmod.KVM_DEVICE} is missing or not accessible; "
                        "use --accel tcg or auto, or give this user access to it")
    if request.timeout is not None and request.timeout <= 0:
        raise UserError(f"--timeout {request.timeout}: give a positive number of seconds")
    return Plan(qemu, config, kernel, memory, runs)


def default_timeout(cpus: int, accel: str) -> float:
    return 600 + 3 * cpus if accel == "tcg" else 300 + cpus


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def boot(request: BootRequest, say: Say | None = None, *, plan: Plan | None = None) -> BootResult:
    """Boot *request*'s kernel, run its command, and return what happened.
    Ctrl-C or SIGTERM (kmod_dups.cli) ends the guest's whole process group
    before the interrupt goes on up."""
    say = say or (lambda message: None)
    plan = plan or check(request)
    vng = find_vng()
    accel, reason = accelmod.choose(request.accel, plan.qemu.binary, plan.qemu.version_str, plan.kernel, say)
    timeout = request.timeout or default_timeout(request.cpus, accel)
    folder = runner.new_run_folder(plan.runs, request.cpus)
    folder.script.write_text(
        guestscript.render(list(request.command), str(folder.guest), str(folder.scratch)), encoding="utf-8")
    spec = GuestSpec(
        build_dir=request.build.resolve(),
        kernel=plan.kernel.resolve(),
        cpus=request.cpus,
        memory_mb=plan.memory_mb,
        accel=accel,  # type: ignore[arg-type]
        guest_script=folder.script,
        rw_dirs=(folder.scratch,),
        cmdline=request.append,
        qemu_extra=request.qemu_args,
        lpj=limits.preset_lpj(plan.config, limits.host_tsc_khz()),
        vng=vng,
        qemu=plan.qemu.binary,
        pidfile=folder.pidfile,
    )
    say(f"booting {plan.kernel.name} with {request.cpus} vCPUs, {plan.memory_mb}M, {accel.upper()} "
        f"(QEMU {plan.qemu.version_str}); run folder {folder.path}")
    outcome = runner.run(
        spec, folder, timeout=timeout, quiet_timeout=request.quiet_timeout, accel_reason=reason,
        echo_output=runner.stdout_writer if request.echo_output else None,
        echo_console=runner.stderr_writer if request.show_console else None,
        say=say,
    )
    return BootResult(outcome, folder, _read(folder.output) or "", _read(folder.console))


def summary(result: BootResult) -> str:
    """One line: result, exit code, boot time, CPUs online, why."""
    outcome = result.outcome
    up = outcome.timings.get("guest_up")
    boot_time = f"boot {up:.1f} s" if up is not None else "no boot"
    cpus = (f"{outcome.cpus_online}/{outcome.cpus} CPUs online"
            if outcome.cpus_online is not None else f"?/{outcome.cpus} CPUs online")
    detail = f" ({outcome.message})" if outcome.message else ""
    return (f"result: {outcome.result}, exit code {outcome.exit_code}, {boot_time}, {cpus}{detail}; "
            f"see {result.folder.result}")
