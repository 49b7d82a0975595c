"""What the scenarios and their judges share: the storm sizes, the guest's
context, the defects a scenario can show, and the figures both the shell
and the judges rely on."""

from __future__ import annotations

from dataclasses import dataclass, field

from kmod_dups.guest.storm import NONEXISTENT
from kmod_dups.kernel_abi import MAX_KMOD_CONCURRENT

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


# nowait-race: the waiters are released NOWAIT_RACE_LEAD_MS after the nowait
# lead (or when it returned), for a module whose init fails after
# NOWAIT_RACE_DELAY_MS.
NOWAIT_RACE_DELAY_MS = 2000
NOWAIT_RACE_LEAD_MS = 20
# killed-first: the killed caller's modprobe runs on (only its caller was
# killed), and one duplicate takes over as the first request and runs
# modprobe again; the others wait for that one.
KILLED_FIRST_LAUNCHES = 2

SLOW_LOAD_MS = 3000
SLOW_LOAD_MS_PER_CPU = 50


def slow_load_ms(ctx: Context) -> int:
    """The init delay of a load that the shell acts on while it is still in
    progress (killed-first kills its caller, late-waiter starts the hog): it
    must outlast the shell's wait for the duplicates to show in the kernel
    log, which reads dmesg and is slower with more CPUs."""
    return SLOW_LOAD_MS + SLOW_LOAD_MS_PER_CPU * ctx.cpus


LATE_WAITER_HELD_MS = 1000  # the late waiter returns at least this long after the others
# late-waiter's load outlasts the shell's wait for the duplicates and the
# hog's start: at 4 vCPUs on the debug kernel, measured twice, the hog spun
# 1.7 s and 2.4 s after a load of slow_load_ms() had ended (the run then
# shows nothing), so the load is three times as long.
LATE_WAITER_LOAD_FACTOR = 3
HOG_PRIO = 50  # SCHED_FIFO priority of the busy loop; the CPU's ksoftirqd runs above it
SOFTIRQ_PRIO = 60


def late_waiter_threads(ctx: Context) -> int:
    """Callers 0 (the lead) to T-1 sit on CPUs 0 to T-1; the last one is kept
    off its CPU.  At most 40 callers: as posted, a duplicate past the 50
    modprobe slots would wait for a slot, not for the entry."""
    return min(ctx.cpus, MAX_KMOD_CONCURRENT - 10)


def starve_names(delay: int) -> tuple[str, str]:
    """Two names no module has, one for the request alone and one for the
    request under the storm: as posted, the second request for a name within
    the linger would get the first one's stale result."""
    return f"{NONEXISTENT}_{delay}a", f"{NONEXISTENT}_{delay}b"


DUPS_FUNCTION = "kmod_dup_request_exists_wait"
STACKS_ID = "failslab.stacks"  # the failslab scenario's mark for the fault stacks
