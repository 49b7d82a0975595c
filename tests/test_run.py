"""`kmod-dups run`: the verdict logic on its own, and the whole main job
for real at a small vCPU count under TCG (build both kernels, boot, storm,
trace): the feature-on kernel converges and the control does not."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kmod_dups import run
from kmod_dups.dupstrace import ModuleCounts, Session
from kmod_dups.guest.storm import CallResult, GuestPaths, StormRun

DELAYED, MISSING = run.TARGETS[0], run.TARGETS[2]


def storm(rets: list[int]) -> StormRun:
    out = StormRun(id="s", name="m", mode="wait", lead="none", threads=0, rounds=1, lead_delay_ms=0,
                   options="", rc=0, ms=10)
    out.results = [CallResult(cpu=i, round=1, mode="wait", ret=r, latency_us=5) for i, r in enumerate(rets)]
    return out


def test_converged_needs_one_launch_one_finit_one_result() -> None:
    counts = ModuleCounts(DELAYED.name, requests=4, dups=3, launches=1, finit=1, live=1)
    assert run.judge(DELAYED, "dups", storm([0, 0, 0, 0]), counts).converged
    many = ModuleCounts(DELAYED.name, requests=4, launches=4, finit=4, finit_failed=3, failed_dup=3, live=1)
    verdict = run.judge(DELAYED, "control", storm([0, 0, 0, 0]), many)
    assert not verdict.converged and "4 modprobe launches" in verdict.why and "4 finit_module" in verdict.why
    split = run.judge(DELAYED, "dups", storm([0, 0, 256, 0]), counts)
    assert not split.converged and "different results" in split.why
    lost = run.judge(DELAYED, "dups", storm([0, 0, 0, 0]),
                     ModuleCounts(DELAYED.name, requests=3, launches=1, finit=1))
    assert not lost.converged and "3 requests traced for 4 callers" in lost.why


def test_a_missing_module_converges_without_finit() -> None:
    counts = ModuleCounts(MISSING.name, requests=8, dups=7, launches=1)
    assert run.judge(MISSING, "dups", storm([256] * 8), counts).converged
    assert not run.judge(MISSING, "dups", storm([256] * 8), None).converged


def test_table_fits_80_columns() -> None:
    outcome = run.judge(DELAYED, "dups", storm([0] * 448),
                        ModuleCounts(DELAYED.name, requests=448, dups=447, launches=1, finit=1))
    control = run.judge(DELAYED, "control", storm([0] * 448),
                        ModuleCounts(DELAYED.name, requests=448, launches=448, finit=448,
                                     finit_failed=447, failed_dup=447, dup_held_bytes=447 * 529_000))
    kernel = run.KernelRun("dups", "b", 448, "0-447", "g", "ok", 61.5, [outcome, control], [], 9000, 10200)
    lines = run.table([kernel]).splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].split()[-1] == "yes" and lines[2].split()[-1] == "ctl"
    assert "225.5M" in lines[2]


def test_guest_script_runs_the_tracer_around_the_storms() -> None:
    text = run.guest_script(GuestPaths(root="/r", release="6.1.192+"), run.TARGETS)
    assert text.index("kds_trace_start\n") < text.index("kds_storm delayed") < text.index("kds_trace_stop\n")
    assert "-m kmod_dups.dupstrace -j" in text


def test_parse_trace_takes_the_document_after_the_timeline() -> None:
    """dupstrace -j prints one document a line; -e timeline lines come first."""
    session = Session(kernel="6.1.192+", seconds=1.0, modules=[ModuleCounts("m", requests=2)],
                      vmalloc_start_kb=1, vmalloc_peak_kb=5, dups_traced=True)
    text = ("noise\nKDS tracejson   0.000000     42 request_module(m)\n"
            f"KDS tracejson {session.to_json()}\n")
    assert run.parse_trace(text) == session
    assert run.trace_lines(text)[0].endswith("request_module(m)")
    assert run.parse_trace("nothing here") is None
    assert run.parse_trace("KDS tracejson {not json") is None
    assert run.parse_trace('KDS tracejson {"modules": []}') is None  # not a whole document


def test_lost_hits_are_a_problem_of_the_verdict() -> None:
    outcome = run.judge(DELAYED, "dups", storm([0] * 4),
                        ModuleCounts(DELAYED.name, requests=4, dups=3, launches=1, finit=1, live=1))
    control = run.judge(DELAYED, "control", storm([0] * 4),
                        ModuleCounts(DELAYED.name, requests=4, launches=4, finit=4))
    feature = run.KernelRun("dups", "b", 4, "0-3", "g", "ok", 6.0, [outcome], [], 9000, 10200,
                            missed={"the kretprobe on kmod_dup_request_exists_wait()": 3})
    ctl = run.KernelRun("control", "b", 4, "0-3", "g", "ok", 6.0, [control], [], 9000, 10200)
    verdict = run.verdict([feature, ctl])
    assert not verdict.ok
    assert "dups: dupstrace lost hits (3 of the kretprobe on kmod_dup_request_exists_wait())" in verdict.problems[0]
    feature.missed = {}
    assert run.verdict([feature, ctl]).ok


@pytest.mark.slow
def test_main_job_converges_with_the_feature_and_not_without(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "kmod_dups.cli", "run", "--cpus", "4", "--runs", str(tmp_path)],
                          capture_output=True, text=True, timeout=5400)
    print(proc.stdout)
    print(proc.stderr[-4000:], file=sys.stderr)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(next(tmp_path.glob("run-*/report.json")).read_text())
    assert report["converged"] is True
    kernels = {k["kernel"]: k for k in report["kernels"]}
    for name in ("dups", "control"):
        assert kernels[name]["online"] == "0-3"
    feature = {o["module"]: o for o in kernels["dups"]["outcomes"]}
    control = {o["module"]: o for o in kernels["control"]["outcomes"]}
    for target in run.TARGETS:
        if not target.judged:
            continue
        assert feature[target.name]["converged"], feature[target.name]["why"]
        assert feature[target.name]["counts"]["launches"] == 1
        # Without the feature every caller runs modprobe itself.
        assert control[target.name]["counts"]["launches"] > 1
        assert not control[target.name]["converged"]
    assert control[run.TARGETS[0].name]["counts"]["finit"] > 1
    assert "CONV" in proc.stdout


FAILING = run.TARGETS[1]


def converged_runs(control_launches: int = 4, untraced: list[str] | None = None) -> list[run.KernelRun]:
    """A feature-on kernel that converged on every judged module, and a
    control whose storms ran *control_launches* modprobe each."""
    feature, control = [], []
    for target in run.TARGETS:
        rets = [target.ret_expected] * 4
        feature.append(run.judge(target, "dups", storm(rets), ModuleCounts(
            target.name, requests=4, dups=3, launches=1, finit=target.finit_expected)))
        control.append(run.judge(target, "control", storm(rets), ModuleCounts(
            target.name, requests=4, launches=control_launches, finit=control_launches * target.finit_expected)))
    return [run.KernelRun("dups", "b", 4, "0-3", "g", "ok", 1.0, feature, untraced or []),
            run.KernelRun("control", "c", 4, "0-3", "g", "ok", 1.0, control, [])]


def test_verdict_yes_needs_the_control_to_show_a_window() -> None:
    assert run.verdict(converged_runs()).ok
    closed = run.verdict(converged_runs(control_launches=1))
    assert not closed.ok
    assert any("opened no window" in p for p in closed.problems)


def test_no_control_says_nothing_was_compared() -> None:
    answer = run.verdict(converged_runs()[:1])
    assert any("nothing was compared" in n for n in answer.notes)


def test_probes_not_attached_are_named() -> None:
    answer = run.verdict(converged_runs(untraced=["kretprobe kmod_dup_request_exists_wait: not found"]))
    assert any("kmod_dup_request_exists_wait" in n for n in answer.notes)
    assert any("kmod_dup_request_exists_wait" in line for line in answer.lines())


def test_duplicates_not_reported_by_the_kernel_is_not_converged() -> None:
    counts = ModuleCounts(DELAYED.name, requests=4, dups=0, launches=1, finit=1)
    outcome = run.judge(DELAYED, "dups", storm([0] * 4), counts)
    assert not outcome.converged and "0 duplicates reported by the kernel" in outcome.why


def test_one_result_for_all_must_be_the_expected_one() -> None:
    counts = ModuleCounts(FAILING.name, requests=4, dups=3, launches=1, finit=1)
    outcome = run.judge(FAILING, "dups", storm([0] * 4), counts)
    assert not outcome.converged and "expected 256" in outcome.why
    assert run.judge(FAILING, "dups", storm([256] * 4), counts).converged


def test_a_single_caller_is_no_storm() -> None:
    counts = ModuleCounts(DELAYED.name, requests=1, dups=0, launches=1, finit=1)
    assert not run.judge(DELAYED, "dups", storm([0]), counts).converged


def test_cpus_1_is_a_clear_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "kmod_dups.cli", "run", "--cpus", "1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "at least 2 callers" in proc.stderr and "Traceback" not in proc.stderr
