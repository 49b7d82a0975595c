"""Read a guest's console: what went wrong in the kernel, if anything.

``classify(text)`` finds, in a captured serial console (or dmesg), each of:

=========  ==============================================================
panic      ``Kernel panic - not syncing: ...``
bug        ``kernel BUG at file:line!`` and ``BUG: ...`` reports
           (sleeping function called from invalid context, soft lockup...)
oops       a die() header: ``Oops: 0002 [#1]``, ``general protection
           fault, ...: 0000 [#1]``, ``invalid opcode: 0000 [#1]``
rcu_stall  ``rcu: INFO: rcu_sched detected stalls on CPUs/tasks`` or
           ``... self-detected stall on CPU``
hung_task  ``INFO: task NAME:PID blocked for more than N seconds.``
warn       ``WARNING: CPU: ...`` (WARN()/WARN_ON()) and other ``WARNING:``
           reports (lockdep), unless expected
=========  ==============================================================

Expected warnings are WARN()s this project provokes on purpose: the dups
warning ``module-autoload: duplicate request for module NAME`` that
``module.enable_dups_trace=1`` turns into a WARN with a stack.  They are
listed separately and are not failures.

The console is *truncated* when it stops without the guest's own end line
(``kmod-dups-guest: exit=N``, see ``guestscript``) and without the kernel's
``---[ end Kernel panic`` line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Most severe first: the first kind found in this order is a run's result.
KINDS = ("panic", "bug", "oops", "rcu_stall", "hung_task", "warn")

# printk prefixes: "<4>", "[   12.345678]", "[    T1]" / "[  C12]" (PRINTK_CALLER).
_PREFIX = re.compile(r"^(?:<\d+>)?(?:\[\s*\d+\.\d+\]\s?)?(?:\[\s*[TC]\d+\]\s?)?")

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("panic", re.compile(r"^Kernel panic - not syncing:")),
    ("bug", re.compile(r"^kernel BUG at \S+")),
    # Page faults print "BUG: unable to handle..." / "BUG: kernel NULL pointer
    # dereference" before their die() header: those are oopses, not BUGs.
    ("bug", re.compile(r"^(?:\w+: )?BUG: (?!unable to handle |kernel NULL pointer dereference)")),
    ("oops", re.compile(r"^[\w ,()-]*: [0-9a-f]{4} \[#\d+\]")),
    ("rcu_stall", re.compile(r"^(?:rcu: )?INFO: \S+ (?:detected stalls on CPUs/tasks|self-detected stall on CPU)")),
    ("hung_task", re.compile(r"^INFO: task \S+:\d+ blocked for more than \d+ seconds")),
    ("warn", re.compile(r"^WARNING: ")),
)

DUPS_WARNING = r"module-autoload: duplicate request for module"
DEFAULT_EXPECTED_WARNINGS = (DUPS_WARNING, r"kernel/module/dups\.c:\d+")

CUT_HERE = "------------[ cut here ]------------"
GUEST_EXIT = re.compile(r"kmod-dups-guest: exit=(\d+)")
GUEST_UP = re.compile(r"kmod-dups-guest: up uptime=([\d.]+) online=(\S*)")
PANIC_END = "---[ end Kernel panic"


@dataclass(frozen=True)
class Finding:
    kind: str
    line: int  # 1-based line number in the text
    text: str  # the line, printk prefix removed

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "line": self.line, "text": self.text}


@dataclass
class ConsoleReport:
    findings: list[Finding] = field(default_factory=list)
    expected: list[Finding] = field(default_factory=list)
    guest_up: bool = False
    guest_exit: int | None = None
    panic_end: bool = False

    @property
    def kinds(self) -> list[str]:
        seen = {f.kind for f in self.findings}
        return [kind for kind in KINDS if kind in seen]

    @property
    def worst(self) -> str | None:
        kinds = self.kinds
        return kinds[0] if kinds else None

    @property
    def truncated(self) -> bool:
        return self.guest_exit is None and not self.panic_end


def strip_prefix(line: str) -> str:
    return _PREFIX.sub("", line.rstrip("\r\n")).strip()


def _is_expected_warn(lines: list[str], index: int, expected: tuple[re.Pattern[str], ...]) -> bool:
    """Is the WARNING at *index* one of the expected ones?

    WARN(1, fmt) prints ``cut here``, then the message, then the
    ``WARNING: CPU: n PID: p at file:line symbol`` line; look at the
    WARNING line and back to its ``cut here`` (a few lines at most).
    """
    window = [lines[index]]
    for back in range(index - 1, max(index - 6, -1), -1):
        if lines[back] == CUT_HERE:
            break
        window.append(lines[back])
    return any(pattern.search(text) for pattern in expected for text in window)


def classify(text: str, expected_warnings: tuple[str, ...] = DEFAULT_EXPECTED_WARNINGS) -> ConsoleReport:
    """Every failure report in *text*, in order, plus the guest's markers."""
    expected = tuple(re.compile(p) for p in expected_warnings)
    lines = [strip_prefix(raw) for raw in text.splitlines()]
    report = ConsoleReport()
    for index, line in enumerate(lines):
        if not line:
            continue
        match = GUEST_EXIT.search(line)
        if match:
            report.guest_exit = int(match.group(1))
            continue
        if GUEST_UP.search(line):
            report.guest_up = True
            continue
        if PANIC_END in line:
            report.panic_end = True
        for kind, pattern in _PATTERNS:
            if pattern.search(line):
                finding = Finding(kind, index + 1, line)
                if kind == "warn" and _is_expected_warn(lines, index, expected):
                    report.expected.append(finding)
                else:
                    report.findings.append(finding)
                break
    return report


def parse_cpu_list(text: str) -> list[int]:
    """``0-3,8,10-11`` (sysfs cpu list) -> ``[0, 1, 2, 3, 8, 10, 11]``."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        if "-" in part:
            first, last = part.split("-", 1)
            cpus.extend(range(int(first), int(last) + 1))
        else:
            cpus.append(int(part))
    return cpus
