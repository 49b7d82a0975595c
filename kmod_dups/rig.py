"""The userspace rig of dups.c (issue 6), in the manner of the kernel's
tools/testing/radix-tree.

kernel/rig/ holds headers that implement, on pthreads, the kernel
primitives dups.c uses, a model of kmod.c and modprobe, and a driver that
runs scenarios and checks every result.  This module builds it against the
generated dups.c of a variant (the C is compiled unmodified), runs a
scenario and reads the result into a :class:`~kmod_dups.rig_report.RigResult`.

Build folders live in ``~/.cache/kmod-dups/rig/<sanitizer>-hz<HZ>-j<jiffy ns>``
(``KMOD_DUPS_CACHE`` moves the cache); every run leaves its command, stdout
and stderr in a folder under ``runs/`` there, or under ``log_root``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kmod_dups import cache, rig_report
from kmod_dups.codegen.render import VARIANTS, KernelApis, render_dups_c
from kmod_dups.errors import UserError
from kmod_dups.rig_report import RigResult, Verdict, judge

__all__ = [
    "Build", "BuildConfig", "RigResult", "RunRequest", "Verdict", "build", "judge", "run",
    "SANITIZERS", "SCENARIOS", "HZ", "DEFAULT_LINGER_MS",
]

HZ = 250  # the rig's HZ; a jiffy lasts jiffy_ns of real time
DEFAULT_LINGER_MS = 30.0  # how long the posted 60 * HZ linger lasts in the rig
SANITIZERS = ("address", "thread", "none")

# Scenario name -> (the check it is built to break in the posted code, help).
# The driver's --list-scenarios says the same; tests keep the two in step.
SCENARIOS: dict[str, tuple[str, str]] = {
    "uaf": ("uaf", "(a) waiters stall past the linger: use of a freed entry"),
    "dups": ("dup-value", "(b) concurrent waits on modules that load and that fail"),
    "reload": ("reload", "(c) load, rmmod, load again; not installed, installed, load"),
    "nomem": ("nomem", "(d) 10% of requests under memory pressure (kzalloc fails)"),
    "nowait": ("early", "(e) request_module_nowait() racing request_module()"),
    "owner-nomem": ("", "10% of first requests fail modprobe for lack of memory; waiters get it"),
    "kill": ("kill", "SIGKILL to requests while they wait"),
    "stress": ("", "(a)-(e) and kill mixed, for long runs"),
    "spellings": ("spelling", "one module asked for as snd-dummy and as snd_dummy"),
    "slots": ("slots", "every modprobe slot busy: a request, 100 duplicates and 5 nowait ones time out"),
    "recursive": ("recursion", "a softdep's init asks for the module its modprobe is loading"),
    "flood": ("flood", "48 callers at once, 50 rounds: one warning per burst and its count"),
}

Progress = Callable[[str], None]

# Sanitizers keep going after a report, so one run shows every defect it
# hits and the driver still prints its own checks; ASan needs the binary
# built with -fsanitize-recover=address for that (the Makefile does).
SANITIZER_ENV = {
    "ASAN_OPTIONS": "halt_on_error=0:detect_leaks=1:abort_on_error=0:print_summary=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=0",
    "TSAN_OPTIONS": "halt_on_error=0:second_deadlock_stack=1:report_signal_unsafe=0",
}


def rig_source_dir() -> Path:
    src = Path(__file__).resolve().parent.parent / "kernel" / "rig"
    if not (src / "Makefile").is_file():
        raise UserError(f"the rig's sources are missing: {src}/Makefile; run from a kmod-dups "
                        "checkout (pip install -e .)")
    return src


def jiffy_ns(linger_ms: float) -> int:
    """The jiffy length that makes 60 * HZ jiffies last ``linger_ms``."""
    ns = round(linger_ms * 1e6 / (60 * HZ))
    if ns < 1:
        raise UserError(f"--linger-ms {linger_ms} is too short: 60 * HZ jiffies must last at least "
                        f"{60 * HZ / 1e6:.3f} ms")
    return ns


@dataclass(frozen=True)
class BuildConfig:
    variant: str = "hardened"
    sanitizer: str = "address"
    linger_ms: float = DEFAULT_LINGER_MS
    wait_state: bool = True  # dups.c uses wait_for_completion_state(); False: the killable fallback
    cc: str = "gcc"
    # A folder with an earlier version's dups.c template (dups.c.j2) and
    # generated kmod.c, built instead of the variant's (tests keep the first
    # hardened version pinned, to show its defects).
    pinned: Path | None = None
    # A kernel tree that carries dups.c (Linux 6.4 on): its own
    # kernel/module/dups.c and kmod.c are built unmodified.
    tree: Path | None = None

    def __post_init__(self) -> None:
        if self.tree is not None and self.pinned is not None:
            raise UserError("a rig build takes a tree's own dups.c or a pinned version, not both")
        if self.variant not in VARIANTS:
            raise UserError(f"unknown variant {self.variant!r}: choose one of {', '.join(VARIANTS)}")
        if self.sanitizer not in SANITIZERS:
            raise UserError(f"unknown sanitizer {self.sanitizer!r}: choose one of {', '.join(SANITIZERS)}")

    @property
    def name(self) -> str:
        """The binary's variant name: rig-<name>."""
        if self.tree is not None:
            # The sources' digest too: a tree and the same tree with a
            # fix-up series applied are one version and two binaries.
            digest = hashlib.sha1("\0".join(tree_sources(self.tree)).encode()).hexdigest()[:8]
            return f"tree-{tree_version(self.tree)}-{digest}"
        name = self.variant if self.wait_state else f"{self.variant}-killable"
        return f"{name}-{self.pinned.name}" if self.pinned else name

    @property
    def dups_api(self) -> int:
        """The hooks' shape (the rig's module/internal.h): 3 for today's
        hardened variant, 1 for the posted hooks; a pinned version names
        its own in its folder's "api" file (1 if it has none)."""
        if self.pinned is not None:
            return _pinned_api(self.pinned)
        if self.tree is not None:
            return tree_dups_api(tree_sources(self.tree)[1])
        return 3 if self.variant == "hardened" else 1

    @property
    def jiffy_ns(self) -> int:
        return jiffy_ns(self.linger_ms)

    def build_dir(self, root: Path | None = None) -> Path:
        base = root if root is not None else cache.cache_dir() / "rig"
        cc = Path(self.cc).name
        suffix = "" if cc == "gcc" else f"-{cc}"
        # make's dependency files name the sources by path: a folder per
        # checkout, or another clone's stale paths would break the build.
        src = hashlib.sha1(str(rig_source_dir()).encode()).hexdigest()[:8]
        return base / f"{self.sanitizer}-hz{HZ}-j{self.jiffy_ns}{suffix}-{src}"


@dataclass(frozen=True)
class Build:
    config: BuildConfig
    binary: Path
    dups_c: Path
    warnings: str  # the compiler's warnings for dups.c, "" if none
    log: Path


# The base tree's kernel/kmod.c (Debian's 6.1.192), pinned in the rig so
# that it builds without a kernel tree; a slow test checks it against the
# unpacked tree.
RIG_BASE = "base"
RIG_BASE_VERSION = "6.1.192"


def rig_kmod_c(variant: str, apis: KernelApis) -> str:
    """The pinned kmod.c with the variant's hooks, as the series puts them."""
    from kmod_dups.codegen.basetree import BaseTree
    from kmod_dups.codegen.feature import kmod_c

    tree = BaseTree(path=rig_source_dir() / RIG_BASE, version=RIG_BASE_VERSION, kmod_c="kernel/kmod.c",
                    has_module_debug_menu=False, throttle="atomic", apis=apis)
    return kmod_c(tree, variant)


def tree_version(tree: Path) -> str:
    from kmod_dups.codegen.basetree import kernel_version

    return kernel_version(tree)


def tree_sources(tree: Path) -> tuple[str, str]:
    """A tree's own kernel/module/dups.c and kmod.c, as they are."""
    dups = tree / "kernel/module/dups.c"
    kmod = tree / "kernel/module/kmod.c"
    if not dups.is_file():
        raise UserError(f"{tree} (Linux {tree_version(tree)}) has no kernel/module/dups.c: the rig runs a "
                        "tree's own dups.c from Linux 6.4 on; for older trees use --variant")
    if not kmod.is_file():
        raise UserError(f"{tree} has dups.c but no kernel/module/kmod.c: a layout the rig does not know")
    kmod_text = kmod.read_text()
    if "kmod_dup_request_exists_wait(" not in kmod_text or "DEFINE_SEMAPHORE(" not in kmod_text:
        raise UserError(f"{kmod}: not the kmod.c the rig knows (hooks kmod_dup_request_exists_wait() "
                        "and the kmod_concurrent_max semaphore)")
    return dups.read_text(), kmod_text


def tree_dups_api(kmod_text: str) -> int:
    """The hooks' shape a tree's kmod.c calls: 1 for upstream's (by name,
    as posted), 2 once the first request holds its entry (a fourth
    argument to kmod_dup_request_exists_wait()), 3 once its modprobe's
    subprocess_info holds it too (kmod_dup_request_exec())."""
    if "kmod_dup_request_exec(" in kmod_text:
        return 3
    call = re.search(r"kmod_dup_request_exists_wait\(([^;]*)\)", kmod_text)
    if call and call.group(1).count(",") >= 3:
        return 2
    return 1


def _read_pinned(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as err:
        raise UserError(f"pinned version {path}: {err.strerror}") from None


def _pinned_api(folder: Path) -> int:
    api = folder / "api"
    if not api.is_file():
        return 1
    text = _read_pinned(api).strip()
    if not text.isdigit():
        raise UserError(f"pinned version {api}: not a hooks API number: {text!r}")
    return int(text)


def render_pinned(template: Path, apis: KernelApis) -> str:
    from kmod_dups.codegen.render import POSTED_DELETE_DELAY, environment

    return environment().from_string(_read_pinned(template)).render(
        has_wait_for_completion_state=apis.has_wait_for_completion_state, delete_delay=POSTED_DELETE_DELAY)


def _write_if_changed(path: Path, text: str) -> None:
    """Keeps the mtime (and make's up-to-date check) when nothing changed."""
    if path.is_file() and path.read_text() == text:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        raise UserError(f"{tool} is not installed; the rig needs it: apt-get install {package}")


def build(config: BuildConfig, *, root: Path | None = None, jobs: int = 2,
          progress: Progress | None = None) -> Build:
    """Renders the variant's dups.c into the build folder and runs the rig's
    Makefile there; make keeps it incremental."""
    _need("make", "make")
    _need(config.cc, "gcc")
    src = rig_source_dir()
    out = config.build_dir(root)
    out.mkdir(parents=True, exist_ok=True)
    dups_c = out / f"dups-{config.name}.c"
    kmod_c = out / f"kmod-{config.name}.c"
    binary = out / f"rig-{config.name}"
    log = out / f"build-{config.name}.log"
    with cache.locked(f"rig-{out.name}"):
        apis = KernelApis(has_wait_for_completion_state=config.wait_state)
        if config.tree is not None:
            dups_text, kmod_text = tree_sources(config.tree)
            _write_if_changed(dups_c, dups_text)
            _write_if_changed(kmod_c, kmod_text)
        elif config.pinned:
            _write_if_changed(dups_c, render_pinned(config.pinned / "dups.c.j2", apis))
            _write_if_changed(kmod_c, _read_pinned(config.pinned / "kmod.c"))
        else:
            _write_if_changed(dups_c, render_dups_c(config.variant, apis))
            _write_if_changed(kmod_c, rig_kmod_c(config.variant, apis))
        if progress:
            progress(f"building {binary} ({config.sanitizer})")
        cmd = ["make", "-C", str(src), f"-j{max(1, jobs)}", f"O={out}", f"VARIANT={config.name}",
               f"DUPS_C={dups_c}", f"KMOD_C={kmod_c}", f"DUPS_API={config.dups_api}", f"SANITIZER={config.sanitizer}", f"JIFFY_NS={config.jiffy_ns}",
               f"HZ={HZ}", f"CC={config.cc}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        log.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
        if proc.returncode:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise UserError(f"building the rig failed (log: {log}):\n{tail}")
        warnings_file = out / f"dups-{config.name}.warnings"
        warnings = warnings_file.read_text() if warnings_file.is_file() else ""
    return Build(config, binary, dups_c, warnings, log)


@dataclass(frozen=True)
class RunRequest:
    scenario: str = "stress"
    threads: int | None = None  # None: the scenario's default
    requests: int | None = None
    seed: int = 1
    serial: bool = False  # one task at a time, picked from the seed; virtual time
    extra_args: tuple[str, ...] = ()  # more driver options, e.g. ("--param=module.enable_dups_trace=1",)
    timeout_s: float | None = None  # None: rely on the driver's own hang watchdog
    progress_s: int = 5

    def argv(self, binary: Path) -> list[str]:
        if self.scenario not in SCENARIOS:
            raise UserError(f"unknown scenario {self.scenario!r}: choose one of {', '.join(SCENARIOS)}")
        argv = [str(binary), f"--scenario={self.scenario}", f"--seed={self.seed}",
                f"--progress={self.progress_s}"]
        if self.threads is not None:
            argv.append(f"--threads={self.threads}")
        if self.requests is not None:
            argv.append(f"--requests={self.requests}")
        if self.serial:
            argv.append("--serial")
        return argv + list(self.extra_args)


def _log_dir(build: Build, request: RunRequest, log_root: Path | None) -> Path:
    root = log_root if log_root is not None else build.binary.parent / "runs"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{build.config.name}-{request.scenario}-seed{request.seed}"
    for n in range(1000):
        path = root / (base if n == 0 else f"{base}.{n}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise UserError(f"cannot make a run log folder under {root}")


def run(build: Build, request: RunRequest, *, log_root: Path | None = None,
        progress: Progress | None = None) -> RigResult:
    """Runs one scenario; stdout and stderr go to files in the run's log
    folder, progress lines are passed on while it runs."""
    argv = request.argv(build.binary)
    logs = _log_dir(build, request, log_root)
    (logs / "command").write_text(" ".join(argv) + "\n")
    env = dict(os.environ, **SANITIZER_ENV)
    start = time.monotonic()
    timed_out = False
    with open(logs / "stdout", "w+") as out, open(logs / "stderr", "w+") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, stdin=subprocess.DEVNULL)
        seen = 0
        while proc.poll() is None:
            time.sleep(0.1)
            if progress:
                seen = _pass_progress(logs / "stdout", seen, progress)
            if request.timeout_s is not None and time.monotonic() - start > request.timeout_s:
                proc.kill()
                timed_out = True
                proc.wait()
        wall = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    result = rig_report.parse(argv, proc.returncode, wall, stdout, stderr,
                              timed_out=timed_out, log_dir=str(logs))
    if proc.returncode == 2 and not result.config:
        raise UserError(f"the rig refused its arguments: {stderr.strip() or 'exit status 2'}")
    return result


def _pass_progress(stdout: Path, seen: int, progress: Progress) -> int:
    with open(stdout) as handle:
        handle.seek(seen)
        chunk = handle.read()
    complete = chunk[:chunk.rfind("\n") + 1]
    for line in complete.splitlines():
        if line.startswith("RIG progress "):
            fields = rig_report.parse_fields(line[len("RIG progress "):])
            progress(f"  {fields.get('requests', '?')} requests after "
                     f"{float(fields.get('elapsed_ms', 'nan')) / 1000:.0f} s")
    return seen + len(complete.encode())


def list_scenarios(build: Build) -> dict[str, str]:
    """The driver's own scenario list: name -> focus check."""
    proc = subprocess.run([str(build.binary), "--list-scenarios"], capture_output=True, text=True,
                          env=dict(os.environ, **SANITIZER_ENV), check=True)
    scenarios = {}
    for line in proc.stdout.splitlines():
        fields = rig_report.parse_fields(line.removeprefix("RIG scenario "))
        scenarios[fields["name"]] = "" if fields["focus"] == "-" else fields["focus"]
    return scenarios


def summarize(result: RigResult, build: Build | None = None) -> list[str]:
    """Human-readable lines: the measured numbers, then what failed and why."""
    cfg, st = result.config, result.stats
    lines = [f"rig-{cfg.get('variant', '?')}: sanitizer={cfg.get('sanitizer', '?')} "
             f"scenario={cfg.get('scenario', '?')} seed={cfg.get('seed', '?')} "
             f"linger={cfg.get('linger_ms', '?')} ms  log: {result.log_dir}"]
    if st:
        clock = (f"virtual {st.get('wall_ms', 0) / 1000:.2f} s (serial, {int(st.get('switches', 0))} switches, "
                 f"real {result.wall_s:.2f} s)" if st.get("serial") else
                 f"wall {st.get('wall_ms', 0) / 1000:.2f} s  ({st.get('req_per_s', 0):.0f} requests/s)")
        lines.append(f"  requests {int(st.get('requests', 0))}  threads {int(st.get('threads', 0))}  {clock}")
        lines.append(f"  first {int(st.get('first', 0))}  duplicates {int(st.get('dup_wait', 0))} "
                     f"waiting + {int(st.get('dup_nowait', 0))} nowait + {int(st.get('dup_fallback', 0))} "
                     f"fell back to modprobe  nowait {int(st.get('nowait', 0))}  "
                     f"untracked (no memory) {int(st.get('untracked', 0))}  killed {int(st.get('killed', 0))}  "
                     f"reload cycles {int(st.get('reload_cycles', 0))}")
        lines.append(f"  modprobe runs {int(st.get('modprobe', 0))}  finit_module {int(st.get('finit', 0))}  "
                     f"rmmod {int(st.get('rmmod', 0))}  duplicate warnings {int(st.get('warnings', 0))}")
    elif result.completed is False:
        lines.append(f"  the run ended before its summary (exit status {result.returncode})")
    for name in result.failed_checks:
        check = result.checks.get(name)
        failures = f" ({check.failures} times)" if check and check.status == "fail" else ""
        lines.append(f"  FAILED {name}{failures}")
        for msg in result.details(name)[:3]:
            lines.append(f"      {msg}")
    reports = result.sanitizer_reports
    if reports:
        lines.append(f"  {len(reports)} sanitizer report(s) on stderr:")
        kinds: dict[str, int] = {}
        for report in reports:
            kinds[f"{report.short()} [{report.category}]"] = kinds.get(
                f"{report.short()} [{report.category}]", 0) + 1
        for text, times in sorted(kinds.items(), key=lambda kv: -kv[1])[:6]:
            lines.append(f"      {times} x {text}")
    if result.rig_bugs:
        lines.append(f"  {len(result.rig_bugs)} bug(s) the rig's debug checks caught:")
        for bug in result.rig_bugs[:3]:
            lines.append(f"      {bug}")
    if not result.failed_checks:
        lines.append(f"  all {len(result.checks)} checks passed")
    if build is not None and build.warnings.strip():
        lines.append(f"  compiler warnings in dups.c: {build.dups_c.with_suffix('.warnings')}")
    return lines


def known_checks() -> Sequence[str]:
    """The driver's checks and the ones the sanitizer reports add."""
    return ("uaf", "dup-value", "reload", "nomem", "early", "kill", "warn", "leak", "lockdep",
            "model", "hang", "sanitizer", "slots", "spelling", "nowait-lost", "race", "crash", "undefined")
