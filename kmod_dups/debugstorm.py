"""Debug-kernel storms: the scenarios ``kmod-dups stress`` runs in one guest,
the POSIX sh that drives them, and the judgement of what they printed.

Each scenario is a piece of guest script (on top of ``guest_storm.preamble``
and the helpers below) and an ``evaluate`` that turns its ``KDS`` lines,
and its part of the kernel console, into a ``Verdict``: were the results
correct, and what figures did it produce.  The console reports (KASAN,
lockdep, debug objects, refcount, WARN) of each scenario are found by the
caller (``kmod_dups.stress``), which splits the console at the marker
``kmod-dups scenario NAME`` every scenario writes to the kernel log first.

The scenarios, each run on both variants (what "correct" means is the same;
the as-posted variant is expected to get some of them wrong):

mix          storms of request_module() and request_module_nowait() (wait on
             even CPUs, nowait on odd ones) for a module with a short init
             delay; the module is unloaded before each repetition.
             Correct: every call returns 0, the module is live after each
             storm, every round ran modprobe at least once.
fail         request_module() storms for a module whose init fails: every
             call returns modprobe's failure (256), every round ran modprobe.
missing      mixed storms for a name no module has: waiters 256, nowait 0.
crowd        more callers than CPUs (several per CPU), one slow load.
failslab     mix and fail storms with every Nth call made with fail-nth
             armed, so the dups allocation fails (the first slab allocation
             of a request): no crash, correct results, every armed fault
             injected, and the stacks of injected faults (failslab verbose=2,
             ratelimited) all in dups.c's kmod_dup_request_exists_wait.
reload       request (module loads), rmmod, request again at once: the
             module must be live again.  As posted, an entry lingers after
             completion, so the second request gets the stale result and
             nothing is loaded.
nowait-race  a request_module_nowait() goes first, request_module() callers
             right after, for a module whose init fails slowly.  Correct:
             the waiters get modprobe's failure.  As posted, the nowait
             request's exec result (0) completes them early.
killed-first the first request's caller is killed (SIGKILL) while a storm of
             duplicates waits on it.  Correct: the duplicates still get the
             load's result (0), and converge on one new first request (at
             most 2 modprobe launches in all).  As posted, they get the
             killed caller's -ERESTARTSYS.
late-waiter  one duplicate waiter is kept off its CPU (a SCHED_FIFO busy
             loop on that CPU, isolated at boot so nothing else needs it)
             from before the first request completes until the linger has
             passed.  Correct: no report.  As posted, the
             waiter wakes up on a freed entry (KASAN use-after-free).
starve       a storm of hundreds of duplicates of a slow load, and meanwhile
             one request for another module (a name no module has) from a
             process: its latency against the same request without a storm.
             As posted, duplicates hold the 50 modprobe slots while they wait.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kmod_dups import guest_storm
from kmod_dups.kernel_abi import ERESTARTSYS, ETIME, MAX_KMOD_CONCURRENT, MODPROBE_FAILED
from kmod_dups.guest_storm import FAIL, NONEXISTENT, TARGET, CallRecord, GuestOutput, GuestPaths, StormRun

POSTED_LINGER_MS = 60_000
MAX_THREADS = 8192  # kmod_dups_storm's limit
SCENARIO_MARK = "kmod-dups scenario "

# The as-posted variant's defects a scenario can show, by the problems and
# reports they cause (``defects_shown``).
DEFECTS = {
    "linger": "completed entries linger (60 s as posted): later requests get a stale result without "
              "running modprobe, and after an unload nothing is loaded",
    "announce": "any request for the name announces the result: a request_module_nowait()'s exec result "
                "completes the waiters early",
    "killed": "the first request's own error (killed: -ERESTARTSYS) is handed to every duplicate",
    "slots": "duplicates hold the 50 modprobe slots while they wait: others wait for a slot, past 5 s "
             "they get -ETIME",
    "uaf": "waiters use the entry without holding a reference: use-after-free against the delayed delete",
}


@dataclass(frozen=True)
class Sizes:
    """How big the storms are.  Requests of the clean set at C CPUs are about
    C * rounds * (2 * repeat + 2) + crowd * C * 2 + a few hundred."""

    rounds: int = 25  # rounds per storm
    repeat: int = 2  # unload-and-storm repetitions of mix and failslab
    per_cpu: int = 1  # callers per CPU in the storms (threads = per_cpu * CPUs)
    crowd: int = 4  # callers per CPU in the crowd storm
    inject: int = 3  # failslab: every Nth call fails its dups allocation
    races: int = 3  # repetitions of reload, nowait-race
    starve_threads: int = 300
    starve_delays_ms: tuple[int, ...] = (3000, 7000)

    def __post_init__(self) -> None:
        for name in ("rounds", "repeat", "per_cpu", "crowd", "inject", "races", "starve_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not self.starve_delays_ms or any(not 0 < d <= 60_000 for d in self.starve_delays_ms):
            raise ValueError("starve delays: 1 to 60000 ms")


@dataclass(frozen=True)
class Context:
    """What the scenarios need to know about the guest and the kernel."""

    cpus: int
    variant: str
    linger_ms: int | None = None  # as-posted test build; None: the posted 60 s
    sizes: Sizes = field(default_factory=Sizes)

    @property
    def linger(self) -> int:
        """How long a completed entry lingers, in ms (0 for hardened)."""
        if self.variant != "as-posted":
            return 0
        return POSTED_LINGER_MS if self.linger_ms is None else self.linger_ms

    def threads(self, per_cpu: int | None = None) -> int:
        return min(MAX_THREADS, self.cpus * (per_cpu or self.sizes.per_cpu))

    def fresh(self) -> list[str]:
        """Shell that waits until no completed entry lingers from before, for
        scenarios that need their first request to be a first (as posted,
        an entry stays for the linger after its request completed)."""
        if not self.linger:
            return []
        return [f"sleep {-(-self.linger // 1000) + 1}"]


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


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    shell: Callable[[Context], list[str]]
    evaluate: Callable[[GuestOutput, Context, str], Verdict]
    min_cpus: int = 1
    failslab: bool = False


# ---------------------------------------------------------------- guest shell



def _q(value: object) -> str:
    return guest_storm._q(value)  # noqa: SLF001 - one quoting rule for all our scripts


def _storm(run_id: str, name: str, mode: str, threads: int, rounds: int, *, lead: str = "none",
           lead_delay_ms: int = 0, options: str = "", inject: int = 0) -> str:
    args = [run_id, name, mode, threads, rounds, lead, lead_delay_ms, options, inject]
    return "kdx_storm " + " ".join(_q(a) for a in args)


def mix_shell(ctx: Context) -> list[str]:
    s = ctx.sizes
    return [_storm(f"mix.{i}", TARGET, "mix", ctx.threads(), s.rounds, options="init_delay_ms=200")
            for i in range(1, s.repeat + 1)]


def fail_shell(ctx: Context) -> list[str]:
    return [_storm("fail", FAIL, "wait", ctx.threads(), ctx.sizes.rounds, options="init_delay_ms=100")]


def missing_shell(ctx: Context) -> list[str]:
    return [_storm("missing", NONEXISTENT, "mix", ctx.threads(), ctx.sizes.rounds)]


def crowd_shell(ctx: Context) -> list[str]:
    return [_storm("crowd", TARGET, "wait", ctx.threads(ctx.sizes.crowd), 2, options="init_delay_ms=1000")]


def failslab_shell(ctx: Context) -> list[str]:
    s = ctx.sizes
    lines = ["kdx_failslab", f"kds_mark {STACKS_ID}"]
    lines += [_storm(f"failslab.mix.{i}", TARGET, "mix", ctx.threads(), s.rounds, options="init_delay_ms=200",
                     inject=s.inject) for i in range(1, s.repeat + 1)]
    lines.append(_storm("failslab.fail", FAIL, "wait", ctx.threads(), s.rounds, options="init_delay_ms=100",
                        inject=s.inject))
    lines.append(f"kdx_stacks {STACKS_ID} {DUPS_FUNCTION}")
    return lines




def reload_shell(ctx: Context) -> list[str]:
    lines = []
    for i in range(1, ctx.sizes.races + 1):
        lines += ctx.fresh() + [f"kdx_reload reload.{i}"]
    return lines


def nowait_race_shell(ctx: Context) -> list[str]:
    # The waiters are released NOWAIT_RACE_LEAD_MS after the nowait lead
    # (or when it returned): late enough that the lead reached the dups
    # check first, early enough to be there while modprobe is being exec'ed
    # for the lead (tens of ms under TCG).
    lines = []
    for i in range(1, ctx.sizes.races + 1):
        lines += ctx.fresh()
        lines.append(_storm(f"nowait-race.{i}", FAIL, "wait", ctx.threads(), 1, lead="nowait",
                            lead_delay_ms=NOWAIT_RACE_LEAD_MS, options=f"init_delay_ms={NOWAIT_RACE_DELAY_MS}"))
    return lines


NOWAIT_RACE_DELAY_MS = 2000
NOWAIT_RACE_LEAD_MS = 20
# The killed caller's modprobe runs on (only its caller was killed), and one
# duplicate takes over as the first request and runs modprobe again; the
# others wait for that one.
KILLED_FIRST_LAUNCHES = 2



def killed_first_shell(ctx: Context) -> list[str]:
    threads = ctx.threads()
    # As posted, only the duplicates that got one of the 50 modprobe slots
    # reach the dups check; the first request holds one slot.
    dups = min(threads, MAX_KMOD_CONCURRENT - 10)
    return ctx.fresh() + [
        f"kdx_killed_first killed-first {threads} {dups} {slow_load_ms(ctx)}"]


SLOW_LOAD_MS = 3000
SLOW_LOAD_MS_PER_CPU = 50


def slow_load_ms(ctx: Context) -> int:
    """The init delay of a load that the shell acts on while it is still in
    progress (killed-first kills its caller, late-waiter starts the hog): it
    must outlast the shell's wait for the duplicates to show in the kernel
    log, which reads dmesg and is slower with more CPUs."""
    return SLOW_LOAD_MS + SLOW_LOAD_MS_PER_CPU * ctx.cpus


LATE_WAITER_HELD_MS = 1000  # the late waiter returns at least this long after the others
HOG_PRIO = 50  # SCHED_FIFO priority of the busy loop; the CPU's ksoftirqd runs above it
SOFTIRQ_PRIO = 60

# The hog is started, bound and SCHED_FIFO, before the storm, and blocks
# reading a FIFO; once the duplicates wait, a write to the FIFO sets it
# spinning at once (an exec chain from the 9p root takes too long under TCG
# to start it then).  Nothing else may run on the hogged CPU meanwhile: RT
# throttling is turned off while it spins.


def late_waiter_threads(ctx: Context) -> int:
    """Callers 0 (the lead) to T-1 sit on CPUs 0 to T-1; the last one is kept
    off its CPU.  At most 40 callers: as posted, a duplicate past the 50
    modprobe slots would wait for a slot, not for the entry."""
    return min(ctx.cpus, MAX_KMOD_CONCURRENT - 10)


def late_waiter_shell(ctx: Context) -> list[str]:
    # The hog outlasts the linger (and the posted 60 s if need be), so the
    # delayed delete runs while the waiter on the hog's CPU has not run yet.
    threads = late_waiter_threads(ctx)
    return ctx.fresh() + [
        f"kdx_late_waiter late-waiter {threads} {slow_load_ms(ctx)} {max(ctx.linger, 1000)}"]



def kernel_args(ctx: Context, names: Sequence[str]) -> list[str]:
    """Boot arguments the scenarios need.  late-waiter: the hogged CPU is
    isolated (isolcpus=), so that no other task (the modprobe that the
    first request waits for, above all) is placed there and starved too;
    only the storm caller bound to it, and per-CPU kernel threads, run there.
    The scenario also turns timer migration off while it runs, or the delayed
    delete's timer could move to the busy hogged CPU and its work item wait
    there behind the hog, with the late waiter.  And the delete waits for an
    RCU grace period, which needs the hogged CPU to report its quiescent
    state from RCU's softirq: softirqs run on interrupt exit, but once the
    CPU had a busy softirq moment they are handed to its ksoftirqd, which
    the hog would starve; so the scenario raises that ksoftirqd above the
    hog while it runs."""
    if "late-waiter" in names:
        return [f"isolcpus={late_waiter_threads(ctx) - 1}"]
    return []




def starve_shell(ctx: Context) -> list[str]:
    threads = min(MAX_THREADS, ctx.sizes.starve_threads)
    dups = min(threads - 1, MAX_KMOD_CONCURRENT - 10)
    lines = []
    for delay in ctx.sizes.starve_delays_ms:
        # Two names no module has, one for the request alone and one for
        # the request under the storm: as posted, the second request for a
        # name within the linger would get the first one's stale result.
        base, probe = starve_names(delay)
        lines += ctx.fresh() + [f"kdx_starve starve.{delay} {threads} {delay} {dups} {base} {probe}"]
    return lines


def starve_names(delay: int) -> tuple[str, str]:
    return f"{NONEXISTENT}_{delay}a", f"{NONEXISTENT}_{delay}b"


# ---------------------------------------------------------------- judging


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


DUPS_FUNCTION = "kmod_dup_request_exists_wait"
STACKS_ID = "failslab.stacks"


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


SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (
        Scenario("mix", "wait+nowait storms, module unloaded before each repetition", mix_shell,
                 _storm_scenario("mix", _ids("mix", lambda c: c.sizes.repeat), 0, live=True)),
        Scenario("fail", "storm for a module whose init fails", fail_shell,
                 _storm_scenario("fail", lambda c: ["fail"], MODPROBE_FAILED, live=False)),
        Scenario("missing", "wait+nowait storm for a name no module has", missing_shell,
                 _storm_scenario("missing", lambda c: ["missing"], MODPROBE_FAILED, live=False)),
        Scenario("crowd", "several callers per CPU, one slow load", crowd_shell,
                 _storm_scenario("crowd", lambda c: ["crowd"], 0, live=True)),
        Scenario("failslab", "dups allocation failed in every Nth call (fail-nth)", failslab_shell,
                 evaluate_failslab, failslab=True),
        Scenario("reload", "request, rmmod, request again at once", reload_shell, evaluate_reload),
        Scenario("nowait-race", "nowait request first, waiters right after, failing init",
                 nowait_race_shell, evaluate_nowait_race, min_cpus=2),
        Scenario("killed-first", "first caller killed while duplicates wait", killed_first_shell,
                 evaluate_killed_first),
        Scenario("late-waiter", "a waiter kept off its CPU until the entry's linger passed",
                 late_waiter_shell, evaluate_late_waiter, min_cpus=3),
        Scenario("starve", "unrelated request under hundreds of duplicates", starve_shell, evaluate_starve),
    )
}
DEFAULT_SCENARIOS = list(SCENARIOS)


def defects_shown(problems: Sequence[str], reports: Sequence[dict[str, object]]) -> list[str]:
    """Which DEFECTS a scenario's problems (by their tags) and kernel reports
    (a KASAN use-after-free) show."""
    found = {d for p in problems if isinstance(p, Problem) for d in p.defects}
    for report in reports:
        if str(report.get("text", "")).startswith("BUG: KASAN: use-after-free"):
            found.add("uaf")
    return [key for key in DEFECTS if key in found]


def check_scenarios(names: Sequence[str], cpus: int) -> list[str]:
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    small = [n for n in names if cpus < SCENARIOS[n].min_cpus]
    if small:
        raise ValueError(", ".join(f"{n} needs {SCENARIOS[n].min_cpus} vCPUs" for n in small)
                         + f"; give --cpus {max(SCENARIOS[n].min_cpus for n in small)} or more")
    # The fixed order of SCENARIOS: the disruptive ones (a hogged CPU) last.
    return [n for n in SCENARIOS if n in names]


def render(paths: GuestPaths, ctx: Context, names: Sequence[str]) -> str:
    """One guest script running the scenarios *names* in the fixed order."""
    names = check_scenarios(names, ctx.cpus)
    body = ["kds_setup"]
    for name in names:
        body.append(f"kdx_begin {name}")
        body += SCENARIOS[name].shell(ctx)
    body.append("kdx_begin teardown")
    body += [f"kds_unload {TARGET}", f"kds_unload {FAIL}", "kds_teardown"]
    stress = {"KDX_FAILSLAB": "/sys/kernel/debug/failslab", "KDX_TARGET": TARGET,
              "KDX_HOG_PRIO": HOG_PRIO, "KDX_SOFTIRQ_PRIO": SOFTIRQ_PRIO}
    return guest_storm.preamble(paths, variables_=stress, libraries=["stress"]) + "\n" + "\n".join(body) + "\n"


def split_console(console: str) -> dict[str, str]:
    """The console cut at the scenario markers: {"boot": before the first,
    NAME: from its marker to the next}."""
    sections: dict[str, list[str]] = {"boot": []}
    current = "boot"
    for line in console.splitlines():
        at = line.find(SCENARIO_MARK)
        if at >= 0:
            current = line[at + len(SCENARIO_MARK):].strip()
            sections.setdefault(current, [])
        sections[current].append(line)
    return {name: "\n".join(lines) + "\n" for name, lines in sections.items()}


def evaluate(out: GuestOutput, ctx: Context, names: Sequence[str], consoles: dict[str, str]) -> list[Verdict]:
    verdicts = []
    for name in names:
        if out.fatal is not None:
            why = " ".join(f"{k}={v}" for k, v in out.fatal.items())
            verdicts.append(Verdict(name, False, 0, 0, "", [f"the guest script stopped: {why}"]))
            continue
        if out.record("scenario", name) == {}:
            verdicts.append(Verdict(name, False, 0, 0, "", ["did not run (the guest stopped before it)"]))
            continue
        verdicts.append(SCENARIOS[name].evaluate(out, ctx, consoles.get(name, "")))
    return verdicts
