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

from kmod_dups import debugstorm, guest_storm, stress
from kmod_dups.build import pipeline
from kmod_dups.codegen.render import render_dups_c
from kmod_dups.errors import UserError
from kmod_dups.guest_storm import GuestPaths

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
    # posted, the one kept off its CPU got a modprobe slot
    assert "kdx_late_waiter late-waiter 8 2000 1000" in text
    assert "kdx_late_waiter late-waiter 40 2000 2000" in script("as-posted", cpus=64, names=["late-waiter"])
    assert "kdx_late_waiter late-waiter 40 2000 60000" in debugstorm.render(
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
[   13.0] FAULT_INJECTION: forcing a failure.
[   13.0] name failslab, interval 1, probability 0, space 0, times -1
[   13.0] FAULT_INJECTION: forcing a failure.
[   13.0] name failslab, interval 1, probability 0, space 0, times -1
[   13.0] Call Trace:
[   13.0] Call Trace:
[   13.0]  <TASK>
[   13.0]  <TASK>
[   13.0]  should_failslab+0x9/0x10
[   13.0]  should_failslab+0x9/0x10
[   13.0]  kmalloc_trace+0x25/0x90
[   13.0]  kstrdup+0x31/0x60
[   13.0]  kmalloc_trace+0x25/0x90
[   13.0]  kmod_dup_request_exists_wait+0x49/0x2e0
[   13.0]  call_modprobe+0x2b0/0x3c0
[   13.0]  __request_module+0x1b0/0x3c0
[   13.0]  </TASK>
[   13.0]  </TASK>
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
    # two stacks printed at once on two CPUs, interleaved: one in dups.c,
    # one a fault in call_modprobe()'s kstrdup() that must not count
    assert debugstorm.fault_stacks(debugstorm.split_console(CONSOLE)["failslab"]) == (3, 2)
    assert debugstorm.fault_stacks("FAULT_INJECTION: forcing a failure.\nno stack\n") == (0, 0)


# ---------------------------------------------------------------- judging


def captured(name: str) -> tuple[str, str]:
    return (DATA / f"{name}-output.log").read_text(), (DATA / f"{name}-console.log").read_text()


def judge_captured(name: str, ctx: debugstorm.Context, names: list[str]):  # noqa: ANN201
    output, console = captured(name)
    return stress.judge(output, console, ctx, names)


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
def test_hardened_debug_storm_is_clean(hardened_run: stress.StressReport) -> None:
    report = hardened_run
    why = f"{stress.table(report)}\n{stress.details(report)}\n(guest: {report.guest})"
    assert report.ended and report.result == "ok", why
    assert report.requests >= 3000, why
    assert report.reports == 0, why
    assert all(s.correct for s in report.scenarios), why
    assert report.clean


@pytest.mark.slow
def test_failslab_fails_the_dups_allocation_and_results_stay_correct(hardened_run: stress.StressReport) -> None:
    [failslab] = [s for s in hardened_run.scenarios if s.name == "failslab"]
    why = f"{failslab.detail}; {failslab.problems}; {failslab.reports}"
    assert failslab.correct and not failslab.reports, why
    assert failslab.figures["injected"] == failslab.figures["armed"] > 100, why
    assert failslab.figures["stacks"] == failslab.figures["stacks_in_dups"] > 0, why
