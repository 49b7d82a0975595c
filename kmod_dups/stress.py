"""`kmod-dups stress`: debug-kernel storms for one variant of dups.c.

Build (or reuse) the debug kernel ``boot dups debug`` for the variant,
boot it with N vCPUs, run the chosen ``debugstorm`` scenarios in the guest,
then judge each one twice: were its results correct (``debugstorm``), and
what did the kernel report while it ran (KASAN, lockdep, debug objects,
refcount, WARN, BUG...: ``qemu.console.classify`` on the scenario's part of
the console).  The hardened variant is clean when every scenario is correct
with zero reports; the as-posted variant is expected to fail some, and the
report says which defect each failure shows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kmod_dups import atomic, debugstorm, kmods
from kmod_dups.guest import storm as guest_storm
from kmod_dups.errors import UserError
from kmod_dups.guest.session import run_script
from kmod_dups.guest.storm import GuestPaths
from kmod_dups.qemu import console as consolemod

DEBUG_CONFIGS = ["boot", "dups", "debug"]
# What a debug kernel must have for "zero reports" to mean anything.
REQUIRED = ("CONFIG_KASAN", "CONFIG_PROVE_LOCKING", "CONFIG_DEBUG_ATOMIC_SLEEP", "CONFIG_DEBUG_OBJECTS_WORK",
            "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS")
FAILSLAB_REQUIRED = ("CONFIG_FAILSLAB", "CONFIG_FAULT_INJECTION_DEBUG_FS")
# A big log buffer, so the in-guest reads of dmesg since a marker still see
# it after thousands of "duplicate request" lines; every KASAN report, not
# only the first.  And the longest soft-lockup threshold (2 x 60 s): under
# TCG a KASAN kernel with 128 vCPUs spends more than the default 20 s on
# one CPU in ACPI's table load at boot, measured, and reported a soft lockup
# of the emulator, not of the kernel.
KERNEL_ARGS = ("log_buf_len=16M", "kasan_multi_shot", "watchdog_thresh=60")

@dataclass
class ScenarioReport:
    name: str
    correct: bool
    requests: int
    max_threads: int
    reports: list[dict[str, object]]
    detail: str
    problems: list[str] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)
    defects: list[str] = field(default_factory=list)  # debugstorm.DEFECTS keys shown

    @property
    def clean(self) -> bool:
        return self.correct and not self.reports


@dataclass
class StressReport:
    variant: str
    linger_ms: int | None
    build: str
    cpus: int
    online: str
    guest: str
    result: str  # the boot harness's result
    boot_seconds: float | None
    seconds: float
    ended: bool  # the guest script ran to its end
    scenarios: list[ScenarioReport] = field(default_factory=list)
    boot_reports: list[dict[str, object]] = field(default_factory=list)
    other_reports: list[dict[str, object]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why the run as a whole proves nothing
    sizes: dict[str, object] = field(default_factory=dict)  # debugstorm.Sizes, for kmod-dups report

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.scenarios)

    @property
    def reports(self) -> int:
        return (sum(len(s.reports) for s in self.scenarios) + len(self.boot_reports)
                + len(self.other_reports))

    @property
    def clean(self) -> bool:
        return self.ended and not self.problems and bool(self.scenarios) \
            and all(s.clean for s in self.scenarios) and not self.boot_reports and not self.other_reports

    @property
    def defects(self) -> dict[str, list[str]]:
        """Each defect shown -> the scenarios that showed it."""
        shown: dict[str, list[str]] = {}
        for s in self.scenarios:
            for key in s.defects:
                shown.setdefault(key, []).append(s.name)
        return {key: shown[key] for key in debugstorm.DEFECTS if key in shown}


def build_record(build: Path) -> dict:
    from kmod_dups.build import pipeline

    record = pipeline.read_record(build)
    if not record.get("variant"):
        raise UserError(f"{build} has no build.json naming its variant; make it with "
                        "kmod-dups build --config boot dups debug [--variant as-posted]")
    return record


def check_debug_kernel(build: Path, names: Sequence[str]) -> dict[str, str]:
    kb = kmods.open_build(build)
    missing = [o for o in REQUIRED if kb.config.get(o) != "y"]
    if any(debugstorm.SCENARIOS[n].failslab for n in names):
        missing += [o for o in FAILSLAB_REQUIRED if kb.config.get(o) != "y"]
    if missing:
        raise UserError(f"{build} is not a debug kernel with the feature: {', '.join(missing)} not set; "
                        "build one with kmod-dups build --config boot dups debug")
    return kb.config


def findings(text: str, dups_sites: Collection[int] | None = None) -> list[dict[str, object]]:
    return [f.as_dict() for f in consolemod.classify(text, dups_sites).findings]


def run_problems(result: str, console: str | None) -> list[str]:
    """Why a stress run as a whole proves nothing, whatever its scenarios say."""
    problems = []
    if console is None:
        problems.append("the guest's console.log cannot be read: no kernel report could be looked for")
    elif "Linux version" not in console:
        problems.append("the guest's console.log holds no kernel log: no kernel report could be looked for")
    if result != "ok":
        problems.append(f"the guest ended as {result!r}, not ok")
    return problems


def dups_sites(build: Path) -> frozenset[int] | None:
    """Where the build's dups.c raises its warning, from the work tree it was
    built from (None when that tree is gone)."""
    from kmod_dups.build import pipeline

    tree = pipeline.read_record(build).get("worktree")
    try:
        return consolemod.warning_sites((Path(tree) / "kernel/module/dups.c").read_text()) if tree else None
    except OSError:
        return None


def judge(output: str, console: str, ctx: debugstorm.Context, names: Sequence[str],
          dups_sites: Collection[int] | None = None,
          ) -> tuple[guest_storm.GuestOutput, list[ScenarioReport], list[dict], list[dict]]:
    """The guest's output and console -> one report per scenario, plus the
    reports made during boot and outside any scenario.  *dups_sites*: the
    lines of the dups WARN() in the kernel's dups.c (``console.classify``)."""
    out = guest_storm.parse_output(output)
    sections = debugstorm.split_console(console)
    verdicts = debugstorm.evaluate(out, ctx, names, sections)
    reports = []
    for verdict in verdicts:
        found = findings(sections.get(verdict.scenario, ""), dups_sites)
        problems = list(verdict.problems)
        if verdict.scenario not in sections and out.record("scenario", verdict.scenario):
            # It ran, but what the kernel said meanwhile cannot be read.
            problems.append(f"its marker ({debugstorm.SCENARIO_MARK}{verdict.scenario}) is not in the console, "
                            "so its kernel reports cannot be read")
        reports.append(ScenarioReport(verdict.scenario, verdict.correct and not problems, verdict.requests,
                                      verdict.max_threads, found, verdict.detail, problems, verdict.figures,
                                      debugstorm.defects_shown(problems, found)))
    boot = findings(sections.get("boot", ""), dups_sites)
    other = [f for name, text in sections.items() if name not in names and name != "boot"
             for f in findings(text, dups_sites)]
    return out, reports, boot, other


def check(build: Path, cpus: int, names: Sequence[str], sizes: debugstorm.Sizes
          ) -> tuple[debugstorm.Context, list[str]]:
    """Everything that can be refused before a guest starts: the scenarios
    for this many vCPUs, and the build (a kmod-dups debug kernel)."""
    try:
        names = debugstorm.check_scenarios(names, cpus)
    except ValueError as err:
        raise UserError(str(err)) from None
    record = build_record(build)
    check_debug_kernel(build, names)
    ctx = debugstorm.Context(cpus=cpus, variant=record["variant"], linger_ms=record.get("linger_ms"),
                             sizes=sizes)
    return ctx, names


def run_stress(build: Path, cpus: int, names: Sequence[str], sizes: debugstorm.Sizes, runs: Path,
               say: Callable[[str], None], *, timeout: float | None = None,
               memory: str | None = None) -> StressReport:
    ctx, names = check(build, cpus, names, sizes)
    variant, linger = ctx.variant, ctx.linger_ms
    say(f"building the test modules against {build} (once per build)")
    root = kmods.prepare(build)
    paths = GuestPaths(root=str(root.root), release=root.release)
    script = debugstorm.render(paths, ctx, names)
    say(f"booting {cpus} vCPUs ({variant}{'' if linger is None else f', linger {linger} ms'}); "
        f"scenarios: {', '.join(names)}")
    t0 = time.monotonic()
    append = [*KERNEL_ARGS, *debugstorm.kernel_args(ctx, names)]
    guest = run_script(build, cpus, script, runs, name=f"stress-{variant}", append=append,
                       timeout=timeout, memory=memory or f"{1024 + 8 * cpus}M")
    seconds = round(time.monotonic() - t0, 1)
    out, scenarios, boot, other = judge(guest.output, guest.console or "", ctx, names, dups_sites(build))
    return StressReport(variant=variant, linger_ms=linger, build=str(build), cpus=cpus,
                        online=out.setup.get("online", "?"), guest=str(guest.folder), result=guest.result,
                        boot_seconds=guest.boot_seconds, seconds=seconds, ended=out.ended,
                        scenarios=scenarios, boot_reports=boot, other_reports=other,
                        problems=run_problems(guest.result, guest.console), sizes=asdict(sizes))


def _report_line(f: dict[str, object]) -> str:
    return f"{f['kind']}: {str(f['text'])[:70]}"


def table(report: StressReport) -> str:
    """What the run showed, 80 columns."""
    lines = [f"{'SCENARIO':<13} {'REQS':>6} {'THR':>4} {'CORRECT':<7} {'REPORTS':>7}  FIRST REPORT / PROBLEM"]
    for s in report.scenarios:
        first = _report_line(s.reports[0]) if s.reports else (s.problems[0] if s.problems else "")
        lines.append(f"{s.name:<13} {s.requests:>6} {s.max_threads:>4} {'yes' if s.correct else 'NO':<7} "
                     f"{len(s.reports):>7}  {first}"[:80])
    for label, found in (("boot", report.boot_reports), ("elsewhere", report.other_reports)):
        if found:
            lines.append(f"{label:<13} {'':>6} {'':>4} {'':<7} {len(found):>7}  {_report_line(found[0])}"[:80])
    linger = "" if report.linger_ms is None else f", linger {report.linger_ms} ms"
    lines.append(f"{report.variant}{linger}: {report.requests} requests, {report.cpus} vCPUs "
                 f"({report.online} online)")
    lines.append(f"{report.reports} kernel reports; guest {report.result}, {report.seconds:.0f} s")
    lines += [f"not clean: {p}" for p in report.problems]
    return "\n".join(line[:80] for line in lines)


def details(report: StressReport) -> str:
    """Every problem, report and figure, one scenario after the other."""
    out = [f"[run] {p}" for p in report.problems]
    for s in report.scenarios:
        out.append(f"[{s.name}] {s.detail}")
        out += [f"  problem: {p}" for p in s.problems]
        out += [f"  report: {_report_line(f)} (console line {f['line']})" for f in s.reports]
    for f in report.boot_reports + report.other_reports:
        out.append(f"[outside the scenarios] {_report_line(f)} (console line {f['line']})")
    for key, names in report.defects.items():
        out.append(f"defect shown ({key}, in {', '.join(names)}): {debugstorm.DEFECTS[key]}")
    return "\n".join(out)


def report_data(report: StressReport) -> dict:
    data = asdict(report)
    data.update(requests=report.requests, reports=report.reports, clean=report.clean, defects=report.defects)
    return data


def write_report(folder: Path, report: StressReport) -> None:
    data = report_data(report)
    atomic.write_text(folder / "report.json", json.dumps(data, indent=2, default=str) + "\n")
    atomic.write_text(folder / "report.txt", table(report) + "\n\n" + details(report) + "\n")
