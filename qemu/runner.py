"""Run one guest: live output, timeouts, a sure kill, a run folder, a result.

``run(spec, folder, ...)`` starts ``vng`` in a process group of its own,
reads its two streams as they come (stdout: CMD's output; stderr: the kernel
console, CMD's marker lines and virtme-ng's messages), and ends it when

* the guest powers off after CMD (virtme-ng does that), or
* the wall-clock ``timeout`` passes, or
* nothing at all arrives for ``quiet_timeout`` seconds (the no-output
  watchdog), or
* QEMU reports a KVM failure (the guest would just sit there).

Whatever happens, the whole process group (vng, virtme-run, QEMU) gets
SIGTERM then SIGKILL, and the QEMU pid from ``-pidfile`` is checked to be
gone.  The run folder keeps:

=====================  =================================================
vng-command.txt        the vng command, shell-quoted
qemu-command.txt       QEMU's real command line (read from /proc)
console.log            the console stream (kernel, markers, vng)
console-times.log      the same lines, each with the host's seconds since
                       start: where boot time goes, as the guest's own
                       clock runs slow under TCG until it switches to tsc
output.log             CMD's output (stdout and stderr)
scratch/               shared read-write with the guest for results
                       ($KMOD_DUPS_SCRATCH in CMD)
scratch/.kmod-dups/    the harness's part of it: run.sh, guest-up,
                       exit-code, dmesg.txt
result.json            the result, timings, CPUs online, findings
=====================  =================================================
"""

from __future__ import annotations

import json
import os
import selectors
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kmod_dups.qemu import console as consolemod
from kmod_dups.qemu.accel import KVM_FAILURE
from kmod_dups.qemu.spec import GuestSpec, vng_command

# Exit status of `kmod-dups boot` when CMD's own cannot be brought back.
EXIT_TIMEOUT = 124
EXIT_FAILURE = 125

# Results, most telling first.  "ok" means: booted, all CPUs online, CMD ran
# to its end (whatever its exit code), and the console holds no failure.
RESULTS = (
    "kvm_error", "panic", "bug", "oops", "rcu_stall", "hung_task",
    "timeout", "no_output", "warn", "truncated", "boot_failed", "cpus_offline",
    "interrupted", "ok",
)
KERNEL_FAILURES = ("panic", "bug", "oops", "rcu_stall", "hung_task")

KILL_GRACE = 5.0
PROGRESS_EVERY = 60.0


@dataclass
class RunFolder:
    path: Path

    @property
    def scratch(self) -> Path:
        return self.path / "scratch"

    @property
    def guest(self) -> Path:
        # Inside scratch: one shared folder (one 9p device and mount) for both.
        return self.scratch / ".kmod-dups"

    @property
    def script(self) -> Path:
        return self.guest / "run.sh"

    @property
    def pidfile(self) -> Path:
        return self.path / "qemu.pid"

    @property
    def console(self) -> Path:
        return self.path / "console.log"

    @property
    def console_times(self) -> Path:
        return self.path / "console-times.log"

    @property
    def output(self) -> Path:
        return self.path / "output.log"

    @property
    def result(self) -> Path:
        return self.path / "result.json"

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=False)
        self.scratch.mkdir()
        self.guest.mkdir()


def new_run_folder(base: Path, cpus: int) -> RunFolder:
    """A fresh ``base/boot-YYYYmmdd-HHMMSS-<N>cpu[-k]`` folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        suffix = f"-{attempt}" if attempt else ""
        folder = RunFolder(base / f"boot-{stamp}-{cpus}cpu{suffix}")
        try:
            folder.create()
            return folder
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot make a run folder under {base}")


@dataclass
class Outcome:
    result: str
    exit_code: int | None
    cpus: int
    cpus_online: int | None
    online_list: str | None
    accel: str
    accel_reason: str
    timings: dict[str, float | None]
    findings: list[dict[str, object]] = field(default_factory=list)
    expected_warnings: int = 0
    qemu_gone: bool = True
    message: str = ""
    run_dir: str = ""

    @property
    def status(self) -> int:
        """Exit status for the CLI: CMD's own when the run is clean."""
        if self.result == "ok" and self.exit_code is not None:
            return self.exit_code
        if self.result in ("timeout", "no_output"):
            return EXIT_TIMEOUT
        return EXIT_FAILURE

    def as_dict(self) -> dict[str, object]:
        return {
            "result": self.result,
            "exit_code": self.exit_code,
            "cpus": self.cpus,
            "cpus_online": self.cpus_online,
            "online_list": self.online_list,
            "all_cpus_online": self.cpus_online == self.cpus,
            "accel": self.accel,
            "accel_reason": self.accel_reason,
            "timings": self.timings,
            "findings": self.findings,
            "expected_warnings": self.expected_warnings,
            "qemu_gone": self.qemu_gone,
            "message": self.message,
            "run_dir": self.run_dir,
        }


def decide(report: consolemod.ConsoleReport, *, kvm_error: bool, timed_out: bool,
           quiet: bool, exit_code: int | None, cpus: int, cpus_online: int | None,
           saw_kernel: bool) -> str:
    """One result for a run, from what the console and the guest said."""
    if kvm_error:
        return "kvm_error"
    worst = report.worst
    if worst in KERNEL_FAILURES:
        return worst
    if timed_out:
        return "timeout"
    if quiet:
        return "no_output"
    if worst == "warn":
        return "warn"
    if exit_code is None:
        return "truncated" if saw_kernel else "boot_failed"
    if cpus_online != cpus:
        return "cpus_offline"
    return "ok"


def _pgid_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parens.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def kill_group(proc: subprocess.Popen[bytes], qemu_pid: int | None) -> bool:
    """End vng's process group for sure; True when QEMU is gone afterwards."""
    pgid = proc.pid
    for sig, grace in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, KILL_GRACE)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()
            if not _pgid_members(pgid) and (qemu_pid is None or not _alive(qemu_pid)):
                break
            time.sleep(0.1)
        else:
            continue
        break
    proc.poll()
    if proc.returncode is None:
        try:
            proc.wait(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            pass
    if qemu_pid is not None and _alive(qemu_pid):
        # Left its group somehow: end it by pid.
        try:
            os.kill(qemu_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + KILL_GRACE
        while _alive(qemu_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    return qemu_pid is None or not _alive(qemu_pid)


def cpu_seconds(pid: int | None) -> float | None:
    """User+system CPU time of *pid* so far: boot cost without the host's other load."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return round((int(fields[11]) + int(fields[12])) / ticks, 2)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _write_json(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def run(
    spec: GuestSpec,
    folder: RunFolder,
    *,
    timeout: float,
    quiet_timeout: float,
    accel_reason: str = "",
    echo_output: Callable[[bytes], None] | None = None,
    echo_console: Callable[[bytes], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> Outcome:
    """Boot *spec*, run its script, and return (and save) the outcome."""
    say = say or (lambda message: None)
    cmd = vng_command(spec)
    (folder.path / "vng-command.txt").write_text(shlex.join(cmd) + "\n", encoding="utf-8")
    env = dict(os.environ)
    # vng starts virtme-run by name through a shell: it must be on PATH.
    vng_dir = os.path.dirname(spec.vng)
    if vng_dir:
        env["PATH"] = vng_dir + os.pathsep + env.get("PATH", "")

    timings: dict[str, float | None] = {
        "qemu_started": None, "guest_up": None, "guest_uptime_at_up": None,
        "qemu_cpu_at_guest_up": None, "command": None, "total": None,
    }
    start = time.monotonic()
    last_output = start
    last_progress = start
    qemu_pid: int | None = None
    timed_out = quiet = kvm_error = False
    interrupted: KeyboardInterrupt | None = None  # Ctrl-C, or SIGTERM by way of the CLI
    console_tail = b""
    last_console_line = ""
    saw_kernel = False

    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, "out")
    selector.register(proc.stderr, selectors.EVENT_READ, "con")
    open_streams = 2
    try:
        with open(folder.console, "wb") as console_log, \
                open(folder.console_times, "w", encoding="utf-8") as times_log, \
                open(folder.output, "wb") as output_log:
            while open_streams or proc.poll() is None:
                now = time.monotonic()
                if now - start > timeout:
                    timed_out = True
                    break
                if now - last_output > quiet_timeout:
                    quiet = True
                    break
                if qemu_pid is None and folder.pidfile.exists():
                    text = _read_text(folder.pidfile) or ""
                    if text.strip().isdigit():
                        qemu_pid = int(text.strip())
                        timings["qemu_started"] = round(now - start, 3)
                        try:
                            argv = Path(f"/proc/{qemu_pid}/cmdline").read_bytes().split(b"\0")[:-1]
                            (folder.path / "qemu-command.txt").write_text(
                                shlex.join(a.decode() for a in argv) + "\n", encoding="utf-8")
                        except OSError:
                            pass
                if now - last_progress > PROGRESS_EVERY:
                    last_progress = now
                    phase = "running CMD" if timings["guest_up"] is not None else "booting"
                    # A line still being written (SMP bring-up prints "#1 #2 ..."
                    # with pr_cont) says more than the last complete one.
                    partial = console_tail.decode("utf-8", "replace").strip()
                    latest = partial or last_console_line
                    if len(latest) > 100:
                        latest = "..." + latest[-97:]
                    say(f"{phase}: {now - start:.0f} s; console: {latest}")
                if not open_streams:
                    time.sleep(0.1)
                    continue
                for key, _ in selector.select(timeout=0.2):
                    stream = key.fileobj
                    data = os.read(stream.fileno(), 65536)  # type: ignore[union-attr]
                    if not data:
                        selector.unregister(stream)
                        open_streams -= 1
                        continue
                    last_output = time.monotonic()
                    if key.data == "out":
                        output_log.write(data)
                        output_log.flush()
                        if echo_output:
                            echo_output(data)
                        continue
                    console_log.write(data)
                    console_log.flush()
                    if echo_console:
                        echo_console(data)
                    console_tail += data
                    *lines, console_tail = console_tail.split(b"\n")
                    for raw in lines:
                        line = raw.decode("utf-8", "replace").rstrip("\r")
                        times_log.write(f"{last_output - start:9.3f} {line}\n")
                        if line.strip():
                            last_console_line = consolemod.strip_prefix(line)
                        if not saw_kernel and "Linux version" in line:
                            saw_kernel = True
                        up = consolemod.GUEST_UP.search(line)
                        if up and timings["guest_up"] is None:
                            timings["guest_up"] = round(last_output - start, 3)
                            timings["guest_uptime_at_up"] = float(up.group(1))
                            timings["qemu_cpu_at_guest_up"] = cpu_seconds(qemu_pid)
                            online = consolemod.parse_cpu_list(up.group(2))
                            say(f"guest up after {last_output - start:.1f} s "
                                f"(QEMU CPU time {timings['qemu_cpu_at_guest_up']} s); "
                                f"{len(online)}/{spec.cpus} CPUs online")
                        if consolemod.GUEST_EXIT.search(line) and timings["guest_up"] is not None:
                            timings["command"] = round(last_output - start - timings["guest_up"], 3)
                        if KVM_FAILURE.search(line):
                            kvm_error = True
                    times_log.flush()
                    if kvm_error:
                        break
                if kvm_error:
                    break
    except KeyboardInterrupt as err:
        interrupted = err
    finally:
        qemu_gone = kill_group(proc, qemu_pid)
        for stream in (proc.stdout, proc.stderr):
            stream.close()
    timings["total"] = round(time.monotonic() - start, 3)

    console_text = _read_text(folder.console) or ""
    report = consolemod.classify(console_text)
    exit_text = _read_text(folder.guest / "exit-code")
    exit_code = int(exit_text.strip()) if exit_text and exit_text.strip().isdigit() else None
    up_text = _read_text(folder.guest / "guest-up")
    online_list = up_text.split()[1] if up_text and len(up_text.split()) > 1 else None
    cpus_online = len(consolemod.parse_cpu_list(online_list)) if online_list else None
    saw_kernel = saw_kernel or "Linux version" in console_text
    if interrupted is not None:
        result = "interrupted"
    else:
        result = decide(report, kvm_error=kvm_error, timed_out=timed_out, quiet=quiet,
                        exit_code=exit_code, cpus=spec.cpus, cpus_online=cpus_online,
                        saw_kernel=saw_kernel)
    message = _message(result, report, timeout, quiet_timeout, last_console_line, console_text)
    outcome = Outcome(
        result=result, exit_code=exit_code, cpus=spec.cpus, cpus_online=cpus_online,
        online_list=online_list, accel=spec.accel, accel_reason=accel_reason, timings=timings,
        findings=[f.as_dict() for f in report.findings],
        expected_warnings=len(report.expected), qemu_gone=qemu_gone, message=message,
        run_dir=str(folder.path),
    )
    record = outcome.as_dict()
    record["vng_returncode"] = proc.returncode
    record["qemu_pid"] = qemu_pid
    record["spec"] = {
        "kernel": str(spec.kernel), "build_dir": str(spec.build_dir), "cpus": spec.cpus,
        "memory_mb": spec.memory_mb, "accel": spec.accel, "lpj": spec.lpj,
        "x2apic": spec.x2apic, "cmdline": list(spec.cmdline), "qemu_extra": list(spec.qemu_extra),
    }
    _write_json(folder.result, record)
    if interrupted is not None:
        raise interrupted
    return outcome


def _message(result: str, report: consolemod.ConsoleReport, timeout: float,
             quiet_timeout: float, last_line: str, console_text: str) -> str:
    if result in KERNEL_FAILURES or result == "warn":
        first = next(f for f in report.findings if f.kind == result)
        return f"console line {first.line}: {first.text}"
    if result == "timeout":
        return f"no end after {timeout:.0f} s; last console line: {last_line}"
    if result == "no_output":
        return f"no output for {quiet_timeout:.0f} s; last console line: {last_line}"
    if result == "kvm_error":
        failure = next((l for l in console_text.splitlines() if KVM_FAILURE.search(l)), "")
        return f"QEMU under KVM: {failure.strip()}; try --accel tcg"
    if result == "boot_failed":
        tail = [l for l in console_text.splitlines() if l.strip()][-3:]
        return "the kernel never started: " + " | ".join(tail)
    if result == "truncated":
        return f"the console stopped before CMD ended; last line: {last_line}"
    return ""


def stdout_writer(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def stderr_writer(data: bytes) -> None:
    sys.stderr.buffer.write(data)
    sys.stderr.buffer.flush()
