"""The rig's serial mode (``--serial``, kernel/rig/lib/serial.c): one task
runs at a time and the next is picked from the seed at every perturbation
and blocking point, in virtual time, so a seed replays one interleaving."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kmod_dups import rig

needs_toolchain = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("make") is None,
    reason="gcc and make are needed to build the rig",
)

PINNED_V2 = Path(__file__).parent / "data/pinned/hardened-v2"

# Keys of the stats line that depend on the interleaving: equal for one seed.
REPLAYED = ("requests", "first", "dup_wait", "dup_nowait", "dup_fallback", "untracked", "killed",
            "kills_sent", "reload_cycles", "modprobe", "finit", "finit_eexist", "rmmod",
            "alloc_failures", "warnings", "bursts", "burst_dups", "late_waits", "wall_ms",
            "switches")


@pytest.fixture(scope="module")
def hardened() -> rig.Build:
    return rig.build(rig.BuildConfig(variant="hardened", sanitizer="address"))


def serial(built: rig.Build, tmp_path: Path, scenario: str, seed: int, *,
           requests: int | None = None, extra: tuple[str, ...] = ()) -> rig.RigResult:
    request = rig.RunRequest(scenario=scenario, requests=requests, seed=seed, serial=True,
                             extra_args=("--hang-timeout=10", *extra), timeout_s=150, progress_s=0)
    return rig.run(built, request, log_root=tmp_path)


def replayed(result: rig.RigResult) -> dict[str, float]:
    return {key: result.stats[key] for key in REPLAYED}


@needs_toolchain
def test_a_seed_replays_its_interleaving(hardened: rig.Build, tmp_path: Path) -> None:
    """The stress mix (kills, nowait, reloads, failed allocations) twice with
    seed 7 gives the same counts to the last switch and virtual nanosecond;
    seed 8 gives another interleaving."""
    first = serial(hardened, tmp_path, "stress", 7, requests=5000)
    again = serial(hardened, tmp_path, "stress", 7, requests=5000)
    other = serial(hardened, tmp_path, "stress", 8, requests=5000)
    for result in (first, again, other):
        assert result.passed, "\n".join(rig.summarize(result))
        assert result.stats["serial"] == 1
    assert first.stats["switches"] > 10000, first.stats
    assert first.stats["dup_wait"] > 0 and first.stats["killed"] > 0, first.stats
    assert replayed(first) == replayed(again)
    assert replayed(first) != replayed(other)


@needs_toolchain
@pytest.mark.parametrize("scenario", ["dups", "reload", "nowait", "kill", "spellings", "slots",
                                      "recursive", "flood"])
def test_hardened_passes_serially(hardened: rig.Build, tmp_path: Path, scenario: str) -> None:
    result = serial(hardened, tmp_path, scenario, 3)
    assert result.passed, "\n".join(rig.summarize(result))
    assert result.stats["switches"] > 0, result.stats


@needs_toolchain
def test_a_defect_replays_from_its_seed(tmp_path: Path) -> None:
    """The posted variant's early wake-up (defect e: a nowait first request
    announces before modprobe ran) shows with seed 6, and again with the same
    waiter and result on the second run."""
    built = rig.build(rig.BuildConfig(variant="as-posted", sanitizer="address"))
    runs = [serial(built, tmp_path, "nowait", 6) for _ in range(2)]
    for result in runs:
        assert rig.judge(result, "early").ok, "\n".join(rig.summarize(result))
    assert runs[0].details("early") == runs[1].details("early")
    assert replayed(runs[0]) == replayed(runs[1])


@needs_toolchain
def test_a_deadlock_is_named_at_once(tmp_path: Path) -> None:
    """The second hardened version (pinned) waits for its own modprobe. With
    every task blocked and no deadline left, the serial scheduler knows it is
    a deadlock: the hang check names it without waiting for the watchdog's
    timeout (60 s here), and lists who waits."""
    built = rig.build(rig.BuildConfig(pinned=PINNED_V2))
    result = serial(built, tmp_path, "recursive", 1, extra=("--hang-timeout=60",))
    assert rig.judge(result, "hang").ok, "\n".join(rig.summarize(result))
    details = result.details("hang")
    assert any("every task waits for another" in msg for msg in details), details
    assert any("modprobe(" in msg for msg in details), details
    assert result.wall_s < 30, result.wall_s
