"""`kmod-dups run`: the verdict logic on its own, and the whole main job
for real at a small vCPU count under TCG (build both kernels, boot, storm,
trace): the feature-on kernel converges and the control does not."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kmod_dups import run
from kmod_dups.dupstrace import ModuleCounts
from kmod_dups.guest_storm import CallResult, GuestPaths, StormRun

DELAYED, MISSING = run.TARGETS[0], run.TARGETS[2]


def storm(rets: list[int]) -> StormRun:
    out = StormRun(id="s", name="m", mode="wait", lead="none", threads=0, rounds=1, lead_delay_ms=0,
                   options="", rc=0, ms=10)
    out.results = [CallResult(cpu=i, round=1, mode="wait", ret=r, latency_us=5) for i, r in enumerate(rets)]
    return out


def test_converged_needs_one_launch_one_finit_one_result() -> None:
    counts = ModuleCounts(DELAYED.name, requests=4, dups=3, launches=1, finit=1, loads=1)
    assert run.judge(DELAYED, "dups", storm([0, 0, 0, 0]), counts).converged
    many = ModuleCounts(DELAYED.name, requests=4, launches=4, finit=4, finit_failed=3, loads=1)
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
                                     finit_failed=447, wasted_bytes=447 * 529_000))
    kernel = run.KernelRun("dups", "b", 448, "0-447", "g", "ok", 61.5, [outcome, control], [], 9000, 10200)
    lines = run.table([kernel]).splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].split()[-1] == "yes" and lines[2].split()[-1] == "ctl"
    assert "225.5M" in lines[2]


def test_guest_script_runs_the_tracer_around_the_storms() -> None:
    text = run.guest_script(GuestPaths(root="/r", release="6.1.192+"), run.TARGETS)
    assert text.index("kds_trace_start\n") < text.index("kds_storm delayed") < text.index("kds_trace_stop\n")
    assert "-m kmod_dups.dupstrace -j" in text


def test_parse_trace_reassembles_the_json() -> None:
    data = {"modules": [{"module": "m", "requests": 2}], "vmalloc_peak_kb": 5}
    text = "noise\n" + "\n".join(f"KDS tracejson {line}" for line in json.dumps(data, indent=2).splitlines())
    assert run.parse_trace(text) == data
    assert run.parse_trace("nothing here") == {}


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
