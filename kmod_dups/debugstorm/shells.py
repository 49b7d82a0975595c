"""The scenarios' guest shell: one line of calls into stress.sh per storm
(kmod_dups/guest/stress.sh holds the functions), and the boot arguments
they need."""

from __future__ import annotations

from collections.abc import Sequence

from kmod_dups.guest import storm as guest_storm
from kmod_dups.guest.storm import FAIL, NONEXISTENT, TARGET
from kmod_dups.kernel_abi import MAX_KMOD_CONCURRENT
from kmod_dups.debugstorm.context import (
    Context, DUPS_FUNCTION, MAX_THREADS, NOWAIT_RACE_DELAY_MS, NOWAIT_RACE_LEAD_MS, STACKS_ID,
    LATE_WAITER_LOAD_FACTOR, late_waiter_threads, slow_load_ms, starve_names,
)


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


def killed_first_shell(ctx: Context) -> list[str]:
    threads = ctx.threads()
    # As posted, only the duplicates that got one of the 50 modprobe slots
    # reach the dups check; the first request holds one slot.
    dups = min(threads, MAX_KMOD_CONCURRENT - 10)
    return ctx.fresh() + [
        f"kdx_killed_first killed-first {threads} {dups} {slow_load_ms(ctx)}"]


def late_waiter_shell(ctx: Context) -> list[str]:
    # The hog outlasts the linger (and the posted 60 s if need be), so the
    # delayed delete runs while the waiter on the hog's CPU has not run yet.
    threads = late_waiter_threads(ctx)
    return ctx.fresh() + [
        f"kdx_late_waiter late-waiter {threads} {LATE_WAITER_LOAD_FACTOR * slow_load_ms(ctx)} "
        f"{max(ctx.linger, 1000)}"]


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


