"""The console judge on real consoles of a debug kernel (lockdep, KASAN,
DEBUG_LIST, PRINTK_CALLER): 24 kthreads request one missing module at once
with module.enable_dups_trace=1, so 23 dups WARNs are printed, and the middle
caller raises one more report just before its own request.

Each capture is real (tests/data/README.md has the command).  Lockdep
kernels add lines to every WARN dump (irq event stamps, broken module-list
continuations, bare module addresses in the stack), so only real captures
show whether a genuine dups block is still read as expected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kmod_dups import rig
from kmod_dups.codegen.render import KernelApis
from kmod_dups.qemu import console

DATA = Path(__file__).parent / "data"
# The hardened dups.c the debug kernel carried at capture (the second
# version, which warned for every duplicate): its WARN() site.
CAPTURED_WITH = DATA / "pinned/hardened-v2/dups.c.j2"
CAPTURED_SITES = frozenset({181})
DUPS_WARNINGS = 23


def classify(name: str, sites=CAPTURED_SITES) -> console.ConsoleReport:
    return console.classify((DATA / name).read_text(encoding="utf-8"), sites)


def test_captured_site_is_the_captured_sources():
    """The site is the evidence: it must be where the captured kernel's
    dups.c had its WARN()."""
    apis = KernelApis(has_wait_for_completion_state=True)
    assert console.warning_sites(rig.render_pinned(CAPTURED_WITH, apis)) == CAPTURED_SITES


def test_dups_warnings_alone_are_expected():
    report = classify("console-splat-none.log")
    assert report.callers
    assert len(report.expected) == DUPS_WARNINGS
    assert report.findings == []
    # insmod's own status: the crash-test module's init returns -EAGAIN once
    # its callers are done, so that it never stays loaded.
    assert report.guest_exit == 1


@pytest.mark.parametrize("name,marker", [
    ("console-splat-lockdep.log", "WARNING: possible circular locking dependency detected"),
    ("console-splat-refcount.log", "at lib/refcount.c:"),
    ("console-splat-list.log", "at lib/list_debug.c:"),
])
def test_the_splat_among_dups_warnings_is_found(name, marker):
    report = classify(name)
    assert [f.kind for f in report.findings] == ["warn"]
    assert marker in report.findings[0].text
    # The dups warnings around it are still read as expected.
    assert len(report.expected) == DUPS_WARNINGS


@pytest.mark.parametrize("name", ["console-splat-lockdep.log", "console-splat-refcount.log",
                                  "console-splat-list.log"])
def test_splat_lies_inside_the_storm(name):
    """The capture is worth something only if dups lines surround the splat."""
    lines = (DATA / name).read_text().splitlines()
    dups = [n for n, text in enumerate(lines, 1) if "module-autoload: duplicate request" in text]
    splat = classify(name).findings[0].line
    assert dups[0] < splat < dups[-1]


def test_wrong_site_flags_every_dups_warning():
    report = classify("console-splat-none.log", frozenset({161}))
    assert report.expected == []
    assert len(report.findings) == DUPS_WARNINGS
    assert all("is not the dups warning's site" in f.why for f in report.findings)


def test_a_line_from_another_report_inside_a_dups_block_is_found():
    """Put the refcount message into the same printer's dups block."""
    lines = (DATA / "console-splat-none.log").read_text().splitlines()
    first = next(i for i, text in enumerate(lines) if "kernel/module/dups.c:181" in text)
    caller = lines[first].split("]")[1] + "]"
    lines.insert(first + 3, f"[   35.500000]{caller} refcount_t: underflow; use-after-free.")
    report = console.classify("\n".join(lines) + "\n", CAPTURED_SITES)
    assert len(report.expected) == DUPS_WARNINGS - 1
    assert "not part of a WARN dump" in report.findings[0].why
