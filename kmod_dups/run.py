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

from kmod_dups import guest_storm, kmods
from kmod_dups.dupstrace import ModuleCounts, human_bytes
from kmod_dups.errors import UserError
from kmod_dups.guest_run import GuestRun, run_script
from kmod_dups.guest_storm import GuestPaths, Storm, StormRun

FEATURE_CONFIGS = ["boot", "bcc", "test_kmod", "dups"]
CONTROL_CONFIGS = ["boot", "bcc", "test_kmod", "nodups"]
REAL_MODULE = "test_module"  # lib/test_module.c: what the kernel's test_kmod requests

TRACE_READY_S = 900  # BCC compiles its program in the guest: slow under TCG


@dataclass(frozen=True)
class Target:
    """A module name the storm asks for, and what one load of it costs."""

    storm_id: str
    name: str
    finit_expected: int  # finit_module() calls for one load: 0 for a missing module
    judged: bool = True  # part of the verdict (a real module's load is too quick to promise a window)


TARGETS = [
    Target("delayed", kmods.TARGET, 1),
    Target("failing", kmods.FAIL, 1),
    Target("missing", kmods.NONEXISTENT, 0),
    Target("real", REAL_MODULE, 1, judged=False),
]


@dataclass
class Outcome:
    """One module on one kernel: what the callers got and what it cost."""

    module: str
    kernel: str  # "dups" or "control"
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


TRACE_FUNCTIONS = f"""
# dupstrace, the BCC tool, in the background for the whole session.
kds_trace_start() {{
	{sys.executable} -m kmod_dups.dupstrace -j > "$KDS_WORK/trace.json" 2> "$KDS_WORK/trace.err" &
	kds_trace_pid=$!
	kds_n=0
	until grep -qs '^Tracing' "$KDS_WORK/trace.err"; do
		if ! kill -0 "$kds_trace_pid" 2>/dev/null || [ "$kds_n" -ge {TRACE_READY_S * 10} ]; then
			sed 's/^/KDS tracer-error /' "$KDS_WORK/trace.err"
			kds_die "reason=tracer"
		fi
		sleep 0.1
		kds_n=$((kds_n + 1))
	done
	kds "tracer ready=$((kds_n / 10))s"
}}

kds_trace_stop() {{
	kds_settle
	# SIGTERM: a background job of a script ignores SIGINT.
	kill -TERM "$kds_trace_pid"
	wait "$kds_trace_pid"
	kds "tracer rc=$?"
	grep -v '^Tracing' "$KDS_WORK/trace.err" | sed 's/^/KDS tracer-error /'
	sed 's/^/KDS tracejson /' "$KDS_WORK/trace.json"
}}
"""


def guest_script(paths: GuestPaths, targets: list[Target]) -> str:
    storms = [Storm(id=t.storm_id, name=t.name, mode="wait") for t in targets]
    body = ["kds_setup", "kds_trace_start"]
    for storm in storms:
        body += guest_storm.storm_lines(storm)
    body += ["kds_trace_stop"] + [f"kds_unload {t.name}" for t in targets if t.finit_expected]
    body.append("kds_teardown")
    return guest_storm.preamble(paths) + TRACE_FUNCTIONS + "\n" + "\n".join(body) + "\n"


def parse_trace(output: str) -> dict:
    lines = [line.split("KDS tracejson ", 1)[1] for line in output.splitlines() if "KDS tracejson " in line]
    if not lines:
        return {}
    try:
        return json.loads("\n".join(lines))
    except ValueError:
        return {}


def judge(target: Target, kernel: str, storm: StormRun | None, counts: ModuleCounts | None) -> Outcome:
    results = storm.results if storm else []
    rets: dict[int, int] = {}
    for call in results:
        rets[call.ret] = rets.get(call.ret, 0) + 1
    reasons = []
    if not results:
        reasons.append("no storm results")
    if counts is None:
        reasons.append("the tracer saw no request")
    else:
        if counts.requests != len(results):
            reasons.append(f"{counts.requests} requests traced for {len(results)} callers")
        if counts.launches != 1:
            reasons.append(f"{counts.launches} modprobe launches")
        if counts.finit != target.finit_expected:
            reasons.append(f"{counts.finit} finit_module() calls")
    if len(rets) > 1:
        reasons.append("callers got different results: " + ", ".join(f"{r}x{n}" for r, n in sorted(rets.items())))
    converged = not reasons
    return Outcome(module=target.name, kernel=kernel, callers=len(results), rets=rets, counts=counts,
                   judged=target.judged, converged=converged,
                   why="N requests, one modprobe, one result" if converged else "; ".join(reasons))


def run_kernel(kernel: str, build: Path, cpus: int, runs: Path, targets: list[Target],
               say) -> KernelRun:  # noqa: ANN001 - a print-like callable
    root = kmods.prepare(build)
    paths = GuestPaths(root=str(root.root), release=root.release)
    say(f"[{kernel}] booting {cpus} vCPUs, storming {', '.join(t.name for t in targets)} under dupstrace")
    guest: GuestRun = run_script(build, cpus, guest_script(paths, targets), runs, name=kernel)
    out = guest_storm.parse_output(guest.output)
    trace = parse_trace(guest.output)
    counts = {m["module"]: ModuleCounts(**m) for m in trace.get("modules", [])}
    result = guest.result.get("result", "no-result")
    timings = guest.result.get("timings", {}) if isinstance(guest.result.get("timings"), dict) else {}
    run = KernelRun(kernel=kernel, build=str(build), cpus=cpus, online=out.setup.get("online", "?"),
                    guest=str(guest.folder), result=result, boot_seconds=timings.get("guest_up"),
                    untraced=trace.get("untraced", []), vmalloc_start_kb=trace.get("vmalloc_start_kb"),
                    vmalloc_peak_kb=trace.get("vmalloc_peak_kb"))
    if out.fatal:
        raise UserError(f"[{kernel}] the guest script stopped: {out.fatal}; see {guest.folder}/output.log")
    if not guest.ok or not out.ended:
        raise UserError(f"[{kernel}] the guest run ended as {result!r} before the storms finished; "
                        f"see {guest.folder}")
    for target in targets:
        run.outcomes.append(judge(target, kernel, out.storms.get(target.storm_id), counts.get(target.name)))
    return run


def table(runs: list[KernelRun]) -> str:
    """The verdict, 80 columns: each module on the feature-on kernel, the
    control's numbers beside it.  CONV: yes, NO, or ctl for the control."""
    lines = [f"{'MODULE':<21} {'KERNEL':<7} {'N':>3} {'REQ':>4} {'DUPS':>4} {'EXEC':>4} {'FINIT':>5} "
             f"{'FAIL':>4} {'WASTE':>6} {'RET':>4} CONV"]
    by_module: dict[str, list[Outcome]] = {}
    for run in runs:
        for outcome in run.outcomes:
            by_module.setdefault(outcome.module, []).append(outcome)
    for module, outcomes in by_module.items():
        for o in outcomes:
            c = o.counts
            ret = str(next(iter(o.rets))) if len(o.rets) == 1 else ("mix" if o.rets else "-")
            if o.kernel != "dups":
                verdict = "ctl"
            elif o.judged:
                verdict = "yes" if o.converged else "NO"
            else:
                verdict = "(yes)" if o.converged else "(no)"
            cells = [c.requests, c.dups if o.kernel == "dups" else "-", c.launches, c.finit, c.finit_failed,
                     human_bytes(c.wasted_bytes)] if c else ["-"] * 6
            lines.append(f"{module[:21]:<21} {o.kernel:<7} {o.callers:>3} {cells[0]:>4} {cells[1]:>4} "
                         f"{cells[2]:>4} {cells[3]:>5} {cells[4]:>4} {cells[5]:>6} {ret[:4]:>4} {verdict}")
    for run in runs:
        if run.vmalloc_peak_kb is not None and run.vmalloc_start_kb is not None:
            lines.append(f"{run.kernel}: {run.cpus} vCPUs ({run.online} online), boot "
                         f"{run.boot_seconds if run.boot_seconds is not None else '?'} s, VmallocUsed peak "
                         f"+{run.vmalloc_peak_kb - run.vmalloc_start_kb} kB")
    return "\n".join(line[:80] for line in lines)


def verdict_ok(runs: list[KernelRun]) -> bool:
    feature = [o for r in runs if r.kernel == "dups" for o in r.outcomes if o.judged]
    return bool(feature) and all(o.converged for o in feature)


def write_report(folder: Path, runs: list[KernelRun]) -> None:
    data = {"converged": verdict_ok(runs), "kernels": [asdict(r) for r in runs]}
    (folder / "report.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (folder / "report.txt").write_text(table(runs) + "\n")
