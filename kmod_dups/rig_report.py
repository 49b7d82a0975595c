"""Reading a run of the userspace rig (kernel/rig/): the ``RIG ...`` lines the
driver prints on stdout, and what the sanitizers and the rig's own debug
checks print on stderr, folded into one typed result."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

CheckStatus = Literal["pass", "fail"]
Category = Literal["uaf", "race", "lockdep", "leak", "undefined", "crash", "other"]

_RIG_LINE = re.compile(r"^RIG (?P<kind>[a-z]+)(?P<fields>(?: .*)?)$")
_FIELD = re.compile(r'([\w.-]+)=("(?:[^"\\]|\\.)*"|\S*)')
_ASAN_HEAD = re.compile(r"^==\d+==ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer): (\S+)")
_TSAN_HEAD = re.compile(r"^WARNING: ThreadSanitizer: (.+?) \(pid=\d+\)")
_UBSAN = re.compile(r"^(\S+:\d+:\d+): runtime error: (.*)$")
_FRAME = re.compile(r"^\s+#\d+ (?:0x[0-9a-f]+ in )?(\S+)")
_RIG_BUG = re.compile(r"^\[rig\] BUG: (\w+): (.*)$")
_TSAN_ACCESS = re.compile(r"^  (Previous )?(atomic )?(read|write) of size", re.I)
_POISON_POINTER = "0x6b6b6b6b6b6b6b6b"

# Frames that mean "this access is the free itself" in a race report.
_FREE_FRAMES = {"free", "__interceptor_free", "kfree"}


@dataclass(frozen=True)
class Check:
    """One of the driver's checks, as its summary line reported it."""

    name: str
    status: CheckStatus
    failures: int
    what: str = ""
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class SanitizerReport:
    """One report of ASan, LSan, TSan or UBSan."""

    tool: str
    kind: str  # "heap-use-after-free", "data race", "member access within misaligned address", ...
    headline: str
    frames: tuple[str, ...]  # function names, in the order the report lists them
    touches_free: bool  # one of the racing accesses is free()/kfree() itself

    @property
    def category(self) -> Category:
        kind = self.kind.lower()
        if "use-after-free" in kind or "double-free" in kind or self.touches_free:
            return "uaf"
        if self.tool == "UndefinedBehaviorSanitizer" and _POISON_POINTER in self.headline:
            return "uaf"  # walked through a poisoned (freed) pointer
        if kind == "segv":
            return "crash"
        if "data race" in kind:
            return "race"
        if "lock-order-inversion" in kind or "deadlock" in kind:
            return "lockdep"
        if self.tool == "LeakSanitizer":
            return "leak"
        if self.tool == "UndefinedBehaviorSanitizer":
            return "undefined"
        return "other"

    def short(self) -> str:
        where = next((f for f in self.frames if not f.startswith(("__interceptor", "__tsan", "__asan"))
                      and f not in ("memset", "memcpy", "pthread_mutex_lock", "pthread_mutex_unlock")), "?")
        return f"{self.tool}: {self.kind} in {where}"


@dataclass
class RigResult:
    """Everything one run of a rig binary said."""

    command: list[str]
    returncode: int
    wall_s: float
    timed_out: bool = False
    config: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)
    slots: dict[str, float] = field(default_factory=dict)  # the "slots" scenario's figures
    checks: dict[str, Check] = field(default_factory=dict)
    streamed: dict[str, list[str]] = field(default_factory=dict)  # "RIG fail" lines, as they came
    result_status: str | None = None  # the final "RIG result status=..." if the run got there
    crash_signal: int | None = None
    sanitizer_reports: list[SanitizerReport] = field(default_factory=list)
    rig_bugs: list[str] = field(default_factory=list)
    log_dir: str | None = None

    @property
    def completed(self) -> bool:
        return self.result_status is not None

    @property
    def failed_checks(self) -> list[str]:
        """Names of what failed: the driver's checks, plus ``uaf``, ``race``,
        ``leak`` ... for sanitizer reports, ``crash`` and ``hang``."""
        failed = {name for name, check in self.checks.items() if check.status == "fail"}
        failed.update(self.streamed)
        for report in self.sanitizer_reports:
            failed.add(report.category)
            failed.add("sanitizer")
        if self.crash_signal is not None or (self.returncode < 0 and not self.timed_out):
            failed.add("crash")
        if self.timed_out:
            failed.add("hang")
        if not self.completed and not failed:
            failed.add("incomplete")
        return sorted(failed)

    @property
    def passed(self) -> bool:
        return self.completed and self.returncode == 0 and not self.failed_checks

    def details(self, check: str) -> list[str]:
        if check in self.checks and self.checks[check].details:
            return list(self.checks[check].details)
        return list(self.streamed.get(check, []))


def parse_fields(text: str) -> dict[str, str]:
    fields = {}
    for key, value in _FIELD.findall(text):
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        fields[key] = value
    return fields


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("nan")


def parse_stdout(text: str, result: RigResult) -> None:
    details: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = _RIG_LINE.match(line)
        if not match:
            continue
        kind, fields = match["kind"], parse_fields(match["fields"])
        if kind == "config":
            result.config = fields
        elif kind == "param":
            result.params[fields.get("name", "")] = fields.get("value", "")
        elif kind == "stats":
            result.stats = {key: _number(value) for key, value in fields.items()}
        elif kind == "slots":
            result.slots = {key: _number(value) for key, value in fields.items()}
        elif kind == "fail":
            result.streamed.setdefault(fields.get("check", "?"), []).append(fields.get("msg", ""))
        elif kind == "detail":
            details.setdefault(fields.get("check", "?"), []).append(fields.get("msg", ""))
        elif kind == "check":
            name = fields.get("name", "?")
            status: CheckStatus = "fail" if fields.get("status") == "fail" else "pass"
            result.checks[name] = Check(name, status, int(_number(fields.get("failures", "0"))),
                                        fields.get("what", ""))
        elif kind == "result":
            result.result_status = fields.get("status")
        elif kind == "crash":
            result.crash_signal = int(_number(fields.get("signal", "0")))
    for name, msgs in details.items():
        if name in result.checks:
            check = result.checks[name]
            result.checks[name] = Check(check.name, check.status, check.failures, check.what, tuple(msgs))


def parse_sanitizers(text: str) -> list[SanitizerReport]:
    """Splits stderr into sanitizer reports; frames are those of the report's
    first stacks (accesses, then free/alloc for ASan)."""
    reports: list[SanitizerReport] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        asan, tsan, ubsan = _ASAN_HEAD.match(line), _TSAN_HEAD.match(line), _UBSAN.match(line)
        if ubsan:
            frames = tuple(m[1] for m in map(_FRAME.match, lines[i + 1:i + 8]) if m)
            reports.append(SanitizerReport("UndefinedBehaviorSanitizer", ubsan[2], line, frames, False))
            i += 1
            continue
        if not (asan or tsan):
            i += 1
            continue
        if asan:
            tool, kind = asan[1], asan[2]
        else:
            assert tsan is not None
            tool, kind = "ThreadSanitizer", tsan[1]
        body: list[str] = []
        i += 1
        while i < len(lines) and not (_ASAN_HEAD.match(lines[i]) or _TSAN_HEAD.match(lines[i])):
            if lines[i].startswith(("SUMMARY:", "==================")) and body:
                break
            body.append(lines[i])
            i += 1
        frames = tuple(m[1] for m in map(_FRAME.match, body) if m)
        touches_free = False
        if tool == "ThreadSanitizer":
            # Only the racing accesses count, not "Location ... allocated by".
            touches_free = any(f in _FREE_FRAMES for f in _tsan_access_stacks(body))
        reports.append(SanitizerReport(tool, kind, line.strip(), frames, touches_free))
    return reports


def _tsan_access_stacks(body: list[str]) -> list[str]:
    """Frames under the "Write of size ..." / "Previous read of size ..."
    sections of a TSan report, not under "Location ..." or "Thread ..."."""
    frames: list[str] = []
    in_access = False
    for line in body:
        if line.startswith("  ") and not line.startswith("   "):
            in_access = bool(_TSAN_ACCESS.match(line))
            continue
        match = _FRAME.match(line)
        if in_access and match:
            frames.append(match[1])
    return frames


def parse_rig_bugs(text: str) -> list[str]:
    return [f"{m[1]}: {m[2]}" for m in map(_RIG_BUG.match, text.splitlines()) if m]


def parse(command: list[str], returncode: int, wall_s: float, stdout: str, stderr: str,
          *, timed_out: bool = False, log_dir: str | None = None) -> RigResult:
    result = RigResult(command=command, returncode=returncode, wall_s=wall_s,
                       timed_out=timed_out, log_dir=log_dir)
    parse_stdout(stdout, result)
    result.sanitizer_reports = parse_sanitizers(stderr)
    result.rig_bugs = parse_rig_bugs(stderr)
    return result


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str


def judge(result: RigResult, expect_defect: str | None) -> Verdict:
    """``expect_defect`` None: the run must pass.  ``"any"``: something must
    fail.  A check name (``reload``, ``uaf`` ...): that one must fail."""
    failed = result.failed_checks
    if expect_defect is None:
        if result.passed:
            return Verdict(True, "PASS: every check passed")
        return Verdict(False, f"FAIL: {', '.join(failed) or 'exit status ' + str(result.returncode)}")
    if expect_defect == "any":
        if failed:
            return Verdict(True, f"expected defect shown: {', '.join(failed)} failed")
        return Verdict(False, "expected a defect, but every check passed")
    if expect_defect in failed:
        return Verdict(True, f"expected defect shown: {expect_defect} failed"
                       + (f" (also: {', '.join(f for f in failed if f != expect_defect)})"
                          if len(failed) > 1 else ""))
    return Verdict(False, f"expected {expect_defect} to fail, but "
                   + (f"only {', '.join(failed)} failed" if failed else "every check passed"))
