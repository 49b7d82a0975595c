"""Read a guest's console: what went wrong in the kernel, if anything.

``classify(text)`` finds, in a captured serial console (or dmesg), each of:

=========  ==============================================================
panic      ``Kernel panic - not syncing: ...``
bug        ``kernel BUG at file:line!``, ``BUG: ...`` reports (sleeping
           function called from invalid context, soft lockup, KASAN...)
           and ``UBSAN: ...``
oops       a die() header: ``Oops: 0002 [#1]``, ``general protection
           fault, ...: 0000 [#1]``, ``invalid opcode: 0000 [#1]``
rcu_stall  ``rcu: INFO: rcu_sched detected stalls on CPUs/tasks`` or
           ``... self-detected stall on CPU``
hung_task  ``INFO: task NAME:PID blocked for more than N seconds.``
warn       ``WARNING: CPU: ...`` (WARN()/WARN_ON()) and the other
           ``WARNING:`` reports (lockdep, RCU), unless expected
=========  ==============================================================

The one expected report is the dups warning that
``module.enable_dups_trace=1`` turns into a WARN with a stack.  A WARNING
line is expected only when its whole block is that warning and nothing else:

    ------------[ cut here ]------------
    module-autoload: duplicate request for module NAME
    (the hardened dups.c: "module: duplicate request for module NAME")
    WARNING: CPU: n PID: p at kernel/module/dups.c:LINE kmod_dup_request_exists_wait+0x../0x..
    ... register and stack dump ...
    ---[ end trace ... ]---

that is, the three header lines in this order with nothing between them, the
site in dups.c's ``kmod_dup_request_exists_wait()`` (at one of *dups_sites*,
the source lines of the dups WARN(), when the caller knows them), and, up to
``end trace``, only the lines a WARN dump is made of.  Any other report is a
failure wherever it sits, next to dups lines or not: a lockdep splat, a
refcount or list-corruption WARN, or a ``lockdep_assert_held()`` WARN inside
dups.c (right file, wrong site, no dups message).

Storm consoles interleave the reports of many CPUs.  With
``CONFIG_PRINTK_CALLER`` (``boot.config`` sets it) every line carries its
printer (``[T123]`` a task, ``[C4]`` a CPU in interrupt context), and each
printer's lines are read as a stream of their own, so a block is checked
line by line however the CPUs interleave.  A console without caller ids is
one stream: the header must still be adjacent (a dups WARN whose header
another CPU's line splits is a failure, never the other way round), and the
dump lines cannot be attributed, so only the header and site are checked.

The console is *truncated* when it stops without the guest's own end line
(``kmod-dups-guest: exit=N``, see ``guestscript``) and without the kernel's
``---[ end Kernel panic`` line.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

# Most severe first: the first kind found in this order is a run's result.
KINDS = ("panic", "bug", "oops", "rcu_stall", "hung_task", "warn")

# printk prefixes: "<4>", "[   12.345678]", "[    T1]" / "[  C12]" (PRINTK_CALLER).
_PREFIX = re.compile(r"^(?:<\d+>)?(?:\[\s*\d+\.\d+\]\s?)?(?:\[\s*([TC]\d+)\]\s?)?")

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("panic", re.compile(r"^Kernel panic - not syncing:")),
    ("bug", re.compile(r"^kernel BUG at \S+")),
    # Page faults print "BUG: unable to handle..." / "BUG: kernel NULL pointer
    # dereference" before their die() header: those are oopses, not BUGs.
    ("bug", re.compile(r"^(?:\w+: )?BUG: (?!unable to handle |kernel NULL pointer dereference)")),
    ("bug", re.compile(r"^UBSAN: ")),
    ("oops", re.compile(r"^[\w ,()-]*: [0-9a-f]{4} \[#\d+\]")),
    ("rcu_stall", re.compile(r"^(?:rcu: )?INFO: \S+ (?:detected stalls on CPUs/tasks|self-detected stall on CPU)")),
    ("hung_task", re.compile(r"^INFO: task \S+:\d+ blocked for more than \d+ seconds")),
    ("warn", re.compile(r"^WARNING: ")),
    # lockdep's report of a lock without a static key is an INFO, not a WARNING.
    ("warn", re.compile(r"^INFO: trying to register non-static key")),
)

DUPS_FUNCTION = "kmod_dup_request_exists_wait"
_DUPS_MESSAGE = re.compile(r"^(?:module-autoload|module): duplicate request for module [\w.-]+$")
_DUPS_SITE = re.compile(r"^WARNING: CPU: \d+ PID: \d+ at kernel/module/dups\.c:(\d+) "
                        rf"{DUPS_FUNCTION}\+0x[0-9a-f]+/0x[0-9a-f]+$")
_DUPS_WARN_SOURCE = re.compile(r"\bWARN\(\s*1\s*,\s*(?:\"module-autoload: |pr_fmt\(\")duplicate request for module %s\\n\"")

# What __warn() and show_regs() print between the WARNING line and the end
# of the block on x86_64: anything else in a dups block is not the dups
# warning.
_DUMP_LINE = re.compile(
    r"^(?:Modules linked in:.*|CPU: \d+ PID: \d+ Comm: .*|Hardware name: .*|RIP: .*|Code: .*|RSP: .*"
    r"|R[A-Z0-9]{2}: [0-9a-f]{16}(?: R[A-Z0-9]{2}: [0-9a-f]{16})*|[A-Z]S: .*|CS: .*|CR2: .*|DR[0-7]: .*"
    r"|PKRU: [0-9a-f]+|Call Trace:|</?(?:TASK|IRQ|NMI|SOFTIRQ)>|\?? ?[\w.]+\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[\w+\])?|\? 0x[0-9a-f]+"
    r"|irq event stamp: \d+|(?:hard|soft)irqs last +(?:en|dis)abled at \(\d+\): .*"
    r"|Tainted: \[.*|\(unreliable\)|\.\.\.)$")
# The rest of "Modules linked in:" when another CPU's printk broke the
# continuation: module names with their taint flags, nothing else.
_MODULES_REST = re.compile(r"^[\w-]+(?:\([A-Z+-]+\))?(?: [\w-]+(?:\([A-Z+-]+\))?)*$")
_END_TRACE = re.compile(r"^---\[ end trace [0-9a-f]+ \]---$")

CUT_HERE = "------------[ cut here ]------------"
GUEST_EXIT = re.compile(r"kmod-dups-guest: exit=(\d+)")
GUEST_UP = re.compile(r"kmod-dups-guest: up uptime=([\d.]+) online=(\S*)")
PANIC_END = "---[ end Kernel panic"


@dataclass(frozen=True)
class Finding:
    kind: str
    line: int  # 1-based line number in the text
    text: str  # the line, printk prefix removed
    why: str = ""  # for a WARNING that looked like the dups one: why it is not

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"kind": self.kind, "line": self.line, "text": self.text}
        if self.why:
            data["why"] = self.why
        return data


@dataclass
class ConsoleReport:
    findings: list[Finding] = field(default_factory=list)
    expected: list[Finding] = field(default_factory=list)
    guest_up: bool = False
    guest_exit: int | None = None
    panic_end: bool = False
    callers: bool = False  # lines carry PRINTK_CALLER ids: blocks were read per printer

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


@dataclass(frozen=True)
class Line:
    number: int  # 1-based
    caller: str | None  # "T123" / "C4" with PRINTK_CALLER, else None
    text: str  # printk prefix removed


def strip_prefix(line: str) -> str:
    return _PREFIX.sub("", line.rstrip("\r\n")).strip()


def split_line(number: int, raw: str) -> Line:
    raw = raw.rstrip("\r\n")
    match = _PREFIX.match(raw)
    caller = match.group(1) if match else None
    return Line(number, caller, raw[match.end():].strip() if match else raw.strip())


def warning_sites(dups_c: str) -> frozenset[int]:
    """The source lines of dups.c's WARN(1, "... duplicate request ...") calls:
    where a dups warning's WARNING line must point."""
    return frozenset(n for n, text in enumerate(dups_c.splitlines(), 1) if _DUPS_WARN_SOURCE.search(text))


def _not_dups_warning(stream: list[Line], at: int, sites: Collection[int] | None, callers: bool) -> str:
    """Why the WARNING at stream[at] is not the dups warning ('' when it is)."""
    site = _DUPS_SITE.match(stream[at].text)
    if site is None:
        return "not raised in dups.c's kmod_dup_request_exists_wait()"
    if sites is not None and int(site.group(1)) not in sites:
        return f"dups.c:{site.group(1)} is not the dups warning's site ({', '.join(map(str, sorted(sites)))})"
    if at < 2 or not _DUPS_MESSAGE.match(stream[at - 1].text) or stream[at - 2].text != CUT_HERE:
        return "its block does not open with cut here and the dups message"
    if not callers:
        return ""
    previous = stream[at].text
    for line in stream[at + 1:]:
        if _END_TRACE.match(line.text):
            return ""
        # An empty line is a bare continuation newline: it carries nothing.
        broken_modules = previous.startswith("Modules linked in:") and _MODULES_REST.match(line.text)
        if line.text and not broken_modules and not _DUMP_LINE.match(line.text):
            return f"line {line.number} of its block is not part of a WARN dump: {line.text[:60]}"
        previous = line.text
    return ""


def classify(text: str, dups_sites: Collection[int] | None = None) -> ConsoleReport:
    """Every failure report in *text*, in order, plus the guest's markers.

    *dups_sites*: the source lines of the dups WARN() in the dups.c the
    kernel was built from (``warning_sites``); None accepts any line of
    kmod_dup_request_exists_wait().
    """
    lines = [split_line(n, raw) for n, raw in enumerate(text.splitlines(), 1)]
    report = ConsoleReport(callers=any(line.caller for line in lines))
    streams: dict[str | None, list[Line]] = {}
    position: list[tuple[list[Line], int]] = []
    for line in lines:
        stream = streams.setdefault(line.caller if report.callers else None, [])
        position.append((stream, len(stream)))
        stream.append(line)
    for line, (stream, at) in zip(lines, position):
        if not line.text:
            continue
        match = GUEST_EXIT.search(line.text)
        if match:
            report.guest_exit = int(match.group(1))
            continue
        if GUEST_UP.search(line.text):
            report.guest_up = True
            continue
        if PANIC_END in line.text:
            report.panic_end = True
        for kind, pattern in _PATTERNS:
            if pattern.search(line.text):
                why = _not_dups_warning(stream, at, dups_sites, report.callers) if kind == "warn" else ""
                if kind == "warn" and not why:
                    report.expected.append(Finding(kind, line.number, line.text))
                else:
                    looked_like = kind == "warn" and DUPS_FUNCTION in line.text
                    report.findings.append(Finding(kind, line.number, line.text, why if looked_like else ""))
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
