"""The userspace rig (kernel/rig/): the generated dups.c compiled unmodified
against pthread implementations of the kernel primitives it uses.

The hardened variant must pass every scenario under ASan and under TSan.
Each defect of the posted variant must show as the check its scenario is
built to break, with a fixed seed.  Request counts are bounded here; the
million-request run is ``kmod-dups rig --scenario stress --requests 1000000``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from kmod_dups import cli, rig, rig_report
from kmod_dups.codegen import basetree
from kmod_dups.errors import UserError

needs_toolchain = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("make") is None,
    reason="gcc and make are needed to build the rig",
)

# The driver reports a hang when no request returns for this long (default
# 30 s): the posted variant can wedge itself on a freed entry, so it gets less.
HANG_S = {"hardened": 10, "as-posted": 5}

Builder = Callable[..., rig.Build]


@pytest.fixture(scope="session")
def build() -> Builder:
    """Builds on first use, into the user's cache (make keeps it incremental)."""
    made: dict[tuple[str, str, bool], rig.Build] = {}

    def get(variant: str, sanitizer: str, wait_state: bool = True) -> rig.Build:
        key = (variant, sanitizer, wait_state)
        if key not in made:
            made[key] = rig.build(rig.BuildConfig(variant=variant, sanitizer=sanitizer,
                                                  wait_state=wait_state))
        return made[key]

    return get


def run(built: rig.Build, tmp_path: Path, scenario: str, *, requests: int | None = None,
        seed: int = 1, extra: tuple[str, ...] = ()) -> rig.RigResult:
    request = rig.RunRequest(scenario=scenario, requests=requests, seed=seed,
                             extra_args=(f"--hang-timeout={HANG_S[built.config.variant]}", *extra),
                             timeout_s=150, progress_s=0)
    return rig.run(built, request, log_root=tmp_path)


def explain(result: rig.RigResult) -> str:
    return "\n".join(rig.summarize(result))


# --- the hardened variant passes -------------------------------------------

# Bounded: the defaults of uaf (1000), reload (4000), nowait and kill (20000
# with pauses) are quick; dups, nomem and stress get fewer.
HARDENED_RUNS = {"uaf": None, "dups": 10000, "reload": None, "nomem": 10000,
                 "nowait": None, "kill": None, "stress": 20000, "spellings": None}


@needs_toolchain
@pytest.mark.parametrize("sanitizer", ["address", "thread"])
@pytest.mark.parametrize("scenario", list(HARDENED_RUNS))
def test_hardened_passes(build: Builder, tmp_path: Path, sanitizer: str, scenario: str) -> None:
    result = run(build("hardened", sanitizer), tmp_path, scenario, requests=HARDENED_RUNS[scenario])
    assert result.passed, explain(result)
    assert result.config["sanitizer"] == sanitizer
    assert result.stats["requests"] >= (HARDENED_RUNS[scenario] or 1000)
    # Every check ran and reported, not only "no failure seen".
    assert set(result.checks) >= {"uaf", "dup-value", "reload", "nomem", "early", "kill",
                                  "warn", "leak", "lockdep", "hang", "sanitizer"}


@needs_toolchain
def test_hardened_workload_is_real(build: Builder, tmp_path: Path) -> None:
    """The stress mix really makes duplicates, nowait duplicates, untracked
    requests, reloads; and dups.c saves modprobe runs."""
    result = run(build("hardened", "address"), tmp_path, "stress", requests=20000)
    st = result.stats
    assert result.passed, explain(result)
    # late_waits: duplicates that found the entry before the announce and
    # waited after it, the window a freed entry would show in.
    for key in ("dup_wait", "dup_nowait", "untracked", "reload_cycles", "rmmod", "finit", "late_waits"):
        assert st[key] > 0, key
    assert st["modprobe"] < st["requests"] - st["dup_wait"] - st["dup_nowait"] + 1
    # The first duplicate of a burst warns, the others do not; a request
    # that fell back warned once or twice (a duplicate that then ran modprobe).
    dups = st["dup_wait"] + st["dup_nowait"]
    assert 0 < st["dup_warnings"] < dups, st
    assert st["dup_warnings"] + st["dup_fallback"] <= st["warnings"], st
    assert st["warnings"] <= st["dup_warnings"] + 2 * st["dup_fallback"], st


# --- each defect of the posted variant shows, on demand ----------------------

# scenario -> (requests, the check that must fail, words its first detail has)
DEFECTS = {
    "uaf": (None, "uaf", ""),
    "reload": (None, "reload", "without running modprobe"),
    "nomem": (None, "nomem", "returned -ENOMEM"),
    "nowait": (40000, "early", "returned 0"),
    "kill": (None, "kill", "-ERESTARTSYS without being killed"),
}


@needs_toolchain
@pytest.mark.parametrize("sanitizer", ["address", "thread"])
@pytest.mark.parametrize("scenario", list(DEFECTS))
def test_as_posted_defect_shows(build: Builder, tmp_path: Path, sanitizer: str,
                                scenario: str) -> None:
    requests, check, words = DEFECTS[scenario]
    result = run(build("as-posted", sanitizer), tmp_path, scenario, requests=requests, seed=1)
    verdict = rig.judge(result, check)
    assert verdict.ok, verdict.message + "\n" + explain(result)
    if words:
        assert any(words in msg for msg in result.details(check)), result.details(check)


@needs_toolchain
def test_the_first_requests_enomem_is_its_waiters_result(build: Builder, tmp_path: Path) -> None:
    """A first request whose allocations for modprobe fail hands -ENOMEM to
    its waiters, as the module loader does: under memory pressure each
    waiter would fail in turn. Only that -ENOMEM: one a duplicate invents
    or takes from a request that was not its first still fails "nomem"."""
    result = run(build("hardened", "address"), tmp_path, "owner-nomem")
    assert result.passed, explain(result)
    assert result.stats["dup_owner_nomem"] > 0, explain(result)


# --- every modprobe slot busy (kmod.c's 50 and its 5 s timeout) ---------------

SLOTS_LINGER_MS = 6000  # a 400 us jiffy: the 5 * HZ slot timeout lasts 500 ms
PINNED_V1 = Path(__file__).parent / "data/pinned/hardened-v1"


@needs_toolchain
def test_the_first_hardened_version_ran_a_modprobe_per_spelling(build: Builder, tmp_path: Path) -> None:
    """The first hardened dups.c (pinned) compared names with strcmp():
    snd-mod and snd_mod were two entries and two modprobes at once."""
    built = rig.build(rig.BuildConfig(pinned=PINNED_V1))
    result = run(built, tmp_path, "spellings")
    assert rig.judge(result, "spelling").ok, explain(result)
    assert any("while another ran for it" in msg for msg in result.details("spelling"))


@needs_toolchain
def test_slot_timeout_reaches_every_waiter_at_once(tmp_path: Path) -> None:
    """50 modprobes hold every slot; a first request, 100 duplicates and 5
    request_module_nowait() all get -ETIME after one slot timeout (the
    nowait ones wait for a slot of their own: the first request has not
    started modprobe), and no modprobe runs."""
    built = rig.build(rig.BuildConfig(linger_ms=SLOTS_LINGER_MS))
    result = rig.run(built, rig.RunRequest(scenario="slots"), log_root=tmp_path)
    assert result.passed, explain(result)
    slots = result.slots
    assert slots["requests"] == slots["etime"] == 106 and slots["modprobe"] == 0, slots
    # Every slot was busy for the first request and the nowait ones: the
    # window was reached, not assumed (the 50 holders may wait too).
    assert result.stats["slot_waits"] >= 6, result.stats
    assert slots["max_ms"] <= 1.2 * slots["timeout_ms"], slots


@needs_toolchain
def test_the_first_hardened_version_hands_the_slot_timeout_round(tmp_path: Path) -> None:
    """The first hardened dups.c (pinned) started over on any negative
    result: each duplicate took its turn as the first request, one slot
    timeout each."""
    built = rig.build(rig.BuildConfig(linger_ms=SLOTS_LINGER_MS, pinned=PINNED_V1))
    result = rig.run(built, rig.RunRequest(scenario="slots", threads=50 + 1 + 10), log_root=tmp_path)
    assert rig.judge(result, "slots").ok, explain(result)
    assert result.slots["max_ms"] > 5 * result.slots["timeout_ms"], result.slots


@needs_toolchain
def test_the_first_hardened_version_lost_a_nowait_request(tmp_path: Path) -> None:
    """The first hardened dups.c (pinned) folded a request_module_nowait()
    into a first request still waiting for a slot: 0 for the caller, and
    nobody ran modprobe once the first request timed out."""
    built = rig.build(rig.BuildConfig(linger_ms=SLOTS_LINGER_MS, pinned=PINNED_V1))
    result = rig.run(built, rig.RunRequest(scenario="slots", threads=50 + 1 + 10), log_root=tmp_path)
    assert rig.judge(result, "nowait-lost").ok, explain(result)
    assert len(result.details("nowait-lost")) == 5, explain(result)


# --- defects 3 and 5 of the second review: shown on v2, fixed today -------

PINNED_V2 = Path(__file__).parent / "data/pinned/hardened-v2"


@needs_toolchain
def test_the_second_hardened_version_waited_for_its_own_modprobe(tmp_path: Path) -> None:
    """Every module has a post softdep whose init asks for the module: the
    request comes from the modprobe that the first request waits for, finds
    the first request's entry and waits for itself (v2, pinned). Without
    dups.c modprobe would find the module live and return 0."""
    built = rig.build(rig.BuildConfig(pinned=PINNED_V2))
    assert built.config.dups_api == 2
    result = run(built, tmp_path, "recursive", extra=("--hang-timeout=3",))
    assert rig.judge(result, "hang").ok, explain(result)
    assert any("modprobe(" in msg for msg in result.details("hang")), explain(result)


@needs_toolchain
@pytest.mark.parametrize("sanitizer", ["address", "thread"])
def test_a_request_from_its_own_modprobe_does_not_wait(build: Builder, tmp_path: Path,
                                                       sanitizer: str) -> None:
    """Today's: the recursive request is told from the ancestry of current
    (the modprobe the entry's subprocess_info ran), warns and runs modprobe,
    which finds the module coming and returns 0."""
    result = run(build("hardened", sanitizer), tmp_path, "recursive")
    assert result.passed, explain(result)
    assert result.stats["recursive_inits"] >= 500, result.stats
    assert result.stats["reload_cycles"] > 100, result.stats


@needs_toolchain
def test_the_second_hardened_version_warned_once_per_duplicate(tmp_path: Path) -> None:
    """48 callers at once, 50 rounds: each duplicate printed its own warning
    (a 448-CPU burst would print 447, or 447 WARN splats in trace mode), and
    no first request reported how many duplicates it served (v2, pinned)."""
    built = rig.build(rig.BuildConfig(linger_ms=SLOTS_LINGER_MS, pinned=PINNED_V2))
    result = rig.run(built, rig.RunRequest(scenario="flood"), log_root=tmp_path)
    assert rig.judge(result, "flood").ok, explain(result)
    assert result.stats["dup_warnings"] == result.stats["dup_wait"] > 1000, result.stats
    assert result.stats["bursts"] == 0, result.stats


@needs_toolchain
def test_a_burst_warns_once_and_reports_its_count(tmp_path: Path) -> None:
    """Today's: the first duplicate of a burst warns, the first request's
    announce reports how many converged, and the reports add up to the
    duplicates the rig counted; still about one modprobe per round."""
    built = rig.build(rig.BuildConfig(linger_ms=SLOTS_LINGER_MS))
    result = rig.run(built, rig.RunRequest(scenario="flood"), log_root=tmp_path)
    assert result.passed, explain(result)
    stats = result.stats
    dups = stats["dup_wait"] + stats["dup_nowait"]
    assert dups > 1000 and stats["burst_dups"] == dups, stats
    assert 0 < stats["dup_warnings"] <= stats["bursts"] < dups / 10, stats
    assert stats["modprobe"] < 2 * 50, stats


@needs_toolchain
@pytest.mark.parametrize("sanitizer", ["address", "thread"])
def test_as_posted_use_after_free_is_named(build: Builder, tmp_path: Path, sanitizer: str) -> None:
    """(a): the sanitizer sees a waiter touch an entry the delayed delete freed."""
    result = run(build("as-posted", sanitizer), tmp_path, "uaf", seed=1)
    uafs = [r for r in result.sanitizer_reports if r.category == "uaf"]
    assert uafs, explain(result)
    frames = {f for r in uafs for f in r.frames}
    assert "kmod_dup_request_exists_wait" in frames
    assert "kmod_dup_request_delete" in frames or any(r.touches_free for r in uafs)


@needs_toolchain
def test_as_posted_poison_without_sanitizer(build: Builder, tmp_path: Path) -> None:
    """Without a sanitizer the rig's own poisoning still catches (a)."""
    result = run(build("as-posted", "none"), tmp_path, "uaf", seed=1)
    assert "uaf" in result.failed_checks, explain(result)
    assert not result.sanitizer_reports
    assert any("0x6b6b6b6b" in msg or "bug" in msg for msg in result.details("uaf"))


@needs_toolchain
def test_hardened_passes_without_sanitizer(build: Builder, tmp_path: Path) -> None:
    result = run(build("hardened", "none"), tmp_path, "stress", requests=20000)
    assert result.passed, explain(result)


@needs_toolchain
@pytest.mark.parametrize("variant", ["hardened", "as-posted"])
def test_dups_c_compiles_without_warnings(build: Builder, variant: str) -> None:
    built = build(variant, "address")
    assert built.binary.is_file()
    assert built.warnings.strip() == "", built.warnings


@needs_toolchain
def test_killable_fallback_rendering(build: Builder, tmp_path: Path) -> None:
    """dups.c rendered for a base without wait_for_completion_state()."""
    built = build("hardened", "address", wait_state=False)
    assert "wait_for_completion_killable" in built.dups_c.read_text()
    result = run(built, tmp_path, "kill", requests=5000)
    assert result.passed, explain(result)


# --- the primitives and parameters behave like the kernel's ------------------

@needs_toolchain
def test_enable_dups_trace_warns_with_a_stack(build: Builder, tmp_path: Path) -> None:
    result = run(build("hardened", "address"), tmp_path, "dups", requests=3000,
                 extra=("--param=module.enable_dups_trace=1",))
    assert result.passed, explain(result)
    assert result.params["module.enable_dups_trace"] == "Y"
    stderr = (Path(result.log_dir or "") / "stderr").read_text()
    assert "cut here" in stderr and "Call Trace:" in stderr
    assert "kmod_dup_request_exists_wait" in stderr


@needs_toolchain
def test_bool_enable_only_cannot_be_cleared(build: Builder, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="Read-only"):
        run(build("hardened", "address"), tmp_path, "dups", requests=10,
            extra=("--param=module.enable_dups_trace=1", "--param=module.enable_dups_trace=0"))


@needs_toolchain
def test_linger_follows_the_jiffy_build_option(build: Builder, tmp_path: Path) -> None:
    result = run(build("as-posted", "address"), tmp_path, "reload", requests=100)
    assert result.config["hz"] == str(rig.HZ)
    assert int(result.config["jiffy_ns"]) == rig.jiffy_ns(rig.DEFAULT_LINGER_MS)
    assert float(result.config["linger_ms"]) == pytest.approx(rig.DEFAULT_LINGER_MS)


@needs_toolchain
def test_scenarios_match_the_driver(build: Builder) -> None:
    assert rig.list_scenarios(build("hardened", "address")) == {
        name: focus for name, (focus, _help) in rig.SCENARIOS.items()}


def test_jiffy_ns() -> None:
    assert rig.jiffy_ns(30) == 2000
    assert rig.jiffy_ns(60 * 1000) == 4_000_000  # the real 60 s at HZ=250
    with pytest.raises(UserError):
        rig.jiffy_ns(0.001)


def test_unknown_sanitizer_is_a_user_error() -> None:
    with pytest.raises(UserError, match="sanitizer"):
        rig.BuildConfig(sanitizer="memory")


# --- the CLI --------------------------------------------------------------------

def test_cli_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["rig", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--expect-defect" in out and "examples:" in out
    assert "--requests 1000000" in out


@needs_toolchain
def test_cli_expect_defect_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["rig", "--variant", "as-posted", "--scenario", "reload", "--requests", "200",
            "--log-dir", str(tmp_path), "--quiet"]
    assert cli.main([*base, "--expect-defect", "reload"]) == 0
    assert cli.main([*base, "--expect-defect", "nomem"]) == 1
    assert cli.main(base) == 1
    out = capsys.readouterr().out
    assert "expected defect shown: reload failed" in out


# --- reading the output ---------------------------------------------------------

RIG_STDOUT = """\
RIG config variant=as-posted sanitizer=address scenario=nowait focus=early threads=4 seed=1 linger_ms=30.000
RIG param name=module.enable_dups_trace value=N perm=0644
RIG fail check=early msg="rig-1: duplicate request_module(mod1) returned 0, but \\"mod1\\" cannot be loaded"
RIG stats requests=20000 threads=4 wall_ms=38.5 dup_wait=13916
RIG check name=uaf status=pass failures=0 what="no use of freed memory"
RIG check name=early status=fail failures=473 what="no duplicate is woken early"
RIG detail check=early msg="first detail"
RIG result status=fail
"""

ASAN_STDERR = """\
=================================================================
==11221==ERROR: AddressSanitizer: heap-use-after-free on address 0x61200000ff98 at pc 0x1 bp 0x2 sp 0x3
READ of size 4 at 0x61200000ff98 thread T13
    #0 0x558b8f3ef7c5 in rig_do_wait_for_common /work/main/kernel/rig/lib/sched.c:129
    #1 0x558b8f3f022f in wait_for_completion_state /work/main/kernel/rig/lib/sched.c:169
    #2 0x558b8f3fd9f7 in kmod_dup_request_exists_wait /tmp/dups-as-posted.c:207

0x61200000ff98 is located 88 bytes inside of 272-byte region [0x61200000ff40,0x612000010050)
freed by thread T2 here:
    #0 0x7f52a22b76a8 in __interceptor_free ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:52
    #1 0x558b8f3eece1 in kfree /work/main/kernel/rig/lib/slab.c:128
    #2 0x558b8f3fd3e9 in kmod_dup_request_delete /tmp/dups-as-posted.c:92

SUMMARY: AddressSanitizer: heap-use-after-free /work/main/kernel/rig/lib/sched.c:129 in rig_do_wait_for_common
[rig] BUG: odebug: ODEBUG: free active (active state 0) object: 0x1 object type: work_struct hint: 0x2 (task kworker/1)
/work/main/kernel/rig/lib/workqueue.c:360:2: runtime error: member access within misaligned address 0x6b6b6b6b6b6b6b6b for type 'struct timer_list', which requires 8 byte alignment
"""

TSAN_STDERR = """\
==================
WARNING: ThreadSanitizer: data race (pid=20351)
  Write of size 8 at 0x7b440000ff58 by thread T2:
    #0 memset ../../../../src/libsanitizer/sanitizer_common/sanitizer_common_interceptors.inc:799 (libtsan.so.2+0x5cbc4)
    #1 kfree /work/main/kernel/rig/lib/slab.c:120 (rig-as-posted+0x66b2)
    #2 kmod_dup_request_delete /tmp/dups-as-posted.c:92 (rig-as-posted+0xd1fb)

  Previous read of size 4 at 0x7b440000ff58 by thread T15 (mutexes: write M44):
    #0 rig_do_wait_for_common /work/main/kernel/rig/lib/sched.c:129 (rig-as-posted+0x697b)
    #1 kmod_dup_request_exists_wait /tmp/dups-as-posted.c:207 (rig-as-posted+0xd5c2)

SUMMARY: ThreadSanitizer: data race /work/main/kernel/rig/lib/slab.c:120 in kfree
==================
==================
WARNING: ThreadSanitizer: data race (pid=20450)
  Write of size 4 at 0x7b44000 by thread T3:
    #0 kmod_dup_request_announce /tmp/dups-as-posted.c:230 (rig-as-posted+0xd644)

  Previous read of size 4 at 0x7b44000 by thread T5:
    #0 kmod_dup_request_exists_wait /tmp/dups-as-posted.c:215 (rig-as-posted+0xd5d4)

  Location is heap block of size 272 at 0x7b440000ff00 allocated by thread T15:
    #0 malloc ../../../../src/libsanitizer/tsan/tsan_interceptors_posix.cpp:647 (libtsan.so.2+0x3ebb8)
    #1 free_is_not_here /x.c:1 (rig+0x1)

SUMMARY: ThreadSanitizer: data race /tmp/dups-as-posted.c:230 in kmod_dup_request_announce
==================
"""


def parse(stdout: str = "", stderr: str = "", returncode: int = 1) -> rig.RigResult:
    return rig_report.parse(["rig"], returncode, 1.0, stdout, stderr)


def test_parse_rig_lines() -> None:
    result = parse(RIG_STDOUT)
    assert result.completed and result.result_status == "fail"
    assert result.config["scenario"] == "nowait"
    assert result.params == {"module.enable_dups_trace": "N"}
    assert result.stats["requests"] == 20000 and result.stats["wall_ms"] == 38.5
    assert result.checks["early"].failures == 473
    assert result.checks["early"].details == ("first detail",)
    assert result.checks["uaf"].status == "pass"
    assert result.streamed["early"] == ['rig-1: duplicate request_module(mod1) returned 0, but "mod1" '
                                        'cannot be loaded']
    assert result.failed_checks == ["early"]
    assert not result.passed


def test_parse_asan_ubsan_and_rig_bugs() -> None:
    reports = rig_report.parse_sanitizers(ASAN_STDERR)
    assert [(r.tool, r.kind, r.category) for r in reports] == [
        ("AddressSanitizer", "heap-use-after-free", "uaf"),
        ("UndefinedBehaviorSanitizer", "member access within misaligned address 0x6b6b6b6b6b6b6b6b "
         "for type 'struct timer_list', which requires 8 byte alignment", "uaf"),
    ]
    assert reports[0].frames[:3] == ("rig_do_wait_for_common", "wait_for_completion_state",
                                     "kmod_dup_request_exists_wait")
    assert "kmod_dup_request_delete" in reports[0].frames
    assert rig_report.parse_rig_bugs(ASAN_STDERR)[0].startswith("odebug: ODEBUG: free active")


def test_parse_tsan_tells_a_race_with_free_from_a_plain_race() -> None:
    reports = rig_report.parse_sanitizers(TSAN_STDERR)
    assert [(r.kind, r.touches_free, r.category) for r in reports] == [
        ("data race", True, "uaf"),
        ("data race", False, "race"),
    ]
    result = parse(RIG_STDOUT, TSAN_STDERR)
    assert {"early", "uaf", "race", "sanitizer"} <= set(result.failed_checks)


def test_incomplete_runs_fail() -> None:
    crashed = parse("RIG config scenario=uaf\n\nRIG crash signal=11\n", returncode=4)
    assert crashed.crash_signal == 11 and "crash" in crashed.failed_checks
    silent = parse("RIG config scenario=uaf\n", returncode=0)
    assert silent.failed_checks == ["incomplete"] and not silent.passed
    hung = rig_report.parse(["rig"], -9, 150.0, "RIG config scenario=uaf\n", "", timed_out=True)
    assert hung.failed_checks == ["hang"]


def test_judge() -> None:
    passing = parse(RIG_STDOUT.replace("status=fail", "status=pass").replace(
        'RIG fail check=early msg="rig-1: duplicate request_module(mod1) returned 0, but \\"mod1\\" '
        'cannot be loaded"\n', ""), returncode=0)
    assert rig.judge(passing, None).ok
    assert not rig.judge(passing, "any").ok
    failing = parse(RIG_STDOUT)
    assert not rig.judge(failing, None).ok
    assert rig.judge(failing, "any").ok
    assert rig.judge(failing, "early").ok
    verdict = rig.judge(failing, "reload")
    assert not verdict.ok and "only early failed" in verdict.message


@pytest.mark.slow
def test_the_pinned_kmod_c_is_the_base_trees(base_tree: Path) -> None:
    """The rig's kmod.c is the default base's, byte for byte."""
    pinned = rig.rig_source_dir() / rig.RIG_BASE / "kernel/kmod.c"
    assert pinned.read_bytes() == (base_tree / "kernel/kmod.c").read_bytes()
    assert basetree.kernel_version(base_tree) == rig.RIG_BASE_VERSION

