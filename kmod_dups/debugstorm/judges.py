"""The scenarios' judges: each turns the guest's KDS lines (and its part of
the console) into a Verdict whose problems are tagged with the defect they
show."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kmod_dups.guest import storm as guest_storm
from kmod_dups.guest.storm import FAIL, CallRecord, GuestOutput, StormRun
from kmod_dups.kernel_abi import ERESTARTSYS, ETIME, MODPROBE_FAILED
from kmod_dups.debugstorm.context import (
    Context, DEFECTS, DUPS_FUNCTION, KILLED_FIRST_LAUNCHES, LATE_WAITER_HELD_MS,
    NOWAIT_RACE_DELAY_MS, STACKS_ID,
)

class Problem(str):
    """What a judge found wrong: its sentence, and the DEFECTS keys it shows
    (none for a problem that only says the run proves nothing).  A str, so
    reports render and compare it as its sentence."""

    defects: frozenset[str]

    def __new__(cls, text: str, *defects: str) -> Problem:
        unknown = set(defects) - set(DEFECTS)
        if unknown:
            raise ValueError(f"unknown defect(s) {sorted(unknown)}")
        problem = super().__new__(cls, text)
        problem.defects = frozenset(defects)
        return problem


@dataclass
class Verdict:
    scenario: str
    correct: bool
    requests: int
    max_threads: int
    detail: str
    problems: list[str] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)


def _rets(results: Sequence[guest_storm.CallResult]) -> str:
    counts: dict[int, int] = {}
    for r in results:
        counts[r.ret] = counts.get(r.ret, 0) + 1
    return ", ".join(f"{ret}x{n}" for ret, n in sorted(counts.items())) or "none"


def _basics(run: StormRun | None, run_id: str) -> list[str]:
    """Why a storm cannot be judged at all."""
    if run is None:
        return [f"{run_id}: missing from the guest output"]
    problems = []
    if run.rc != 0:
        problems.append(f"{run_id}: the write to go failed (exit status {run.rc})")
    if run.summary is None:
        problems.append(f"{run_id}: no summary")
    else:
        if run.summary.interrupted:
            problems.append(f"{run_id}: interrupted")
        if len(run.results) != run.summary.calls or run.summary.calls != run.summary.threads * run.rounds:
            problems.append(f"{run_id}: {len(run.results)} results for {run.summary.threads} threads "
                            f"x {run.rounds} rounds")
    return problems


def _storms_to_judge(out: GuestOutput, ids: Sequence[str]) -> tuple[list[StormRun], list[str]]:
    """The storms *ids* that can be judged, and why the others cannot."""
    runs, problems = [], []
    for run_id in ids:
        run = out.storms.get(run_id)
        basic = _basics(run, run_id)
        problems += basic
        if run is not None and not basic:
            runs.append(run)
    return runs, problems


def _expect_rets(run: StormRun, run_id: str, wait_ret: int, nowait_ret: int = 0) -> list[str]:
    problems = []
    bad_wait = [r for r in run.results if r.wait and r.ret != wait_ret]
    bad_nowait = [r for r in run.results if not r.wait and r.ret != nowait_ret]
    if bad_wait:
        problems.append(Problem(f"{run_id}: {len(bad_wait)} request_module() calls got {{{_rets(bad_wait)}}}, "
                                f"expected {wait_ret}", *_defects_of(bad_wait, wait_ret)))
    if bad_nowait:
        problems.append(Problem(f"{run_id}: {len(bad_nowait)} request_module_nowait() calls got "
                                f"{{{_rets(bad_nowait)}}}, expected {nowait_ret}",
                                *_defects_of(bad_nowait, nowait_ret)))
    return problems


def _defects_of(wrong: Sequence[guest_storm.CallResult], expected: int) -> list[str]:
    """The defects that wrong results show: a killed caller's -ERESTARTSYS
    handed on, -ETIME from modprobe slots held by duplicates, and 0 where
    modprobe's failure was due (another request's exec result announced)."""
    rets = {r.ret for r in wrong}
    found = []
    if -ERESTARTSYS in rets:
        found.append("killed")
    if -ETIME in rets:
        found.append("slots")
    if expected == MODPROBE_FAILED and 0 in rets:
        found.append("announce")
    return found


def _every_round_ran_modprobe(run: StormRun, run_id: str) -> list[str]:
    """Rounds run one after the other and an entry is gone once its first
    request is done, so each round with a waiter launches modprobe."""
    if run.launches is None or not any(r.wait for r in run.results):
        return []
    if run.launches < run.rounds:
        return [Problem(f"{run_id}: {run.launches} modprobe launches for {run.rounds} rounds: a round got an "
                        "earlier round's result without running modprobe (stale entry)", "linger")]
    return []


def _threads(runs: Sequence[StormRun]) -> int:
    return max((r.summary.threads for r in runs if r.summary), default=0)


def _storms(out: GuestOutput, prefix: str) -> list[StormRun]:
    return [run for run_id, run in out.storms.items() if run_id == prefix or run_id.startswith(prefix + ".")]


def _verdict(name: str, runs: Sequence[StormRun], problems: list[str], detail: str,
             calls: int = 0, **figures: object) -> Verdict:
    requests = sum(len(r.results) for r in runs) + calls
    return Verdict(name, not problems, requests, _threads(runs), detail, problems, dict(figures))


def _storm_scenario(name: str, ids: Callable[[Context], list[str]], wait_ret: int, live: bool,
                    ) -> Callable[[GuestOutput, Context, str], Verdict]:
    def evaluate(out: GuestOutput, ctx: Context, console: str) -> Verdict:
        runs, problems = _storms_to_judge(out, ids(ctx))
        for run in runs:
            problems += _expect_rets(run, run.id, wait_ret)
            problems += _every_round_ran_modprobe(run, run.id)
            if live and run.state != "live":
                problems.append(f"{run.id}: every call returned 0 but {run.name} is {run.state} afterwards")
        detail = "; ".join(f"{r.id}: {len(r.results)} calls {{{_rets(r.results)}}}, {r.launches} launches, "
                           f"{r.ms} ms" for r in runs)
        return _verdict(name, runs, problems, detail)
    return evaluate


def _ids(prefix: str, count: Callable[[Context], int]) -> Callable[[Context], list[str]]:
    return lambda ctx: [f"{prefix}.{i}" for i in range(1, count(ctx) + 1)]


@dataclass(frozen=True)
class FaultStacks:
    """The injected-fault stacks of a log: failslab verbose=2 dumps the stack
    of each injected fault that is not ratelimited."""

    stacks: int  # whole stacks through should_failslab
    in_dups: int  # ... of which show dups.c's allocation
    broken: int  # stacks cut short or run into another (lost console lines)


def fault_stacks(log: str) -> FaultStacks:
    """Read the stacks of *log* one by one, from "Call Trace:" to "</TASK>".
    dump_stack() holds the printk CPU lock, so stacks do not interleave in
    the kernel's log buffer; other lines between their frames are skipped.
    Only unmarked frames count: "? name+0x4c/0x460" is a stale address the
    unwinder met on the stack, not a frame."""
    stacks = in_dups = broken = 0
    frames: list[str] | None = None
    for line in log.splitlines():
        text = re.sub(r"^(?:\[[^\]]*\]\s*)+", "", line).strip()
        if text.startswith("Call Trace:"):
            broken += frames is not None
            frames = []
        elif frames is not None and text.startswith("</TASK>"):
            failslab = sum(1 for f in frames if f.startswith("should_failslab+"))
            if failslab == 1:
                stacks += 1
                in_dups += any(f.startswith(f"{DUPS_FUNCTION}+") for f in frames)
            elif any(f.startswith("should_fail") for f in frames):
                broken += 1  # a fault's stack without its should_failslab frame, or two
            frames = None
        elif frames is not None and re.match(r"[\w.]+\+0x[0-9a-f]+/0x[0-9a-f]+", text):
            frames.append(text)
    broken += frames is not None
    return FaultStacks(stacks, in_dups, broken)


def evaluate_failslab(out: GuestOutput, ctx: Context, console: str) -> Verdict:
    armed = injected = 0
    ids = [f"failslab.mix.{i}" for i in range(1, ctx.sizes.repeat + 1)] + ["failslab.fail"]
    runs, problems = _storms_to_judge(out, ids)
    for run in runs:
        run_id = run.id
        assert run.summary is not None
        is_fail = run.name == FAIL
        problems += _expect_rets(run, run_id, MODPROBE_FAILED if is_fail else 0)
        if not is_fail and run.state != "live":
            problems.append(f"{run_id}: {run.name} is {run.state} after the storm")
        want = -(-run.summary.calls // ctx.sizes.inject)
        got = sum(1 for r in run.results if r.injected)
        armed += want
        injected += got
        if run.summary.inject != ctx.sizes.inject or got != want:
            problems.append(f"{run_id}: {got} faults injected of {want} armed")
    # The guest's own copy of the kernel log, where it made one; else the
    # console, which may have lost lines (broken stacks are not judged).
    logged = out.dmesg.get(STACKS_ID)
    found = fault_stacks("\n".join(logged) if logged is not None else console)
    if injected and not found.stacks:
        problems.append("no stack of an injected fault in the kernel log (failslab verbose=2)")
    if found.stacks != found.in_dups:
        problems.append(f"{found.stacks - found.in_dups} of {found.stacks} injected-fault stacks are not in "
                        f"{DUPS_FUNCTION}")
    if logged is not None and found.broken:
        problems.append(f"{found.broken} injected-fault stacks in the kernel log are cut short")
    source = "kernel log" if logged is not None else "console"
    detail = (f"{injected} of {armed} armed dups allocations failed; {found.in_dups}/{found.stacks} sampled "
              f"stacks ({source}) in {DUPS_FUNCTION}; " + "; ".join(f"{r.id}: {{{_rets(r.results)}}}" for r in runs))
    return _verdict("failslab", runs, problems, detail, injected=injected, armed=armed,
                    stacks=found.stacks, stacks_in_dups=found.in_dups, stacks_broken=found.broken)


def _call_records(out: GuestOutput, run_id: str) -> list[CallRecord]:
    return out.calls.get(run_id, [])


def evaluate_reload(out: GuestOutput, ctx: Context, console: str) -> Verdict:
    problems: list[str] = []
    details = []
    calls = 0
    for i in range(1, ctx.sizes.races + 1):
        run_id = f"reload.{i}"
        rec = out.record("reload", run_id)
        records = _call_records(out, run_id)
        calls += len(records)
        if not rec or len(records) != 2:
            problems.append(f"{run_id}: missing from the guest output")
            continue
        first, second = records
        details.append(f"{run_id}: {first.ret} ({rec['first']}), rmmod, {second.ret} after "
                       f"{second.latency_us} us ({rec['second']}), gap {rec['gap_ms']} ms, "
                       f"{rec['launches']} launches")
        if first.ret != 0 or rec["first"] != "live":
            problems.append(f"{run_id}: the first request got {first.ret}, module {rec['first']}")
        if rec["rmmod"] != "0":
            problems.append(f"{run_id}: rmmod failed")
            continue
        if second.ret != 0:
            problems.append(f"{run_id}: the second request got {second.ret}")
        elif rec["second"] != "live":
            problems.append(Problem(f"{run_id}: the request after rmmod returned {second.ret} but the module "
                                    f"is {rec['second']} (stale result, {rec['launches']} modprobe launch(es) "
                                    f"for 2 requests, {rec['gap_ms']} ms apart)", "linger"))
    return _verdict("reload", [], problems, "; ".join(details), calls=calls)


def evaluate_nowait_race(out: GuestOutput, ctx: Context, console: str) -> Verdict:
    details = []
    early = 0
    runs, problems = _storms_to_judge(out, _ids("nowait-race", lambda c: c.sizes.races)(ctx))
    for run in runs:
        run_id = run.id
        lead, rest = run.by_role("lead"), run.by_role("rest")
        if len(lead) != 1 or lead[0].wait or not rest:
            problems.append(f"{run_id}: {len(lead)} nowait lead and {len(rest)} waiters")
            continue
        wrong = [r for r in rest if r.ret != MODPROBE_FAILED]
        quick = [r for r in wrong if r.latency_us < NOWAIT_RACE_DELAY_MS * 1000]
        early += len(quick)
        details.append(f"{run_id}: lead {lead[0].ret}; waiters {{{_rets(rest)}}}, fastest "
                       f"{min(r.latency_us for r in rest) // 1000} ms (init fails after {NOWAIT_RACE_DELAY_MS} ms)")
        if wrong:
            problems.append(Problem(f"{run_id}: {len(wrong)} of {len(rest)} request_module() callers got "
                                    f"{{{_rets(wrong)}}} instead of {MODPROBE_FAILED}, {len(quick)} of them "
                                    "before the module's init could have failed (completed by the nowait "
                                    "request's exec result)", *(["announce"] if quick else [])))
    return _verdict("nowait-race", runs, problems, "; ".join(details), early_completions=early)


def evaluate_killed_first(out: GuestOutput, ctx: Context, console: str) -> Verdict:
    run = out.storms.get("killed-first")
    problems = _basics(run, "killed-first")
    records = _call_records(out, "killed-first")
    if run is None or problems:
        return _verdict("killed-first", [], problems, "", calls=len(records))
    first = records[0] if records else None
    if first is None or not first.killed:
        problems.append("the first request's caller was not killed in the kernel")
    problems += _expect_rets(run, "killed-first", 0)
    if run.launches is not None and run.launches > KILLED_FIRST_LAUNCHES:
        problems.append(f"killed-first: {run.launches} modprobe launches after the first request was killed, "
                        f"expected at most {KILLED_FIRST_LAUNCHES}: the duplicates did not converge on a "
                        "new first request")
    if run.state != "live":
        problems.append(f"{run.name} is {run.state} after the storm")
    detail = (f"first request killed: returned {first.ret if first else '?'}; {len(run.results)} duplicates "
              f"got {{{_rets(run.results)}}}; {run.launches} modprobe launches")
    return _verdict("killed-first", [run], problems, detail, calls=len(records), launches=run.launches)


def evaluate_late_waiter(out: GuestOutput, ctx: Context, console: str) -> Verdict:
    run = out.storms.get("late-waiter")
    problems = _basics(run, "late-waiter")
    rec = out.record("late-waiter", "late-waiter")
    if run is None or problems or not rec:
        return _verdict("late-waiter", [], problems or ["missing from the guest output"], "")
    problems += _expect_rets(run, "late-waiter", 0)
    hog_cpu = int(rec["hog_cpu"])
    late = [r for r in run.results if r.cpu == hog_cpu]
    others = [r for r in run.results if r.cpu != hog_cpu]
    if len(late) != 1 or not others:
        return _verdict("late-waiter", [run], problems + [f"no caller on the hogged CPU {hog_cpu}"], "")
    end = late[0].start_us + late[0].latency_us
    after_ms = (end - max(r.start_us + r.latency_us for r in others)) // 1000
    detail = (f"CPU {hog_cpu} hogged {rec['hog_ms']} ms (linger {rec['linger_ms']} ms); "
              f"{len(run.results)} callers {{{_rets(run.results)}}}; the late waiter on CPU {hog_cpu} "
              f"returned {after_ms} ms after the last of the others")
    if after_ms < LATE_WAITER_HELD_MS:
        lead = run.by_role("lead")
        when = (f"the hog spun from {rec['hog_at_ms']} ms, the load ended at "
                f"{(lead[0].start_us + lead[0].latency_us) // 1000} ms" if lead and "hog_at_ms" in rec else "")
        problems.append(f"late-waiter: the caller on the hogged CPU {hog_cpu} returned {after_ms} ms after the "
                        f"others, so it was not kept off its CPU and the run shows nothing about a late "
                        f"waiter ({when or 'the load ended before the hog started?'})")
    return _verdict("late-waiter", [run], problems, detail, hog_ms=int(rec["hog_ms"]),
                    late_waiter_after_ms=after_ms)


def evaluate_starve(out: GuestOutput, ctx: Context, console: str) -> Verdict:
    problems: list[str] = []
    runs = []
    details = []
    calls = 0
    points = []
    for delay in ctx.sizes.starve_delays_ms:
        run_id = f"starve.{delay}"
        run = out.storms.get(run_id)
        rec = out.record("starve", run_id)
        records = _call_records(out, run_id)
        calls += len(records)
        basic = _basics(run, run_id)
        problems += basic
        if run is None or basic or not rec or len(records) != 2:
            if not basic:
                problems.append(f"{run_id}: missing from the guest output")
            continue
        runs.append(run)
        baseline, probe = records
        problems += _expect_rets(run, run_id, 0)
        if probe.ret != MODPROBE_FAILED or baseline.ret != MODPROBE_FAILED:
            problems.append(Problem(f"{run_id}: the request for a missing module got {probe.ret} under the "
                                    f"storm ({baseline.ret} without), expected {MODPROBE_FAILED}",
                                    *(["slots"] if probe.ret == -ETIME else [])))
        etime = sum(1 for r in run.results if r.ret == -ETIME)
        point = {"delay_ms": delay, "threads": run.summary.threads if run.summary else 0,
                 "baseline_ms": baseline.latency_us // 1000, "probe_ms": probe.latency_us // 1000,
                 "probe_ret": probe.ret, "probe_at_ms": int(rec["probe_at_ms"]),
                 "storm_ms": int(rec["storm_ms"]), "storm_etime": etime}
        points.append(point)
        details.append(f"{run_id}: {point['threads']} duplicates of a {delay} ms load; a missing module: "
                       f"{point['baseline_ms']} ms alone, {point['probe_ms']} ms under the storm "
                       f"(ret {probe.ret}); storm {{{_rets(run.results)}}}")
    return _verdict("starve", runs, problems, "; ".join(details), calls=calls, points=points)


def defects_shown(problems: Sequence[str], reports: Sequence[dict[str, object]]) -> list[str]:
    """Which DEFECTS a scenario's problems (by their tags) and kernel reports
    (a KASAN use-after-free) show."""
    found = {d for p in problems if isinstance(p, Problem) for d in p.defects}
    for report in reports:
        if str(report.get("text", "")).startswith("BUG: KASAN: use-after-free"):
            found.add("uaf")
    return [key for key in DEFECTS if key in found]


