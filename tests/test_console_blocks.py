"""The console judge fails closed: a report is expected only when its whole
block is the dups warning, wherever other reports sit.

These consoles are made from real blocks (the dups WARN of
console-dups-trace.log, with PRINTK_CALLER ids added as a 6.1 kernel with
CONFIG_PRINTK_CALLER prints them), interleaved line by line with another
printer's report, as a storm's console interleaves CPUs.  The captured
consoles of the same splats from a guest are judged in
test_console_captured.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kmod_dups.qemu import console

DATA = Path(__file__).parent / "data"


def dups_block(pid: int = 66, name: str = "test_module", line: int = 159) -> list[str]:
    """The first dups WARN block of the captured console, as printed by *pid*."""
    text = (DATA / "console-dups-trace.log").read_text().splitlines()
    start = text.index(console.CUT_HERE)
    end = next(i for i in range(start, len(text)) if text[i].startswith("---[ end trace"))
    # Without the cut-here line another CPU put in the middle of it.
    block = [text[start]] + [t for t in text[start + 1:end + 1] if t != console.CUT_HERE]
    block = [t.replace("test_module", name).replace("dups.c:159", f"dups.c:{line}").replace("PID: 66", f"PID: {pid}")
             for t in block]
    return [f"[    7.{n:06d}][   T{pid}] {t}" for n, t in enumerate(block)]


def tagged(pid: int, lines: list[str]) -> list[str]:
    return [f"[    7.{n:06d}][   T{pid}] {t}" for n, t in enumerate(lines)]


def interleave(*streams: list[str]) -> str:
    out: list[str] = []
    for i in range(max(map(len, streams))):
        out += [s[i] for s in streams if i < len(s)]
    return "\n".join(out) + "\n"


LOCKDEP = [
    "======================================================",
    "WARNING: possible circular locking dependency detected",
    "6.1.192+ #2 Tainted: G           O",
    "------------------------------------------------------",
    "kmod_dups_splat/70 is trying to acquire lock:",
    "ffffffffa0203050 (splat_a){+.+.}-{3:3}, at: crashtest_splat_thread+0x60/0x90 [kmod_dups_crashtest]",
]
REFCOUNT = [
    console.CUT_HERE,
    "refcount_t: underflow; use-after-free.",
    "WARNING: CPU: 1 PID: 71 at lib/refcount.c:28 refcount_warn_saturate+0xba/0x110",
    "Call Trace:",
    " crashtest_splat_thread+0x30/0x90 [kmod_dups_crashtest]",
    "---[ end trace 0000000000000000 ]---",
]
LIST = [
    console.CUT_HERE,
    "list_del corruption, ffffc900001a7e48->next is LIST_POISON1 (dead000000000100)",
    "WARNING: CPU: 0 PID: 72 at lib/list_debug.c:53 __list_del_entry_valid+0x7b/0xc0",
    "---[ end trace 0000000000000000 ]---",
]
ASSERT_IN_DUPS = [
    console.CUT_HERE,
    "WARNING: CPU: 1 PID: 73 at kernel/module/dups.c:64 kmod_dup_request_exists_wait+0x1d2/0x210",
    "---[ end trace 0000000000000000 ]---",
]


def test_tagged_dups_blocks_are_expected_however_cpus_interleave():
    text = interleave(dups_block(66), dups_block(64), dups_block(65))
    report = console.classify(text)
    assert report.callers
    assert len(report.expected) == 3 and report.findings == []


@pytest.mark.parametrize("name,splat,what", [
    ("lockdep", LOCKDEP, "possible circular locking dependency"),
    ("refcount", REFCOUNT, "lib/refcount.c"),
    ("list", LIST, "lib/list_debug.c"),
    ("assert-in-dups", ASSERT_IN_DUPS, "dups.c:64"),
])
def test_a_splat_among_dups_warnings_is_found(name, splat, what):
    text = interleave(dups_block(66), tagged(70, splat), dups_block(64))
    report = console.classify(text)
    assert len(report.expected) == 2, name
    assert [f.kind for f in report.findings] == ["warn"] and what in report.findings[0].text


def test_a_splat_among_dups_warnings_is_found_without_caller_ids():
    untagged = [console.split_line(0, line).text for line in dups_block(66)]
    for splat in (LOCKDEP, REFCOUNT, LIST, ASSERT_IN_DUPS):
        text = "\n".join(untagged[:3] + splat + untagged[3:] + untagged) + "\n"
        report = console.classify(text)
        assert len(report.findings) == 1, splat[1]


def test_a_foreign_line_inside_a_dups_block_makes_it_unexpected():
    block = dups_block(66)
    block.insert(6, "[    7.000100][   T66] refcount_t: saturated; leaking memory.")
    report = console.classify("\n".join(block) + "\n")
    assert report.expected == []
    assert "not part of a WARN dump" in report.findings[0].why


def test_the_dups_message_must_be_the_dups_format():
    block = dups_block(66)
    block[1] = block[1].replace("module test_module", "module test_module because of x")
    assert console.classify("\n".join(block) + "\n").expected == []


def test_the_site_must_be_the_dups_warn_of_the_source():
    source = (Path(__file__).parent.parent / "kernel/generated/kernel/module/dups.c").read_text()
    sites = console.warning_sites(source)
    assert len(sites) == 1
    (site,) = sites
    right = console.classify("\n".join(dups_block(66, line=site)) + "\n", sites)
    assert len(right.expected) == 1 and right.findings == []
    wrong = console.classify("\n".join(dups_block(66, line=site - 3)) + "\n", sites)
    assert wrong.expected == [] and "is not the dups warning's site" in wrong.findings[0].why
