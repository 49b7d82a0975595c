"""`kmod-dups run`, the main job: build the feature-on and the control
kernels, boot each with N vCPUs, storm module requests under the dupstrace
tracer, and give a verdict per module.

A module's requests *converged* when N concurrent waited requests cost one
modprobe launch and one finit_module() (none for a name no module has), and
every caller got the same result as the first (an error too).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kmod_dups import atomic, kmods
from kmod_dups.guest import storm as guest_storm
from kmod_dups.dupstrace import ModuleCounts, Session, human_bytes
from kmod_dups.errors import UserError
from kmod_dups.guest.session import GuestRun, run_script
from kmod_dups.guest.storm import GuestPaths, Storm, StormRun
from kmod_dups.kernel_abi import MODPROBE_FAILED

FEATURE_CONFIGS = ["boot", "bcc", "test_kmod", "dups"]
CONTROL_CONFIGS = ["boot", "bcc", "test_kmod", "nodups"]
REAL_MODULE = "test_module"  # lib/test_module.c: what the kernel's test_kmod requests

TRACE_READY_S = 900  # BCC compiles its program in the guest: slow under TCG


@dataclass(frozen=True)
class Target:
    """A module name the storm asks for, what one load of it costs and what
    every caller must get."""

    storm_id: str
    name: str
    finit_expected: int  # finit_module() calls for one load: 0 for a missing module
    ret_expected: int  # 0 for a module that loads, modprobe's failure status otherwise
    judged: bool = True  # part of the verdict (a real module's load is too quick to promise a window)


TARGETS = [
    Target("delayed", kmods.TARGET, 1, 0),
    Target("failing", kmods.FAIL, 1, MODPROBE_FAILED),
    Target("missing", kmods.NONEXISTENT, 0, MODPROBE_FAILED),
    Target("real", REAL_MODULE, 1, 0, judged=False),
]
MIN_CPUS = 2  # one first request and at least one duplicate


@dataclass
class Outcome:
    """One module on one kernel: what the callers got and what it cost."""

    module: str
    kernel: str  # "dups", "control", or "upstream" (a tree's own dups.c)
    callers: int
    rets: dict[int, int]  # return value -> callers that got it
    counts: ModuleCounts | None  # from dupstrace
    judged: bool
    converged: bool
    why: str


@dataclass
class KernelRun:
    kernel: str
    build: str
    cpus: int
    online: str
    guest: str  # the boot harness's run folder
    result: str  # the harness's result (ok, panic, timeout, ...)
    boot_seconds: float | None
    outcomes: list[Outcome] = field(default_factory=list)
    untraced: list[str] = field(default_factory=list)
    vmalloc_start_kb: int | None = None
    vmalloc_peak_kb: int | None = None
    missed: dict[str, int] = field(default_factory=dict)  # probe -> hits dupstrace lost




def guest_script(paths: GuestPaths, targets: list[Target]) -> str:
    storms = [Storm(id=t.storm_id, name=t.name, mode="wait") for t in targets]
    return traced_script(paths, storms, [t.name for t in targets if t.finit_expected])


def traced_script(paths: GuestPaths, storms: list[Storm], unload: list[str], trace_args: str = "") -> str:
    """A guest script running *storms* under dupstrace, then unloading
    *unload*."""
    body = ["kds_setup", "kds_trace_start"]
    for storm in storms:
        body += guest_storm.storm_lines(storm)
    body += ["kds_trace_stop"] + [f"kds_unload {name}" for name in unload]
    body.append("kds_teardown")
    trace = {"KDS_PYTHON": sys.executable, "KDS_TRACE_TICKS": TRACE_READY_S * 10, "KDS_TRACE_ARGS": trace_args}
    return guest_storm.preamble(paths, variables_=trace, libraries=["trace"]) + "\n" + "\n".join(body) + "\n"


def trace_lines(output: str) -> list[str]:
    """What dupstrace printed on stdout in the guest."""
    return [line.split("KDS tracejson ", 1)[1] for line in output.splitlines() if "KDS tracejson " in line]


def parse_trace(output: str) -> Session | None:
    """dupstrace's JSON document: its last line (timeline lines come first);
    None when there is none that reads."""
    documents = [line for line in trace_lines(output) if line.startswith("{")]
    if not documents:
        return None
    try:
        return Session.from_json(documents[-1])
    except ValueError:
        return None


def judge(target: Target, kernel: str, storm: StormRun | None, counts: ModuleCounts | None) -> Outcome:
    """One module on one kernel.  On the feature-on kernel, converged means:
    N callers, N requests traced, N-1 of them reported by the kernel as
    duplicates, one modprobe launch, the finit_module() calls of one load,
    and every caller got the expected result.  On the control kernel the
    same storm must show more than one launch (else it opened no window and
    the feature's numbers prove nothing); ``converged`` is then False."""
    results = storm.results if storm else []
    rets: dict[int, int] = {}
    for call in results:
        rets[call.ret] = rets.get(call.ret, 0) + 1
    n = len(results)
    reasons = []
    if not results:
        reasons.append("no storm results")
    elif n < MIN_CPUS:
        reasons.append(f"{n} caller: a storm needs at least {MIN_CPUS}")
    if counts is None:
        reasons.append("the tracer saw no request")
    else:
        if counts.requests != n:
            reasons.append(f"{counts.requests} requests traced for {n} callers")
        if kernel in ("dups", "upstream") and counts.dups != n - 1:
            reasons.append(f"{counts.dups} duplicates reported by the kernel for {n} callers")
        if counts.launches != 1:
            reasons.append(f"{counts.launches} modprobe launches")
        if counts.finit != target.finit_expected:
            reasons.append(f"{counts.finit} finit_module() calls")
    if len(rets) > 1:
        reasons.append("callers got different results: " + ", ".join(f"{r}x{c}" for r, c in sorted(rets.items())))
    elif rets and next(iter(rets)) != target.ret_expected:
        reasons.append(f"callers got {next(iter(rets))}, expected {target.ret_expected}")
    converged = not reasons
    return Outcome(module=target.name, kernel=kernel, callers=n, rets=rets, counts=counts,
                   judged=target.judged, converged=converged,
                   why="N requests, one modprobe, one result" if converged else "; ".join(reasons))


@dataclass(frozen=True)
class Verdict:
    """The main job's answer, with every reason it is not a yes."""

    ok: bool
    problems: list[str]
    notes: list[str]

    def lines(self) -> list[str]:
        head = ("duplicates converge with the feature on" if self.ok
                else "duplicates DO NOT converge with the feature on, or nothing shows they would not without it")
        return [f"verdict: {head}"] + [f"  {p}" for p in self.problems] + [f"  note: {n}" for n in self.notes]


def verdict(runs: list[KernelRun]) -> Verdict:
    """Converged on the feature-on kernel, for every judged module, and the
    control kernel shows the same storms cost more than one launch."""
    problems: list[str] = []
    notes: list[str] = []
    by_kernel = {r.kernel: r for r in runs}
    feature = by_kernel.get("dups")
    if feature is None:
        return Verdict(False, ["the feature-on kernel did not run"], [])
    judged = [o for o in feature.outcomes if o.judged]
    if not judged:
        problems.append("no module was judged on the feature-on kernel")
    problems += [f"{o.module}: {o.why}" for o in judged if not o.converged]
    control = by_kernel.get("control")
    if control is None:
        notes.append("no control kernel (--no-control): nothing was compared, so nothing shows the storms "
                     "opened a window for duplicates")
    else:
        seen = {o.module: o for o in control.outcomes}
        for o in judged:
            c = seen.get(o.module)
            launches = c.counts.launches if c and c.counts else None
            if launches is None:
                problems.append(f"{o.module}: the control kernel has no traced launches to compare with")
            elif launches <= 1:
                problems.append(f"{o.module}: the storm opened no window: the control kernel too ran "
                                f"{launches} modprobe for {c.callers} callers")
    upstream = by_kernel.get("upstream")
    if upstream is not None:
        # the tree's own dups.c: shown beside the fix-up series, not judged
        odd = [f"{o.module}: {o.why}" for o in upstream.outcomes if o.judged and not o.converged]
        notes.append("upstream (the tree's own dups.c): " + ("; ".join(odd) if odd else
                     "every judged module converged in these storms too"))
    for run in runs:
        if run.missed:
            problems.append(f"{run.kernel}: dupstrace lost hits ("
                            + ", ".join(f"{n} of {probe}" for probe, n in sorted(run.missed.items()))
                            + "), so its counts are low")
        if run.untraced:
            notes.append(f"{run.kernel}: not traced: {'; '.join(run.untraced)}")
    return Verdict(not problems, problems, notes)


def run_kernel(kernel: str, build: Path, cpus: int, runs: Path, targets: list[Target],
               say) -> KernelRun:  # noqa: ANN001 - a print-like callable
    root = kmods.prepare(build)
    paths = GuestPaths(root=str(root.root), release=root.release)
    say(f"[{kernel}] booting {cpus} vCPUs, storming {', '.join(t.name for t in targets)} under dupstrace")
    guest: GuestRun = run_script(build, cpus, guest_script(paths, targets), runs, name=kernel)
    return read_kernel_run(kernel, build, cpus, guest.folder, guest.result, guest.boot_seconds, guest.output,
                           targets)


def read_kernel_run(kernel: str, build: Path, cpus: int, folder: Path, result: str, boot_seconds: float | None,
                    output: str, targets: list[Target]) -> KernelRun:
    """A guest's output -> the kernel's outcomes.  ``kmod-dups report`` calls
    it again on a saved run."""
    out = guest_storm.parse_output(output)
    trace = parse_trace(output)
    counts = {m.module: m for m in trace.modules} if trace else {}
    run = KernelRun(kernel=kernel, build=str(build), cpus=cpus, online=out.setup.get("online", "?"),
                    guest=str(folder), result=result, boot_seconds=boot_seconds,
                    untraced=trace.untraced if trace else [],
                    vmalloc_start_kb=trace.vmalloc_start_kb if trace else None,
                    vmalloc_peak_kb=trace.vmalloc_peak_kb if trace else None,
                    missed=trace.missed if trace else {})
    if out.fatal:
        raise UserError(f"[{kernel}] {out.fatal_sentence()}; see {folder}/output.log")
    if result != "ok" or not out.ended:
        raise UserError(f"[{kernel}] the guest run ended as {result!r} before the storms finished; "
                        f"see {folder}")
    for target in targets:
        run.outcomes.append(judge(target, kernel, out.storms.get(target.storm_id), counts.get(target.name)))
    return run


def table(runs: list[KernelRun]) -> str:
    """The verdict, 80 columns: each module on the feature-on kernel, the
    control's numbers beside it.  CONV: yes, NO, or ctl for the control;
    a tree's own dups.c (upstream) yes or no, shown but not judged."""
    lines = [f"{'MODULE':<21} {'KERNEL':<8} {'N':>3} {'REQ':>4} {'DUPS':>4} {'EXEC':>4} {'FINIT':>5} "
             f"{'FAIL':>4} {'WASTE':>6} {'RET':>4} CONV"]
    by_module: dict[str, list[Outcome]] = {}
    for run in runs:
        for outcome in run.outcomes:
            by_module.setdefault(outcome.module, []).append(outcome)
    for module, outcomes in by_module.items():
        for o in outcomes:
            c = o.counts
            ret = str(next(iter(o.rets))) if len(o.rets) == 1 else ("mix" if o.rets else "-")
            if o.kernel == "upstream":  # shown, not judged: lower case
                verdict = "yes" if o.converged else "no"
            elif o.kernel != "dups":
                verdict = "ctl"
            elif o.judged:
                verdict = "yes" if o.converged else "NO"
            else:
                verdict = "(yes)" if o.converged else "(no)"
            cells = [c.requests, c.dups if o.kernel in ("dups", "upstream") else "-", c.launches, c.finit, c.finit_failed,
                     human_bytes(c.dup_held_bytes)] if c else ["-"] * 6
            lines.append(f"{module[:21]:<21} {o.kernel:<8} {o.callers:>3} {cells[0]:>4} {cells[1]:>4} "
                         f"{cells[2]:>4} {cells[3]:>5} {cells[4]:>4} {cells[5]:>6} {ret[:4]:>4} {verdict}")
    for run in runs:
        if run.vmalloc_peak_kb is not None and run.vmalloc_start_kb is not None:
            lines.append(f"{run.kernel}: {run.cpus} vCPUs ({run.online} online), boot "
                         f"{run.boot_seconds if run.boot_seconds is not None else '?'} s, VmallocUsed peak "
                         f"+{run.vmalloc_peak_kb - run.vmalloc_start_kb} kB")
    return "\n".join(line[:80] for line in lines)


def verdict_ok(runs: list[KernelRun]) -> bool:
    return verdict(runs).ok


@dataclass
class RunReport:
    """One run of the main job: its kernels, and the verdict on them.  It
    renders as the 80-column table, as JSON, and as the run folder's
    report.txt and report.json (written atomically)."""

    runs: list[KernelRun]

    @property
    def verdict(self) -> Verdict:
        return verdict(self.runs)

    def text(self) -> str:
        return table(self.runs) + "\n" + "\n".join(self.verdict.lines())

    def data(self) -> dict:
        return report_data(self.runs)

    def write(self, folder: Path) -> None:
        write_report(folder, self.runs)


def report_data(runs: list[KernelRun]) -> dict:
    """The run as JSON-ready data: the verdict and each kernel's outcomes."""
    answer = verdict(runs)
    return {"converged": answer.ok, "problems": answer.problems, "notes": answer.notes,
            "kernels": [asdict(r) for r in runs]}


def write_report(folder: Path, runs: list[KernelRun]) -> None:
    report = RunReport(runs)
    atomic.write_text(folder / "report.json", json.dumps(report.data(), indent=2, default=str) + "\n")
    atomic.write_text(folder / "report.txt", report.text() + "\n")
