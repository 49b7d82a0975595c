"""`kmod-dups stress`: debug-kernel storms, failslab, starvation.

Fast: the as-posted linger option of the generator and the build, the guest
script (valid sh; its helpers run in the host's sh against fake debugfs
files), the console split and the injected-fault stacks, and the judgement
of real guest output captured from the hardened and the as-posted debug
kernels (tests/data/stress/, see README there).

Slow: build the hardened debug kernel (boot dups debug) and run storms of a
few thousand requests at 4 vCPUs, with failslab failing the dups allocation
of every third call: every result correct, zero kernel reports.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kmod_dups import debugstorm, kernel_abi, stress
from kmod_dups.guest import storm as guest_storm
from kmod_dups.build import pipeline
from kmod_dups.codegen.render import render_dups_c
from kmod_dups.errors import UserError
from kmod_dups.guest.storm import GuestPaths

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "stress"
PATHS = GuestPaths(root="/root/.cache/kmod-dups/modroots/example", release="6.1.192+")


def kmod_dups(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kmod_dups.cli", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmod-dups: error: "), proc.stderr
    return lines[0]


# ---------------------------------------------------------------- the test linger


def test_linger_option_changes_only_the_delete_delay() -> None:
    posted = render_dups_c("as-posted")
    short = render_dups_c("as-posted", linger_ms=2000)
    assert render_dups_c("as-posted", linger_ms=None) == posted
    changed = [(a, b) for a, b in zip(posted.splitlines(), short.splitlines()) if a != b]
    assert len(posted.splitlines()) == len(short.splitlines())
    assert changed == [("\tqueue_delayed_work(system_wq, &kmod_req->delete_work, 60 * HZ);",
                        "\tqueue_delayed_work(system_wq, &kmod_req->delete_work, msecs_to_jiffies(2000));")]


@pytest.mark.parametrize("variant, linger, why", [
    ("hardened", 100, "as-posted variant only"),
    ("as-posted", -1, "0 to 60000 ms"),
    ("as-posted", 60_001, "0 to 60000 ms"),
])
def test_linger_refused(variant: str, linger: int, why: str) -> None:
    with pytest.raises(UserError, match=why):
        render_dups_c(variant, linger_ms=linger)


def test_a_linger_build_has_its_own_folder_and_work_tree() -> None:
    assert pipeline.default_name(["boot", "dups", "debug"], "hardened") == "boot+dups+debug-hardened"
    assert pipeline.default_name(["boot", "dups", "debug"], "as-posted", 2000) == \
        "boot+dups+debug-as-posted-linger2000ms"
    assert pipeline.flavour("as-posted") == "as-posted"


def test_build_refuses_a_linger_for_hardened(tmp_path: Path) -> None:
    err = one_line_error(kmod_dups("build", "--config", "boot", "dups", "debug", "--test-linger-ms", "10",
                                   "-O", str(tmp_path / "b")))
    assert "as-posted variant only" in err
    assert not (tmp_path / "b").exists()


# ---------------------------------------------------------------- the command line


def test_help_lists_scenarios_and_examples() -> None:
    proc = kmod_dups("stress", "--help")
    assert proc.returncode == 0
    for name in debugstorm.SCENARIOS:
        assert f"  {name} " in proc.stdout
    assert "kmod-dups stress --variant as-posted --test-linger-ms 2000" in proc.stdout


@pytest.mark.parametrize("args, why", [
    (["--scenario", "nosuch"], "unknown scenario(s) nosuch"),
    (["--cpus", "2", "--scenario", "late-waiter"], "late-waiter needs 3 vCPUs"),
    (["--test-linger-ms", "10"], "as-posted variant only"),
    (["--variant", "nope"], "unknown variant 'nope'"),
    (["--rounds", "0"], "rounds must be at least 1"),
    (["--starve-delay", "0"], "starve delays"),
])
def test_bad_input_is_refused_before_building(args: list[str], why: str) -> None:
    assert why in one_line_error(kmod_dups("stress", *args))


def test_a_build_that_is_not_a_debug_kernel_is_refused(tmp_path: Path) -> None:
    build = tmp_path / "b"
    (build / "include/config").mkdir(parents=True)
    (build / "scripts/mod").mkdir(parents=True)
    (build / "scripts/mod/modpost").write_text("")
    (build / "include/config/kernel.release").write_text("6.1.192+\n")
    (build / ".config").write_text("CONFIG_MODULES=y\nCONFIG_DEBUG_FS=y\nCONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y\n")
    (build / "build.json").write_text('{"variant": "hardened"}\n')
    err = one_line_error(kmod_dups("stress", "--build", str(build), "--scenario", "mix"))
    assert "not a debug kernel" in err and "CONFIG_KASAN" in err


# ---------------------------------------------------------------- the guest script


def script(variant: str = "hardened", cpus: int = 4, names: list[str] | None = None, **sizes: object) -> str:
    ctx = debugstorm.Context(cpus=cpus, variant=variant, linger_ms=2000 if variant == "as-posted" else None,
                             sizes=debugstorm.Sizes(**sizes))  # type: ignore[arg-type]
    return debugstorm.render(PATHS, ctx, names or debugstorm.DEFAULT_SCENARIOS)


@pytest.mark.parametrize("variant", ["hardened", "as-posted"])
def test_script_is_valid_sh_and_runs_every_scenario_in_order(tmp_path: Path, variant: str) -> None:
    text = script(variant)
    path = tmp_path / "s.sh"
    path.write_text(text)
    proc = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    begins = [line.split()[1] for line in text.splitlines() if line.startswith("kdx_begin ")]
    assert begins == list(debugstorm.SCENARIOS) + ["teardown"]
    assert text.rstrip().endswith("kds_teardown")


def test_storm_sizes_reach_the_script() -> None:
    text = script(cpus=8, rounds=7, repeat=3, per_cpu=2, crowd=5, inject=4, starve_threads=123,
                  starve_delays_ms=(1500,))
    assert "kdx_storm mix.3 kmod_dups_target mix 16 7 none 0 init_delay_ms=200 0" in text
    assert "kdx_storm crowd kmod_dups_target wait 40 2 none 0 init_delay_ms=1000 0" in text
    assert "kdx_storm failslab.fail kmod_dups_fail wait 16 7 none 0 init_delay_ms=100 4" in text
    assert "kdx_starve starve.1500 123 1500 40 kmod_dups_nonexistent_1500a kmod_dups_nonexistent_1500b" in text
    # the hog outlasts the as-posted linger; at most 40 callers so that, as
    # posted, the one kept off its CPU got a modprobe slot; the load takes
    # longer with more CPUs (3000 ms + 50 ms a CPU)
    assert "kdx_late_waiter late-waiter 8 10200 1000" in text  # 3 x (3000 + 50 x 8)
    # the killed caller's load, as long (3000 ms + 50 ms a CPU): the kill must come first
    assert "kdx_killed_first killed-first 16 16 3400" in text
    assert "kdx_late_waiter late-waiter 40 18600 2000" in script("as-posted", cpus=64, names=["late-waiter"])
    assert "kdx_late_waiter late-waiter 40 18600 60000" in debugstorm.render(
        PATHS, debugstorm.Context(cpus=64, variant="as-posted"), ["late-waiter"])


def run_helpers(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    """The script's helper functions in the host's sh, debugfs faked by a folder."""
    fake = tmp_path / "storm"
    fake.mkdir(exist_ok=True)
    text = script() .split("\nkds_setup\n")[0]  # the preamble and the helpers, nothing run yet
    prog = f"{text}\nKDS_DIR={fake}\nKDS_LOG={tmp_path}/modprobe.log\n{body}\n"
    return subprocess.run(["sh", "-c", prog], capture_output=True, text=True, timeout=60)


def test_helpers_read_the_call_log_after_a_sequence_number(tmp_path: Path) -> None:
    (tmp_path / "storm").mkdir()
    (tmp_path / "storm/call").write_text("# seq pid mode ret latency_us killed name\n"
                                         "8 10 wait 0 5 0 a\n9 11 wait 256 7 0 kmod_dups_nonexistent\n"
                                         "10 12 nowait 0 3 1 b\n")
    proc = run_helpers(tmp_path, "kdx_last_seq; kdx_calls x.1 8")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["10", "KDS call id=x.1 9 11 wait 256 7 0 kmod_dups_nonexistent",
                                        "KDS call id=x.1 10 12 nowait 0 3 1 b"]
    out = guest_storm.parse_output(proc.stdout)
    assert [c.seq for c in out.calls["x.1"]] == [9, 10] and out.calls["x.1"][1].killed
    (tmp_path / "storm/call").write_text("# seq pid mode ret latency_us killed name\n")
    assert run_helpers(tmp_path, "kdx_last_seq").stdout == "0\n"


def test_helpers_count_launches_and_wait_for_a_condition(tmp_path: Path) -> None:
    (tmp_path / "modprobe.log").write_text("1.0 5 -q -- kmod_dups_target\n2.0 6 -q -- kmod_dups_fail\n"
                                           "3.0 7 -q -- kmod_dups_target\n")
    proc = run_helpers(tmp_path, "kdx_launches kmod_dups_target 0; kdx_launches kmod_dups_target 1; "
                       "kdx_launches kmod_dups_fail 2; n=0; kdx_until '[ \"$n\" -ge 2 ] || { n=$((n + 1)); "
                       "false; }' && echo waited $n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:4] == ["2", "1", "0", "waited 2"]


def test_helpers_count_duplicates_waiting_and_reported(tmp_path: Path) -> None:
    """kdx_dups: the posted dups.c warns per duplicate; the hardened one
    warns once a burst, so duplicates still waiting are counted by their
    wchan and finished bursts by their first request's report."""
    proc_root = tmp_path / "proc"
    for pid, wchan in ((10, "kmod_dup_request_exists_wait"), (11, "kmod_dup_request_exists_wait"),
                       (12, "do_select"), (13, "kmod_dup_request_exists_wait_x")):
        (proc_root / str(pid)).mkdir(parents=True)
        (proc_root / str(pid) / "wchan").write_text(wchan)
    posted = ("kmod-dups mark s1\n" + "module: module-autoload: duplicate request for module kmod_dups_target\n" * 3)
    hardened_waiting = "kmod-dups mark s1\nmodule: duplicate request for module kmod_dups_target\n"
    hardened_done = (hardened_waiting + "module: duplicate requests for module kmod_dups_target: 5, served by "
                     "its first request (0)\nmodule: duplicate request for module kmod_dups_target\n")
    seen = []
    for log in (posted, hardened_waiting, hardened_done):
        (tmp_path / "dmesg.txt").write_text(log)
        proc = run_helpers(tmp_path, f"dmesg() {{ cat {tmp_path}/dmesg.txt; }}; KDX_PROC={proc_root}; "
                           "kdx_dups s1 kmod_dups_target")
        assert proc.returncode == 0, proc.stderr
        seen.append(proc.stdout.strip())
    # posted: 3 warning lines (more than the 2 waiting); hardened: 2 waiting
    # (one warning line); one burst of 5 reported plus 2 waiting.
    assert seen == ["3", "2", "7"]


# ---------------------------------------------------------------- the console


CONSOLE = """\
[    1.0] booting
[    9.0] kmod-dups scenario mix
[   10.0] module: module-autoload: duplicate request for module kmod_dups_target
[   11.0] kmod-dups scenario failslab
[   12.0] FAULT_INJECTION: forcing a failure.
[   12.0] name failslab, interval 1, probability 0, space 0, times -1
[   12.0] CPU: 2 PID: 321 Comm: kdstorm/2 Not tainted 6.1.192+ #1
[   12.0] Call Trace:
[   12.0]  <TASK>
[   12.0]  dump_stack_lvl+0x4c/0x5f
[   12.0]  should_fail_ex.cold+0x5/0xa
[   12.0]  ? kmod_dup_request_exists_wait+0x4c/0x460
[   12.0]  should_failslab+0x9/0x10
[   12.0]  kmalloc_trace+0x25/0x90
[   12.0]  kmod_dup_request_exists_wait+0x49/0x2e0
[   12.0]  __request_module+0x1b0/0x3c0
[   12.0]  </TASK>
[   12.5] module: module-autoload: duplicate request for module kmod_dups_target
[   13.0] FAULT_INJECTION: forcing a failure.
[   13.0] name failslab, interval 1, probability 0, space 0, times -1
[   13.0] CPU: 1 PID: 322 Comm: kdstorm/1 Not tainted 6.1.192+ #1
[   13.0] Call Trace:
[   13.0]  <TASK>
[   13.0]  dump_stack_lvl+0x4c/0x5f
[   13.0]  should_failslab+0x9/0x10
[   13.0]  kmalloc_trace+0x25/0x90
[   13.1] module: module-autoload: duplicate request for module kmod_dups_target
[   13.0]  kstrdup+0x31/0x60
[   13.0]  call_modprobe+0x2b0/0x3c0
[   13.0]  __request_module+0x1b0/0x3c0
[   13.0]  </TASK>
[   13.2] FAULT_INJECTION: forcing a failure.
[   13.2] name failslab, interval 1, probability 0, space 0, times -1
[   13.2] CPU: 3 PID: 323 Comm: kdstorm/3 Not tainted 6.1.192+ #1
[   13.2] Call Trace:
[   13.2]  <TASK>
[   13.2]  dump_stack_lvl+0x4c/0x5f
[   13.2]  should_fail_ex.cold+0x5/0xa
[   13.2]  ? kmod_dup_request_exists_wait+0x4c/0x460
[   13.3] FAULT_INJECTION: forcing a failure.
[   13.3] name failslab, interval 1, probability 0, space 0, times -1
[   13.3]  __kmem_cache_alloc_node+0x46/0x1f0
[   13.3]  kmalloc_trace+0x21/0xc0
[   13.3]  kmod_dup_request_exists_wait+0x4c/0x460
[   13.3]  </TASK>
[   14.0] kmod-dups scenario late-waiter
[   15.0] BUG: KASAN: use-after-free in do_wait_for_common+0x2d1/0x2f0
"""


def test_console_splits_at_scenario_markers_and_reports_go_to_theirs() -> None:
    sections = debugstorm.split_console(CONSOLE)
    assert list(sections) == ["boot", "mix", "failslab", "late-waiter"]
    assert "booting" in sections["boot"] and "duplicate request" in sections["mix"]
    assert stress.findings(sections["mix"]) == [] and stress.findings(sections["failslab"]) == []
    [uaf] = stress.findings(sections["late-waiter"])
    assert uaf["kind"] == "bug" and "KASAN: use-after-free" in str(uaf["text"])


def test_fault_stacks_must_show_the_dups_allocation() -> None:
    # one stack in dups.c, one a fault in call_modprobe()'s kstrdup() (which
    # must not count as dups.c's), with another line between its frames,
    # and one whose middle the console lost (the next stack's start too)
    found = debugstorm.fault_stacks(debugstorm.split_console(CONSOLE)["failslab"])
    assert found == debugstorm.FaultStacks(stacks=2, in_dups=1, broken=1)
    assert debugstorm.fault_stacks("FAULT_INJECTION: forcing a failure.\nno stack\n") == \
        debugstorm.FaultStacks(0, 0, 0)


def failslab_output(stack_lines: list[str]) -> tuple[str, debugstorm.Context]:
    ctx = debugstorm.Context(cpus=1, variant="hardened", sizes=debugstorm.Sizes(repeat=1, rounds=1, inject=1))
    lines = []
    for run_id, name, ret in (("failslab.mix.1", guest_storm.TARGET, 0), ("failslab.fail", guest_storm.FAIL, 256)):
        lines += [f"KDS storm id={run_id} name={name} mode=wait threads=1 rounds=1 lead=none lead_delay_ms=0 "
                  "options= rc=0 ms=5",
                  *(f"KDS summary id={run_id} {key} {value}" for key, value in (
                      ("name", name), ("mode", "wait"), ("lead", "none"), ("lead_delay_ms", 0), ("rounds", 1),
                      ("threads", 1), ("online_cpus", 1), ("interrupted", 0), ("calls", 1),
                      ("wait_calls", 1), ("nowait_calls", 0), ("inject", 1), ("injected", 1))),
                  f"KDS result id={run_id} 0 0 wait {ret} 100 0 rest 1",
                  f"KDS module id={run_id} state={'live' if ret == 0 else 'absent'}"]
    lines += [f"KDS dmesg id={debugstorm.STACKS_ID} {line}" for line in stack_lines]
    return "\n".join(lines) + "\n", ctx


def test_failslab_reads_the_stacks_the_guest_copied_from_the_kernel_log() -> None:
    stacks = ["[ 1.0] Call Trace:", "[ 1.0]  ? kmod_dup_request_exists_wait+0x4c/0x460",
              "[ 1.0]  should_failslab+0x5/0x10", "[ 1.0]  kmod_dup_request_exists_wait+0x4c/0x460",
              "[ 1.0]  </TASK>"]
    text, ctx = failslab_output(stacks * 2)
    # the console is not read when the guest copied its kernel log
    verdict = debugstorm.evaluate_failslab(guest_storm.parse_output(text), ctx, "junk")
    assert verdict.correct, verdict.problems
    assert (verdict.figures["stacks"], verdict.figures["stacks_in_dups"]) == (2, 2)
    other = ["[ 2.0] Call Trace:", "[ 2.0]  should_failslab+0x5/0x10", "[ 2.0]  </TASK>"]
    text, ctx = failslab_output(stacks + other + stacks[:3])
    verdict = debugstorm.evaluate_failslab(guest_storm.parse_output(text), ctx, "")
    assert not verdict.correct
    assert "1 of 2 injected-fault stacks are not in" in verdict.problems[0]
    assert "1 injected-fault stacks in the kernel log are cut short" in verdict.problems[1]


# ---------------------------------------------------------------- judging


def captured(name: str) -> tuple[str, str]:
    return (DATA / f"{name}-output.log").read_text(), (DATA / f"{name}-console.log").read_text()


def judge_captured(name: str, ctx: debugstorm.Context, names: list[str]):  # noqa: ANN201
    output, console = captured(name)
    return stress.judge(output, console, ctx, names)


# The sizes of the captured runs: kmod-dups stress --cpus 4 --rounds 4 --per-cpu 2 --crowd 4 --races 2
# --starve-threads 100 (see tests/data/stress/README).
CAPTURED_SIZES = debugstorm.Sizes(rounds=4, repeat=2, per_cpu=2, crowd=4, inject=3, races=2, starve_threads=100)


def test_captured_hardened_run_is_clean() -> None:
    ctx = debugstorm.Context(cpus=4, variant="hardened", sizes=CAPTURED_SIZES)
    names = debugstorm.DEFAULT_SCENARIOS
    out, scenarios, boot, other = judge_captured("hardened-4cpu", ctx, names)
    assert out.ended and [s.name for s in scenarios] == names
    assert all(s.clean for s in scenarios), [(s.name, s.problems, s.reports) for s in scenarios]
    assert not boot and not other
    by_name = {s.name: s for s in scenarios}
    assert sum(s.requests for s in scenarios) == 493
    # the stacks come from the guest's copy of the kernel log, every one in dups.c
    fs = by_name["failslab"].figures
    assert fs["injected"] == fs["armed"] == 33 and fs["stacks"] == fs["stacks_in_dups"] > 20
    assert "(kernel log)" in by_name["failslab"].detail
    # a killed first request: its duplicates converge on one new first request
    assert by_name["killed-first"].figures["launches"] == 2
    # an unrelated request under 100 duplicates of a slow load is not slowed down
    for point in by_name["starve"].figures["points"]:
        assert point["probe_ret"] == kernel_abi.MODPROBE_FAILED and point["storm_etime"] == 0


def test_captured_hardened_run_judged_again_with_a_defect_fails() -> None:
    """The judgement can fail: the same output with one killed-first
    duplicate given -ERESTARTSYS, and a use-after-free in the console."""
    output, console = captured("hardened-4cpu")
    ctx = debugstorm.Context(cpus=4, variant="hardened", sizes=CAPTURED_SIZES)
    lines = output.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("KDS result id=killed-first "))
    f = lines[at].split()
    f[6] = "-512"
    lines[at] = " ".join(f)
    console = console.replace("kmod-dups scenario late-waiter\n",
                              "kmod-dups scenario late-waiter\n[ 1.0] BUG: KASAN: use-after-free in "
                              "__wait_for_common+0x525/0x610\n", 1)
    _, scenarios, _, _ = stress.judge("\n".join(lines) + "\n", console, ctx, debugstorm.DEFAULT_SCENARIOS)
    by_name = {s.name: s for s in scenarios}
    assert not by_name["killed-first"].correct and by_name["killed-first"].defects == ["killed"]
    assert by_name["late-waiter"].reports and by_name["late-waiter"].defects == ["uaf"]
    assert [s.name for s in scenarios if not s.clean] == ["killed-first", "late-waiter"]


# What each scenario shows of the as-posted variant, in the captured run.
POSTED_DEFECTS = {"mix": ["linger"], "fail": ["linger"], "missing": ["linger"], "crowd": ["linger"],
                  "failslab": [], "reload": ["linger"], "nowait-race": ["announce"], "killed-first": ["killed"],
                  "late-waiter": ["uaf"], "starve": ["slots"]}


def test_captured_as_posted_run_shows_each_defect() -> None:
    ctx = debugstorm.Context(cpus=4, variant="as-posted", linger_ms=2000, sizes=CAPTURED_SIZES)
    out, scenarios, boot, other = judge_captured("as-posted-4cpu", ctx, debugstorm.DEFAULT_SCENARIOS)
    assert out.ended and not boot and not other
    assert {s.name: s.defects for s in scenarios} == POSTED_DEFECTS
    by_name = {s.name: s for s in scenarios}
    # allocation failure is handled as posted too: the request runs untracked
    assert by_name["failslab"].clean
    # the use-after-free: KASAN reports, the last one in dups.c itself
    uaf = by_name["late-waiter"].reports
    assert uaf and all("KASAN: use-after-free" in str(r["text"]) for r in uaf)
    assert any("kmod_dup_request_exists_wait" in str(r["text"]) for r in uaf)
    assert by_name["late-waiter"].correct and by_name["late-waiter"].figures["late_waiter_after_ms"] > 1000
    # the unrelated request: slower by seconds under 100 duplicates of a 3 s
    # load, and out of modprobe slots (-ETIME) under a 7 s load
    slow, starved = by_name["starve"].figures["points"]
    assert slow["probe_ms"] > slow["baseline_ms"] + 2000 and slow["probe_ret"] == kernel_abi.MODPROBE_FAILED
    assert starved["probe_ret"] == -kernel_abi.ETIME and starved["storm_etime"] == 50


def test_results_lines_with_the_injected_column_parse() -> None:
    [r] = guest_storm.parse_results("3 0 wait 0 1200 17 rest 1\n")
    assert r.injected and r.start_us == 17 and r.role == "rest"
    assert not guest_storm.parse_results("3 0 wait 0 1200 17 rest 0\n")[0].injected
    with pytest.raises(ValueError):
        guest_storm.parse_results("3 0 wait 0 1200 17 rest 2\n")


def test_table_fits_80_columns() -> None:
    report = stress.StressReport(variant="as-posted", linger_ms=2000, build="b", cpus=448, online="0-447",
                                 guest="g", result="bug", boot_seconds=300.0, seconds=9999.0, ended=True)
    report.scenarios = [stress.ScenarioReport(name, False, 123456, 8192, [
        {"kind": "bug", "line": 7, "text": "BUG: KASAN: use-after-free in do_wait_for_common+0x2d1/0x2f0 " * 3}],
        "d", ["p" * 200], defects=["uaf"]) for name in debugstorm.SCENARIOS]
    report.boot_reports = [{"kind": "warn", "line": 1, "text": "WARNING: x" * 40}]
    assert all(len(line) <= 80 for line in stress.table(report).splitlines())
    assert "defect shown (uaf, in mix, fail," in stress.details(report)


# ---------------------------------------------------------------- slow: the real debug kernel


SLOW_SCENARIOS = ["mix", "fail", "missing", "crowd", "failslab", "reload", "nowait-race", "killed-first",
                  "late-waiter"]
SLOW_SIZES = debugstorm.Sizes(rounds=25, repeat=2, per_cpu=5, crowd=8, inject=3, races=2)


@pytest.fixture(scope="module")
def hardened_run(tmp_path_factory: pytest.TempPathFactory) -> stress.StressReport:
    from tests.conftest import kernel_build

    override = os.environ.get("KMOD_DUPS_DEBUG_BUILD")
    build = Path(override) if override else kernel_build(stress.DEBUG_CONFIGS, "hardened")
    runs = tmp_path_factory.mktemp("stress")
    report = stress.run_stress(build, 4, SLOW_SCENARIOS, SLOW_SIZES, runs, lambda text: None, timeout=1800)
    stress.write_report(runs, report)
    return report


@pytest.mark.slow
@pytest.mark.debugkernel
def test_hardened_debug_storm_is_clean(hardened_run: stress.StressReport) -> None:
    report = hardened_run
    why = f"{stress.table(report)}\n{stress.details(report)}\n(guest: {report.guest})"
    assert report.ended and report.result == "ok", why
    assert report.requests >= 3000, why
    assert report.reports == 0, why
    assert all(s.correct for s in report.scenarios), why
    assert report.clean


@pytest.mark.slow
@pytest.mark.debugkernel
def test_failslab_fails_the_dups_allocation_and_results_stay_correct(hardened_run: stress.StressReport) -> None:
    [failslab] = [s for s in hardened_run.scenarios if s.name == "failslab"]
    why = f"{failslab.detail}; {failslab.problems}; {failslab.reports}"
    assert failslab.correct and not failslab.reports, why
    assert failslab.figures["injected"] == failslab.figures["armed"] > 100, why
    assert failslab.figures["stacks"] == failslab.figures["stacks_in_dups"] > 0, why


def test_defects_come_from_the_judges_tags_not_from_words() -> None:
    assert debugstorm.defects_shown(["a stale entry, -512x3, completed by the nowait"], []) == []
    tagged = [debugstorm.Problem("round 2 got an earlier result", "linger"),
              debugstorm.Problem("3 calls got {-512x3}", "killed", "slots")]
    assert debugstorm.defects_shown(tagged, []) == ["linger", "killed", "slots"]
    kasan = [{"kind": "bug", "text": "BUG: KASAN: use-after-free in kmod_dup_request_exists_wait+0x560/0x5c0"}]
    assert debugstorm.defects_shown([], kasan) == ["uaf"]
    with pytest.raises(ValueError):
        debugstorm.Problem("x", "no-such-defect")
