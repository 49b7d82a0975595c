"""Debug-kernel storms: the scenarios ``kmod-dups stress`` runs in one guest,
the POSIX sh that drives them, and the judgement of what they printed.

The package: ``context`` (sizes, the guest's context, the defects, the
figures shell and judges share), ``shells`` (each scenario's lines of calls
into kmod_dups/guest/stress.sh), ``judges`` (each scenario's evaluate), and
here the registry that pairs them, the script and the console split.

Each scenario is a piece of guest script (on top of ``guest_storm.preamble``
and stress.sh) and an ``evaluate`` that turns its ``KDS`` lines,
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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kmod_dups.guest import storm as guest_storm
from kmod_dups.guest.storm import FAIL, TARGET, GuestOutput, GuestPaths
from kmod_dups.kernel_abi import MODPROBE_FAILED
from kmod_dups.debugstorm.context import (
    Context, DEFECTS, DUPS_FUNCTION, HOG_PRIO, KILLED_FIRST_LAUNCHES, LATE_WAITER_HELD_MS,
    MAX_THREADS, NOWAIT_RACE_DELAY_MS, NOWAIT_RACE_LEAD_MS, POSTED_LINGER_MS, SCENARIO_MARK,
    SLOW_LOAD_MS, SLOW_LOAD_MS_PER_CPU, SOFTIRQ_PRIO, STACKS_ID, Sizes, late_waiter_threads,
    slow_load_ms, starve_names,
)
from kmod_dups.debugstorm.judges import (
    FaultStacks, Problem, Verdict, _ids, _storm_scenario, defects_shown, evaluate_failslab,
    evaluate_killed_first, evaluate_late_waiter, evaluate_nowait_race, evaluate_reload,
    evaluate_starve, fault_stacks,
)
from kmod_dups.debugstorm.shells import (
    crowd_shell, fail_shell, failslab_shell, kernel_args, killed_first_shell, late_waiter_shell,
    missing_shell, mix_shell, nowait_race_shell, reload_shell, starve_shell,
)

# What callers of kmod_dups.debugstorm use from the parts.
__all__ = [
    "Context", "DEFAULT_SCENARIOS", "DEFECTS", "DUPS_FUNCTION", "FaultStacks", "HOG_PRIO",
    "KILLED_FIRST_LAUNCHES", "LATE_WAITER_HELD_MS", "MAX_THREADS", "NOWAIT_RACE_DELAY_MS",
    "NOWAIT_RACE_LEAD_MS", "POSTED_LINGER_MS", "Problem", "SCENARIOS", "SCENARIO_MARK", "SLOW_LOAD_MS",
    "SLOW_LOAD_MS_PER_CPU", "SOFTIRQ_PRIO", "STACKS_ID", "Scenario", "Sizes", "Verdict", "check_scenarios",
    "defects_shown", "evaluate", "evaluate_failslab", "fault_stacks", "kernel_args", "late_waiter_threads",
    "render", "slow_load_ms", "split_console", "starve_names",
]


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    shell: Callable[[Context], list[str]]
    evaluate: Callable[[GuestOutput, Context, str], Verdict]
    min_cpus: int = 1
    failslab: bool = False


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
            verdicts.append(Verdict(name, False, 0, 0, "", [f"the guest script stopped: {out.fatal_sentence()}"]))
            continue
        if out.record("scenario", name) == {}:
            verdicts.append(Verdict(name, False, 0, 0, "", ["did not run (the guest stopped before it)"]))
            continue
        verdicts.append(SCENARIOS[name].evaluate(out, ctx, consoles.get(name, "")))
    return verdicts
