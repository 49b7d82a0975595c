"""kmod_dups.qemu.console: classify real guest consoles kept in tests/data.

Each console-*.log was captured from a real boot of the project's kernel by
`kmod-dups boot` (see tests/data/README.md for the command of each).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kmod_dups.qemu import console

DATA = Path(__file__).parent / "data"


def load(name: str) -> console.ConsoleReport:
    return console.classify((DATA / name).read_text(encoding="utf-8", errors="replace"))


@pytest.mark.parametrize("name,kind", [
    ("console-panic-sysrq.log", "panic"),
    ("console-oops.log", "oops"),
    ("console-bug.log", "bug"),
    ("console-rcu-stall.log", "rcu_stall"),
    ("console-hung-task.log", "hung_task"),
    ("console-warn.log", "warn"),
])
def test_each_failure_is_its_own_result(name, kind):
    report = load(name)
    assert report.worst == kind, [f.text for f in report.findings]


def test_clean_boot_has_no_findings():
    report = load("console-ok.log")
    assert report.findings == []
    assert report.guest_up and report.guest_exit == 0
    assert not report.truncated


def test_dups_trace_warnings_are_expected_not_failures():
    """Without PRINTK_CALLER ids: each dups WARN whose header lines are
    adjacent is expected; the one whose "cut here" another CPU's dump split
    off cannot be attributed, and fails closed."""
    text = (DATA / "console-dups-trace.log").read_text()
    report = console.classify(text)
    # 8 threads asked for one module at once: the first loads it, 7 are dups.
    assert text.count("module-autoload: duplicate request for module test_module") == 7
    assert not report.callers
    assert len(report.expected) == 6
    assert all("kernel/module/dups.c" in f.text for f in report.expected)
    assert [f.line for f in report.findings] == [392]
    assert "cut here and the dups message" in report.findings[0].why
    assert report.guest_exit == 0


def test_unrelated_warning_next_to_dups_ones_still_counts():
    text = (DATA / "console-dups-trace.log").read_text() + (DATA / "console-warn.log").read_text()
    report = console.classify(text)
    assert report.worst == "warn" and report.expected


def test_oops_page_fault_is_not_a_bug():
    report = load("console-oops.log")
    assert "bug" not in report.kinds
    assert any(f.kind == "oops" and "[#1]" in f.text for f in report.findings)


def test_bug_also_shows_its_oops():
    assert load("console-bug.log").kinds[:2] == ["bug", "oops"]


def test_panic_console_is_cut_but_says_so():
    report = load("console-panic-sysrq.log")
    assert report.guest_up and report.guest_exit is None


def test_killed_boot_is_truncated():
    report = load("console-truncated.log")
    assert report.truncated and report.findings == [] and not report.guest_up


@pytest.mark.parametrize("line,expected", [
    ("[   12.345678] Kernel panic - not syncing: Fatal exception", "panic"),
    ("<0>[    1.0][    T1] Kernel panic - not syncing: x", "panic"),
    ("watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [swapper/3:0]", "bug"),
    ("BUG: sleeping function called from invalid context at mm/slab.h:1", "bug"),
    ("BUG: unable to handle page fault for address: 0000000000000008", None),
    ("BUG: kernel NULL pointer dereference, address: 0000000000000000", None),
    ("general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP", "oops"),
    ("rcu: INFO: rcu_preempt self-detected stall on CPU", "rcu_stall"),
    ("INFO: task kworker/0:1:12 blocked for more than 122 seconds.", "hung_task"),
    ("WARNING: CPU: 1 PID: 77 at kernel/kmod.c:12 f+0x1/0x2", "warn"),
    ("WARNING: possible circular locking dependency detected", "warn"),
    ("module-autoload: duplicate request for module xfs", None),
    ("random: crng init done", None),
])
def test_single_lines(line, expected):
    report = console.classify(line + "\n")
    assert report.worst == expected


def test_location_alone_is_not_the_dups_warning():
    text = ("------------[ cut here ]------------\n"
            "WARNING: CPU: 0 PID: 5 at kernel/module/dups.c:183 kmod_dup_request_exists_wait+0x1/0x2\n")
    report = console.classify(text)
    assert report.expected == [] and report.worst == "warn"


def test_cpu_lists():
    assert console.parse_cpu_list("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert len(console.parse_cpu_list("0-447")) == 448
    assert console.parse_cpu_list("") == []
