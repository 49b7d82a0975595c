"""The seed's documented semantics, each shown by a guest test.

``render(paths, tests)`` writes one POSIX sh script (on top of
``guest_storm.preamble``) that runs the chosen tests in one boot;
``evaluate(output)`` reads what it printed (``guest_storm.parse_output``)
and gives one ``Verdict`` per test.  The numbers behind each verdict are in
its ``detail``, so a control kernel's run (feature off) shows why it fails.

The tests, in the order they run (``dups_trace`` last: the WARN it turns on
cannot be turned off):

failing_dups
    Concurrent request_module() calls for kmod_dups_fail, whose init fails
    after a delay: one modprobe launch, every other caller reported as a
    duplicate, and every caller gets the same error.
nowait_first
    One request_module_nowait() goes first, then concurrent
    request_module() calls: the nowait request is no anchor, so the first
    waiter runs modprobe itself (two launches) and the others wait on it.
nowait_dup
    One request_module() goes first, then concurrent
    request_module_nowait() calls: they are duplicates, return 0 at once
    (before the first request finished) and launch no modprobe.
killed_waiter
    A process that is waiting as a duplicate gets SIGKILL: it returns
    (-ERESTARTSYS) before the first request finished, promptly.
slots_full
    All 50 modprobe slots held (the wrapper holds modprobes of
    kmod_dups_hold_* names), then 100 callers ask for kmod_dups_target at
    once: the first waits for a slot and gets -ETIME after kmod.c's 5 s,
    every duplicate with it (within 1.2x the slot timeout), and no
    modprobe runs for the target.
nowait_lost
    Every slot held; a request_module() for kmod_dups_target waits for a
    slot, a request_module_nowait() follows, the first is killed, the slots
    free up: the nowait request still runs its modprobe, and the module
    ends up loaded.
spellings
    Concurrent requests for kmod_dups_target and kmod-dups-target (one
    module to modprobe and to the kernel): one modprobe launch, every
    caller gets 0.
recursive_softdep
    kmod_dups_target has the post softdep kmod_dups_recurse, whose init
    asks for kmod_dups_target from the modprobe the first request waits
    for: the inner request warns that it comes from its own modprobe and
    returns 0 (modprobe finds the module live), and the storm ends well
    before dups.c's 120 s bound, every caller with 0.
dups_trace
    module.enable_dups_trace (0644, bool_enable_only): duplicates are
    reported with pr_warn() while it is N, with WARN() and a stack trace
    once 1 is written at run time, and writing 0 afterwards fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kmod_dups.guest import storm as guest_storm
from kmod_dups.guest.storm import FAIL, TARGET, CallResult, GuestOutput, GuestPaths, Storm, StormRun
# -ERESTARTSYS is what a killed duplicate waiter gets from
# wait_for_completion_state(..., TASK_KILLABLE).
from kmod_dups.kernel_abi import ERESTARTSYS, ETIME
from kmod_dups.kmods import HOLD_GATE, HOLD_PREFIX


KILL_DELAY_MS = 8000


@dataclass(frozen=True)
class Verdict:
    test: str
    passed: bool
    detail: str
    expected: str


@dataclass(frozen=True)
class SemanticTest:
    name: str
    shell: Callable[[], list[str]]
    evaluate: Callable[[GuestOutput], Verdict]


# ---------------------------------------------------------------- storms

FAILING = Storm(id="failing_dups", name=FAIL, mode="wait", min_threads=4, options="init_delay_ms=2000")
NOWAIT_FIRST = Storm(id="nowait_first", name=TARGET, mode="wait", lead="nowait", lead_delay_ms=10000,
                     min_threads=4, options="init_delay_ms=2000")
NOWAIT_DUP = Storm(id="nowait_dup", name=TARGET, mode="nowait", lead="wait", lead_delay_ms=500,
                   min_threads=4, options="init_delay_ms=2000")
TRACE_THREADS = 3
RECURSIVE = Storm(id="recursive_softdep", name=TARGET, mode="wait", threads=3, min_threads=3,
                  options="init_delay_ms=1000")


def _guest_function(function: str, test: str) -> Callable[[], list[str]]:
    """The test is one function of semantics.sh, called with the test's id."""
    return lambda: [f"{function} {test}"]


def _storm_shell(storm: Storm) -> Callable[[], list[str]]:
    return lambda: guest_storm.storm_lines(storm)


def _missing(test: str, expected: str, what: str) -> Verdict:
    return Verdict(test, False, f"no result: {what} missing from the guest output", expected)


def _record(out: GuestOutput, kind: str, test: str, expected: str) -> dict[str, str] | Verdict:
    """The test's ``KDS <kind> id=<test>`` record, or the verdict that it is missing."""
    rec = out.record(kind, test)
    return rec if rec else _missing(test, expected, f"the {kind} record")


def _storm_basics(run: StormRun) -> str | None:
    """Why a storm's numbers cannot be judged, or None."""
    if run.rc != 0:
        return f"the write to go failed (exit status {run.rc})"
    if run.summary is None or run.summary.interrupted:
        return "the storm was interrupted"
    if run.launches is None or run.dups is None:
        return "no kernel counts"
    if not run.marked:
        return "the kernel log lost the start marker (log buffer too small?)"
    return None


def _rets(results: Sequence[guest_storm.CallResult | guest_storm.CallRecord]) -> str:
    counts: dict[int, int] = {}
    for r in results:
        counts[r.ret] = counts.get(r.ret, 0) + 1
    return ", ".join(f"{ret}: {n}" for ret, n in sorted(counts.items())) or "none"


def _judge(test: str, expected: str, checks: list[tuple[bool, str]], seen: str) -> Verdict:
    failed = [why for ok, why in checks if not ok]
    detail = seen if not failed else f"{seen}; not as documented: {'; '.join(failed)}"
    return Verdict(test, not failed, detail, expected)


def _judgeable(out: GuestOutput, storm: Storm, test: str, expected: str) -> StormRun | Verdict:
    """The storm's run, or the verdict of a test whose storm cannot be judged."""
    run = out.storms.get(storm.id)
    if run is None:
        return _missing(test, expected, "the storm")
    bad = _storm_basics(run)
    return Verdict(test, False, bad, expected) if bad else run


def _lead_and_rest(out: GuestOutput, storm: Storm, test: str, expected: str,
                   ) -> tuple[StormRun, list[CallResult], list[CallResult]] | Verdict:
    """A storm with one lead caller: the run, its lead and the other callers."""
    run = _judgeable(out, storm, test, expected)
    if isinstance(run, Verdict):
        return run
    lead, rest = run.by_role("lead"), run.by_role("rest")
    if len(lead) != 1 or not rest:
        return Verdict(test, False, f"{len(lead)} lead and {len(rest)} other callers", expected)
    return run, lead, rest


def evaluate_failing(out: GuestOutput) -> Verdict:
    test, expected = "failing_dups", ("one modprobe launch; every duplicate reported and given the "
                                      "first request's error")
    run = _judgeable(out, FAILING, test, expected)
    if isinstance(run, Verdict):
        return run
    n = len(run.results)
    seen = (f"{n} request_module() callers; returns {{{_rets(run.results)}}}; "
            f"{run.launches} modprobe launch(es); {run.dups} duplicate(s) reported")
    first = run.results[0].ret if run.results else None
    return _judge(test, expected, [
        (n >= 2, "fewer than 2 callers"),
        (run.rets == {first}, "callers got different return values"),
        (first not in (None, 0), "the request did not fail"),
        (run.launches == 1, f"{run.launches} modprobe launches, expected 1"),
        (run.dups == n - 1, f"{run.dups} duplicates reported, expected {n - 1}"),
    ], seen)


def evaluate_nowait_first(out: GuestOutput) -> Verdict:
    test, expected = "nowait_first", ("the nowait request is no anchor: the first waiter runs "
                                      "modprobe itself (2 launches), the other waiters wait on it")
    found = _lead_and_rest(out, NOWAIT_FIRST, test, expected)
    if isinstance(found, Verdict):
        return found
    run, lead, rest = found
    seen = (f"nowait lead returned {lead[0].ret} after {lead[0].latency_us} us; {len(rest)} "
            f"request_module() callers started after it, returns {{{_rets(rest)}}}; "
            f"{run.launches} modprobe launch(es); {run.dups} duplicate(s) reported")
    return _judge(test, expected, [
        (not lead[0].wait and all(r.wait for r in rest), "wrong kinds of request"),
        (min(r.start_us for r in rest) >= lead[0].end_us, "the waiters started before the lead returned"),
        (lead[0].ret == 0, "the nowait request failed"),
        (run.rets == {0}, "a waiter did not get 0"),
        (run.launches == 2, f"{run.launches} modprobe launches, expected 2"),
        (run.dups == len(rest) - 1, f"{run.dups} duplicates reported, expected {len(rest) - 1}"),
    ], seen)


def evaluate_nowait_dup(out: GuestOutput) -> Verdict:
    test, expected = "nowait_dup", ("duplicate request_module_nowait() calls return 0 at once, "
                                    "before the first request finished, and launch nothing")
    found = _lead_and_rest(out, NOWAIT_DUP, test, expected)
    if isinstance(found, Verdict):
        return found
    run, lead, rest = found
    slowest = max(r.latency_us for r in rest)
    seen = (f"request_module() lead took {lead[0].latency_us} us, returned {lead[0].ret}; "
            f"{len(rest)} nowait duplicates returned {{{_rets(rest)}}} within {slowest} us; "
            f"{run.launches} modprobe launch(es); {run.dups} duplicate(s) reported")
    return _judge(test, expected, [
        (lead[0].wait and not any(r.wait for r in rest), "wrong kinds of request"),
        (min(r.start_us for r in rest) < lead[0].end_us, "the nowait callers started after the lead ended"),
        (all(r.end_us < lead[0].end_us for r in rest), "a nowait duplicate returned after the first request"),
        (run.rets == {0}, "a call did not return 0"),
        (run.launches == 1, f"{run.launches} modprobe launches, expected 1"),
        (run.dups == len(rest), f"{run.dups} duplicates reported, expected {len(rest)}"),
    ], seen)


def killed_waiter_shell() -> list[str]:
    """Two writers of ``call``: an anchor whose modprobe takes KILL_DELAY_MS,
    and a duplicate waiter that gets SIGKILL a second later (semantics.sh)."""
    return ["kds_killed_waiter killed_waiter"]


def evaluate_killed(out: GuestOutput) -> Verdict:
    test, expected = "killed_waiter", ("a duplicate waiter that gets SIGKILL returns at once "
                                       "(-ERESTARTSYS), before the first request finished")
    rec = out.record("killed", "killed_waiter")
    kernel = out.kernel.get("killed_waiter")
    if not rec or kernel is None:
        return _missing(test, expected, "the killed-waiter record")
    calls = {c.pid: c for c in out.calls.get("killed_waiter", [])}
    anchor, waiter = calls.get(int(rec["anchor"])), calls.get(int(rec["waiter"]))
    if anchor is None or waiter is None:
        return Verdict(test, False, "the call log lacks the anchor's or the waiter's request", expected)
    seen = (f"killed waiter returned {waiter.ret} after {waiter.latency_us} us "
            f"({rec['kill_to_exit_ms']} ms from SIGKILL to exit), the first request returned "
            f"{anchor.ret} after {anchor.latency_us} us ({rec['kill_to_anchor_ms']} ms after the kill); "
            f"{kernel['launches']} modprobe launch(es); {kernel['dups']} duplicate(s) reported")
    return _judge(test, expected, [
        (waiter.killed, "the waiter saw no fatal signal"),
        (waiter.ret == -ERESTARTSYS, f"the waiter got {waiter.ret}, expected -{ERESTARTSYS}"),
        (waiter.seq < anchor.seq, "the waiter returned after the first request"),
        (anchor.ret == 0, f"the first request got {anchor.ret}"),
        (kernel["launches"] == "1", f"{kernel['launches']} modprobe launches, expected 1"),
        (kernel["dups"] == "1", f"{kernel['dups']} duplicates reported, expected 1"),
    ], seen)


# kmod.c: MAX_KMOD_CONCURRENT slots, MAX_KMOD_ALL_BUSY_TIMEOUT seconds.
SLOTS = 50
SLOT_TIMEOUT_MS = 5000
SLOT_WAITERS = 100
# What semantics.sh's kds_hold_slots reads.
HOLD_VARIABLES = {"KDS_HOLD_PREFIX": HOLD_PREFIX, "KDS_HOLD_GATE": HOLD_GATE, "KDS_SLOTS": SLOTS}
SLOTS_FULL = Storm(id="slots_full", name=TARGET, mode="wait", threads=SLOT_WAITERS,
                   min_threads=SLOT_WAITERS)
SPELLINGS = 8


def evaluate_slots(out: GuestOutput) -> Verdict:
    test, expected = "slots_full", (f"with every slot held, the first request and {SLOT_WAITERS - 1} "
                                    f"duplicates all get -ETIME within 1.2x the {SLOT_TIMEOUT_MS} ms "
                                    "slot timeout; no modprobe for the target")
    run = _judgeable(out, SLOTS_FULL, test, expected)
    if isinstance(run, Verdict):
        return run
    latencies = [r.latency_us for r in run.results]
    if not latencies:
        return Verdict(test, False, "no caller results", expected)
    slowest, fastest = max(latencies) // 1000, min(latencies) // 1000
    seen = (f"{len(run.results)} caller(s) got {_rets(run.results)}, returning after {fastest} to "
            f"{slowest} ms; {run.launches} modprobe launch(es); {run.dups} duplicate(s) reported")
    return _judge(test, expected, [
        (len(run.results) == SLOT_WAITERS, f"{len(run.results)} callers returned, expected {SLOT_WAITERS}"),
        (run.rets == {-ETIME}, f"callers got {_rets(run.results)}, expected -{ETIME} for all"),
        # Each waited for the slot timeout, so every slot was really held.
        (fastest >= SLOT_TIMEOUT_MS * 0.9, f"a caller returned after {fastest} ms, before the slot timeout"),
        (slowest <= SLOT_TIMEOUT_MS * 1.2, f"the last caller returned after {slowest} ms"),
        (run.launches == 0, f"{run.launches} modprobe launches for the target, expected 0"),
        (run.dups == SLOT_WAITERS - 1, f"{run.dups} duplicates reported, expected {SLOT_WAITERS - 1}"),
    ], seen)


def evaluate_nowait_lost(out: GuestOutput) -> Verdict:
    test, expected = "nowait_lost", ("a request_module_nowait() behind a first request that is killed "
                                     "while waiting for a slot still runs modprobe: the module loads")
    rec = _record(out, "nowait-lost", test, expected)
    if isinstance(rec, Verdict):
        return rec
    calls = {c.pid: c for c in out.calls.get("nowait_lost", [])}
    first, nowait = calls.get(int(rec["first"])), calls.get(int(rec["nowait"]))
    if first is None or nowait is None:
        return Verdict(test, False, "the call log lacks the first or the nowait request", expected)
    seen = (f"first request returned {first.ret} after {first.latency_us // 1000} ms (killed: "
            f"{int(first.killed)}); nowait request returned {nowait.ret} after {nowait.latency_us // 1000} ms; "
            f"{rec['launches']} modprobe launch(es); the module is {rec['state']}")
    return _judge(test, expected, [
        (first.killed and first.ret == -ERESTARTSYS,
         f"the first request got {first.ret} (killed: {int(first.killed)}), expected -{ERESTARTSYS}"),
        (nowait.ret == 0, f"the nowait request got {nowait.ret}"),
        # Held back by the slots, not folded into the first request at once.
        (nowait.latency_us >= 500_000, f"the nowait request returned after {nowait.latency_us} us, "
                                       "before any slot was free"),
        (rec["launches"] == "1", f"{rec['launches']} modprobe launches, expected 1"),
        (rec["state"] == "live", f"the module is {rec['state']}: nobody ran modprobe for the nowait request"),
    ], seen)


def evaluate_spellings(out: GuestOutput) -> Verdict:
    test, expected = "spellings", (f"{SPELLINGS} concurrent callers, half spelling the module with '-': "
                                   "one modprobe launch, every caller gets 0")
    rec = _record(out, "spellings", test, expected)
    if isinstance(rec, Verdict):
        return rec
    calls = out.calls.get("spellings", [])
    launches = int(rec["launches_underscore"]) + int(rec["launches_dash"])
    names = {c.name for c in calls}
    seen = (f"{len(calls)} caller(s) ({', '.join(sorted(names))}) got "
            f"{_rets(calls)}; modprobe launches: {rec['launches_underscore']} underscored, "
            f"{rec['launches_dash']} dashed; {rec['dups']} duplicate(s) reported; the module is {rec['state']}")
    return _judge(test, expected, [
        (len(calls) == SPELLINGS and len(names) == 2, f"{len(calls)} calls with {len(names)} spelling(s)"),
        ({c.ret for c in calls} == {0}, f"callers got {_rets(calls)}"),
        (launches == 1, f"{launches} modprobe launches, expected 1"),
        (rec["dups"] == str(SPELLINGS - 1), f"{rec['dups']} duplicates reported, expected {SPELLINGS - 1}"),
        (rec["state"] == "live", f"the module is {rec['state']}"),
    ], seen)


RECURSE_THREADS = 3
# Well under dups.c's KMOD_DUP_WAIT_TIMEOUT (120 s): the storm ended because
# the recursion was seen, not because the bounded wait ran out.
RECURSE_MAX_MS = 60000


def evaluate_recursive(out: GuestOutput) -> Verdict:
    test, expected = "recursive_softdep", ("the request from the module's own modprobe (a post softdep's "
                                           "init) warns and returns 0 at once; every caller gets 0")
    rec = _record(out, "recursive", test, expected)
    if isinstance(rec, Verdict):
        return rec
    run = _judgeable(out, RECURSIVE, test, expected)
    if isinstance(run, Verdict):
        return run
    own = int(rec.get("own", "0"))
    seen = (f"{len(run.results)} caller(s) got {_rets(run.results)} in {run.ms} ms; {rec['state']} "
            f"{guest_storm.RECURSE}, its request returned {rec['ret']}; {own} own-modprobe warning(s); "
            f"{run.launches} modprobe launch(es); {run.dups} duplicate(s) reported")
    return _judge(test, expected, [
        (len(run.results) >= RECURSE_THREADS, f"{len(run.results)} callers returned"),
        (run.rets == {0}, f"callers got {_rets(run.results)}"),
        (rec["state"] == "live", f"{guest_storm.RECURSE} is {rec['state']}, its init did not finish"),
        (rec["ret"] == "0", f"the request from its init returned {rec['ret']}"),
        (own >= 1, "no warning that the request came from its own modprobe"),
        (run.ms < RECURSE_MAX_MS, f"the storm took {run.ms} ms (the bound is 120 s)"),
    ], seen)


def evaluate_trace(out: GuestOutput) -> Verdict:
    test, expected = "dups_trace", ("enable_dups_trace is 0644; N: pr_warn only; writing 1 at run "
                                    "time: WARN with a stack trace; it cannot be switched back off")
    rec = _record(out, "trace", test, expected)
    if isinstance(rec, Verdict):
        return rec
    if rec.get("present") != "1":
        return Verdict(test, False, "module.enable_dups_trace does not exist (feature off)", expected)
    before, on = out.storms.get("dups_trace.before"), out.storms.get("dups_trace.on")
    if before is None or on is None:
        return _missing(test, expected, "a trace storm")
    for run in (before, on):
        bad = _storm_basics(run)
        if bad:
            return Verdict(test, False, f"storm {run.id}: {bad}", expected)
    if before.warned is None or on.warned is None:
        return _missing(test, expected, "the duplicate warning counts")
    seen = (f"mode {rec['perm']}; booted {rec['before']}: {before.dups} duplicate(s), {before.warned} "
            f"warning(s), {before.warns} WARN(s); wrote 1 (exit {rec['rc_on']}) -> {rec['on']}: "
            f"{on.dups} duplicate(s), {on.warned} warning(s), {on.warns} WARN(s); "
            f"wrote 0 (exit {rec['rc_off']}) -> {rec['off']}")
    booted_on = rec["before"] == "Y"
    # Each duplicate warning (one a duplicate from the posted dups.c, one a
    # burst from the hardened one) is a WARN exactly when tracing is on.
    return _judge(test, expected, [
        (rec["perm"] == "644", f"mode {rec['perm']}, expected 644"),
        (before.dups >= 1 and on.dups >= 1, "a storm produced no duplicate"),
        (before.warned >= 1 and on.warned >= 1, "a storm's duplicates printed no warning"),
        (before.warns == (before.warned if booted_on else 0),
         "WARN use before the write does not match the boot value"),
        (rec["rc_on"] == "0" and rec["on"] == "Y", "writing 1 did not switch it on"),
        (on.warns == on.warned, "not every duplicate warning was a WARN after writing 1"),
        (rec["rc_off"] != "0" and rec["off"] == "Y", "writing 0 switched it off"),
    ], seen)


TESTS: dict[str, SemanticTest] = {
    t.name: t for t in (
        SemanticTest("failing_dups", _storm_shell(FAILING), evaluate_failing),
        SemanticTest("nowait_first", _storm_shell(NOWAIT_FIRST), evaluate_nowait_first),
        SemanticTest("nowait_dup", _storm_shell(NOWAIT_DUP), evaluate_nowait_dup),
        SemanticTest("killed_waiter", killed_waiter_shell, evaluate_killed),
        SemanticTest("slots_full", lambda: [f"kds_slots_full slots_full {SLOT_WAITERS}"], evaluate_slots),
        SemanticTest("nowait_lost", _guest_function("kds_nowait_lost", "nowait_lost"), evaluate_nowait_lost),
        SemanticTest("spellings", _guest_function("kds_spellings", "spellings"), evaluate_spellings),
        SemanticTest("recursive_softdep", _guest_function("kds_recursive_softdep", "recursive_softdep"), evaluate_recursive),
        SemanticTest("dups_trace", _guest_function("kds_dups_trace", "dups_trace"), evaluate_trace),
    )
}


def render(paths: GuestPaths, tests: Sequence[str] | None = None) -> str:
    """One guest script running *tests* (default: all) in the fixed order."""
    names = list(TESTS) if tests is None else list(tests)
    unknown = [n for n in names if n not in TESTS]
    if unknown:
        raise ValueError(f"unknown semantic test(s): {', '.join(unknown)}; known: {', '.join(TESTS)}")
    body = ["kds_setup"]
    for name in TESTS:  # the fixed order, dups_trace last
        if name in names:
            body += TESTS[name].shell()
    body += [f"kds_unload {TARGET}", f"kds_unload {FAIL}", "kds_teardown"]
    shell = {"KDS_TARGET": TARGET, "KDS_KILL_DELAY_MS": KILL_DELAY_MS, "KDS_TRACE_THREADS": TRACE_THREADS,
             "KDS_RECURSE": guest_storm.RECURSE, "KDS_RECURSE_THREADS": RECURSE_THREADS,
             **HOLD_VARIABLES, "KDS_SPELLINGS": SPELLINGS,
             "KDS_TRACE_OPTIONS": "init_delay_ms=1500"}
    return guest_storm.preamble(paths, variables_=shell, libraries=["semantics"]) + "\n" + "\n".join(body) + "\n"


def evaluate(out: GuestOutput, tests: Sequence[str] | None = None) -> list[Verdict]:
    names = list(TESTS) if tests is None else list(tests)
    if out.fatal is not None:
        why = " ".join(f"{k}={v}" for k, v in out.fatal.items())
        return [Verdict(n, False, f"the guest script stopped: {why}", "") for n in names]
    return [TESTS[n].evaluate(out) for n in names]
