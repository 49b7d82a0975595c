"""dupstrace's counts in a real guest (the feature-on 6.1 kernel, 4 vCPUs,
TCG), each against what the kernel really did:

- DUPS with more waiters than the kernel's default kretprobe instances
  (max(10, 2 x CPUs) = 10 here): 32 callers, 31 duplicates.  The old
  kretprobe lost the returns past 10 and never said so.
- LIVE for a module whose init fails: 0.  The old LOADS counted it (the
  module:module_load tracepoint fires before its init runs).
- DHELD/FHELD: the failing module's one load is an init failure, not a
  duplicate: its bytes are FHELD, image and layouts (more than the file).
- A real alias request, fs-xfs: its row shows the modprobe it launched
  and what that modprobe loaded (xfs and what xfs needs), which the old
  rows, keyed by request string on one side and module name on the
  other, could not join.
- The timeline (-e) of the duplicate burst.

And on the control kernel (the same tree, feature off), the same storms:
concurrent loads refused by add_unformed_module() (EEXIST, or EBUSY when
the first load failed) are DUPF with their bytes in DHELD, apart from the
init failures (ENODEV, FHELD).  With all 50 modprobe slots held (the
wrapper holds kmod_dups_hold_* modprobes), requests time out with -ETIME:
REQ still counts each (the series moves module:module_request before the
slot wait even with the option off, so the control kernel's tracepoint
sees them; a stock tree's would not, and dupstrace counts them at
__request_module()'s entry instead, which needs a build without the series).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kmod_dups import kmods, run, semantics
from kmod_dups.cache import runs_dir
from kmod_dups.guest import storm as guest_storm
from kmod_dups.guest.session import run_script
from kmod_dups.guest.storm import GuestPaths, Storm
from kmod_dups.kernel_abi import ETIME

pytestmark = pytest.mark.slow

CPUS = 4
CROWD = 32  # > max(10, 2 x CPUS): the default kretprobe would lose returns
ALIAS = "fs-xfs"


def trace_storms(build: Path, name: str) -> dict:
    root = kmods.prepare(build)
    paths = GuestPaths(root=str(root.root), release=root.release)
    storms = [Storm(id="crowd", name=kmods.TARGET, threads=CROWD),
              Storm(id="failing", name=kmods.FAIL, threads=CPUS),
              Storm(id="alias", name=ALIAS, threads=CPUS)]
    script = run.traced_script(paths, storms, [kmods.TARGET, "xfs"], trace_args="-e")
    guest = run_script(build, CPUS, script, runs_dir(), name=name)
    assert guest.result == "ok", f"guest ended {guest.result}; see {guest.folder}"
    trace = run.parse_trace(guest.output)
    assert trace, f"no dupstrace document; see {guest.folder}/output.log"
    return {"trace": trace, "counts": {m.module: m for m in trace.modules},
            "storms": guest_storm.parse_output(guest.output).storms, "lines": run.trace_lines(guest.output),
            "folder": guest.folder}


@pytest.fixture(scope="module")
def traced(default_build: Path) -> dict:
    return trace_storms(default_build, "dupstrace-counts")


@pytest.fixture(scope="module")
def control(control_build: Path) -> dict:
    return trace_storms(control_build, "dupstrace-counts-control")


SLOT_CALLERS = 8


@pytest.fixture(scope="module")
def slots_control(control_build: Path) -> dict:
    """dupstrace -m kmod_dups_target on the control kernel: 8 requests for
    it while every modprobe slot is held, then 4 concurrent loads of the
    failing module (not traced), then one load of the target."""
    root = kmods.prepare(control_build)
    paths = GuestPaths(root=str(root.root), release=root.release)
    body = ["kds_setup", "kds_trace_start", f"kds_slots_full etime {SLOT_CALLERS}",
            *guest_storm.storm_lines(Storm(id="others", name=kmods.FAIL, threads=CPUS)),
            *guest_storm.storm_lines(Storm(id="one", name=kmods.TARGET, threads=1)),
            "kds_trace_stop", f"kds_unload {kmods.TARGET}", "kds_teardown"]
    variables = {"KDS_PYTHON": sys.executable, "KDS_TRACE_TICKS": run.TRACE_READY_S * 10,
                 "KDS_TRACE_ARGS": f"-m {kmods.TARGET}", "KDS_TARGET": kmods.TARGET, **semantics.HOLD_VARIABLES}
    script = (guest_storm.preamble(paths, variables_=variables, libraries=["trace", "semantics"]) + "\n"
              + "\n".join(body) + "\n")
    guest = run_script(control_build, CPUS, script, runs_dir(), name="dupstrace-etime-control")
    assert guest.result == "ok", f"guest ended {guest.result}; see {guest.folder}"
    trace = run.parse_trace(guest.output)
    assert trace, f"no dupstrace document; see {guest.folder}/output.log"
    return {"trace": trace, "counts": {m.module: m for m in trace.modules},
            "storms": guest_storm.parse_output(guest.output).storms, "folder": guest.folder}


def test_control_requests_without_a_slot_are_counted(slots_control: dict) -> None:
    """Every slot held: 8 requests get -ETIME after the slot timeout and
    REQ counts them, at the tracepoint the series put before the slot
    wait (so none is left for the entry probe's unslotted count)."""
    storm = slots_control["storms"]["etime"]
    assert len(storm.results) == SLOT_CALLERS and storm.rets == {-ETIME}, storm.rets
    target = slots_control["counts"][kmods.TARGET]
    assert (target.requests, target.unslotted) == (SLOT_CALLERS + 1, 0)
    assert (target.launches, target.finit, target.live) == (1, 1, 1)


def test_module_filter_keeps_other_loads_out_of_the_inflight_peak(slots_control: dict) -> None:
    """-m: the peak is the one traced load's (its image and layouts), not
    the failing module's four concurrent loads (each as big as it)."""
    storm = slots_control["storms"]["others"]
    assert len(storm.results) == CPUS and storm.launches == CPUS
    assert set(slots_control["counts"]) == {kmods.TARGET}
    target = slots_control["counts"][kmods.TARGET]
    peak = slots_control["trace"].inflight_peak_bytes
    assert target.read_bytes <= peak < 3 * target.read_bytes, (peak, target.read_bytes)


def test_nothing_was_lost(traced: dict) -> None:
    assert traced["trace"].missed == {}
    assert not [n for n in traced["trace"].untraced if "cannot attach" in n], traced["trace"].untraced


def test_dups_counts_every_waiter_past_the_default_instances(traced: dict) -> None:
    storm = traced["storms"]["crowd"]
    assert len(storm.results) == CROWD and storm.rets == {0}
    target = traced["counts"][kmods.TARGET]
    assert (target.requests, target.dups, target.launches) == (CROWD, CROWD - 1, 1)
    # the kernel's own count of duplicate reports agrees
    assert storm.dups == CROWD - 1


def test_a_module_whose_init_fails_is_not_live(traced: dict) -> None:
    fail = traced["counts"][kmods.FAIL]
    assert (fail.finit, fail.finit_failed, fail.live) == (1, 1, 0)
    assert fail.failed_dup == 0 and fail.dup_held_bytes == 0
    # what it held: the image it read and the layouts allocated for it
    assert fail.fail_held_bytes > fail.read_bytes > 512 * 1024
    assert traced["trace"].errnos.get("ENODEV") == 1


def test_an_alias_request_joins_the_loads_of_its_modprobe(traced: dict) -> None:
    alias = traced["counts"][ALIAS]
    assert (alias.requests, alias.dups, alias.launches) == (CPUS, CPUS - 1, 1)
    assert alias.finit == 0  # no module is called fs-xfs
    assert alias.via_finit >= 1 and alias.via_live >= 1
    xfs = traced["counts"]["xfs"]
    assert (xfs.finit, xfs.live) == (1, 1)
    origins = {o.origin: o for o in traced["trace"].origins}
    total = sum(c.finit for name, c in traced["counts"].items() if name != ALIAS)
    assert origins["kernel modprobe"].finit == total


def test_inflight_peak_is_exact_and_at_least_one_load(traced: dict) -> None:
    target = traced["counts"][kmods.TARGET]
    assert traced["trace"].inflight_peak_bytes >= target.read_bytes > 0


def test_the_timeline_shows_the_burst(traced: dict) -> None:
    lines = [line for line in traced["lines"] if not line.startswith("{")]
    requests = [line for line in lines if f"request_module({kmods.TARGET})" in line]
    waited = [line for line in lines if f"duplicate {kmods.TARGET} waited" in line]
    launches = [line for line in lines if line.endswith(f"modprobe -q -- {kmods.TARGET}")]
    assert (len(requests), len(waited), len(launches)) == (CROWD, CROWD - 1, 1)
    assert any(f"finit_module({kmods.FAIL}) = -ENODEV" in line for line in lines)


def test_control_concurrent_loads_are_duplicates_and_init_failures_are_not(control: dict) -> None:
    assert control["trace"].missed == {}
    target = control["counts"][kmods.TARGET]
    assert (target.requests, target.launches, target.live) == (CROWD, CROWD, 1)
    # modprobe skips a module it finds live; every other call was refused
    assert target.finit_failed == target.failed_dup == target.finit - 1 >= 1
    assert target.dup_held_bytes > target.failed_dup * 512 * 1024 and target.fail_held_bytes == 0
    fail = control["counts"][kmods.FAIL]
    assert fail.live == 0 and fail.finit_failed == fail.finit
    enodev = control["trace"].errnos.get("ENODEV", 0)
    assert enodev >= 1 and fail.failed_dup + enodev == fail.finit
    assert fail.fail_held_bytes > 0
    # more than one load in flight at once
    assert control["trace"].inflight_peak_bytes > 2 * target.read_bytes / target.finit
