"""The kernel's own kmod stress test in the guest: lib/test_kmod.c
(CONFIG_TEST_KMOD=m) driven by tools/testing/selftests/kmod/kmod.sh from
the build's source tree, with a pass/fail per test.

What kmod.sh needs (read from the 6.1 script):

* bash, root, ``modprobe`` on PATH and ``kmod --version`` >= 20; it loads
  test_kmod itself (``modprobe test_kmod``) and drives it through
  /sys/devices/virtual/misc/test_kmod0/.
* test_kmod asks the kernel for ``test_module`` (CONFIG_TEST_LKM,
  request_module()) and for the file system ``xfs`` (get_fs_type(), which
  requests ``fs-xfs``); btrfs and tun are only used by test_kmod's own
  ``force_init_test`` at load time, not by kmod.sh.
* 0010 and 0011 point /proc/sys/kernel/modprobe elsewhere and restore the
  value kmod.sh found at start (the wrapper here); 0012 and 0013 need
  ``capsh``.
* ``-c ID COUNT`` runs one test COUNT times; under ``set -e`` the first
  failure ends the script with status 1; 4 means skipped.

Each test runs as its own kmod.sh invocation, so one failure does not hide
the others.  The guest script comes from ``guest_storm.preamble`` (the
modprobe wrapper is the kernel's modprobe and first on PATH).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kmod_dups import kmods
from kmod_dups.guest import storm as guest_storm
from kmod_dups.errors import UserError
from kmod_dups.guest.session import GuestRun
from kmod_dups.guest.storm import GuestPaths
from kmod_dups.qemu import console as consolemod

KMOD_SH = "tools/testing/selftests/kmod/kmod.sh"
PREFIX = "KDS "

# What each test makes the kernel load, besides test_kmod itself.
NEEDS: dict[str, tuple[str, ...]] = {
    "0001": (), "0002": (),
    "0003": ("xfs",), "0004": ("xfs",), "0006": ("xfs",), "0009": ("xfs",),
    "0005": ("test_module",), "0008": ("test_module",),
    "0007": ("test_module", "xfs"),
    "0010": ("test_module",), "0011": ("test_module",),
    "0012": ("test_module", "capsh"), "0013": ("test_module", "capsh"),
}

_ALL_TESTS = re.compile(r'^ALL_TESTS="(?:\$ALL_TESTS )?(\d{4}):(\d+):([01])"', re.M)
_DESCRIPTION = re.compile(r'^\s*echo "(\d{4}) x \$\(get_test_count \d{4}\) - (.*)"$', re.M)


@dataclass(frozen=True)
class KmodTest:
    id: str
    count: int  # how many times kmod.sh recommends running it
    enabled: bool
    description: str
    needs: tuple[str, ...]


def read_tests(script: Path) -> dict[str, KmodTest]:
    """The tests kmod.sh defines (its ALL_TESTS and list_tests)."""
    try:
        text = script.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise UserError(f"cannot read {script}: {err.strerror}; is the build's source tree there?") from err
    descriptions = dict(_DESCRIPTION.findall(text))
    tests = {
        tid: KmodTest(tid, int(count), enabled == "1", " ".join(descriptions.get(tid, "").split()),
                      NEEDS.get(tid, ()))
        for tid, count, enabled in _ALL_TESTS.findall(text)
    }
    if not tests:
        raise UserError(f"{script} defines no tests (no ALL_TESTS lines); is it kmod.sh?")
    return tests


def script_path(build: Path) -> Path:
    """kmod.sh in the build's source tree (BUILD/source is the tree of an O= build)."""
    build = build.expanduser().resolve()
    for tree in (build / "source", build):
        if (tree / KMOD_SH).is_file():
            return (tree / KMOD_SH).resolve()
    raise UserError(f"{build}: no {KMOD_SH} in its source tree")


def plan(tests: dict[str, KmodTest], select: Sequence[str] | None = None,
         count: int | None = 1) -> list[tuple[str, int]]:
    """(id, times) pairs: *select* (default: every enabled test), each run
    *count* times (None: kmod.sh's recommended count, 150 for 0008/0009)."""
    ids = list(select) if select else [t.id for t in tests.values() if t.enabled]
    unknown = [i for i in ids if i not in tests]
    if unknown:
        raise UserError(f"unknown kmod.sh test(s) {', '.join(unknown)}; known: {', '.join(tests)}")
    if count is not None and count < 1:
        raise UserError(f"count {count}: run each test at least once")
    return [(i, tests[i].count if count is None else count) for i in ids]


def render(paths: GuestPaths, kmod_sh: str | Path, steps: Sequence[tuple[str, int]], *,
           env: Mapping[str, str] | None = None) -> str:
    """The guest script: one kmod.sh invocation per test.  *env* sets kmod.sh's
    own overrides (DEFAULT_KMOD_DRIVER, DEFAULT_KMOD_FS, DEFAULT_NUM_TESTS...)."""
    variables: dict[str, object] = {"KDS_KMOD_SH": str(kmod_sh)}
    exports = []
    for key, value in (env or {}).items():
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            raise ValueError(f"not a variable name: {key!r}")
        variables[key] = value
        exports.append(f"export {key}")
    lines = exports + [
        "kds_setup",
        "kds \"kmodsh path=$KDS_KMOD_SH kmod=$(kmod --version | head -n 1 | tr ' ' _)\"",
    ]
    lines += [f"kds_selftest {tid} {int(times)}" for tid, times in steps]
    lines += ["rmmod test_kmod 2>/dev/null || :", "kds_teardown"]
    return (guest_storm.preamble(paths, storm=False, variables_=variables, libraries=["selftest"])
            + "\n" + "\n".join(lines) + "\n")


@dataclass
class SelftestResult:
    id: str
    count: int
    rc: int
    ms: int
    runs: int = 0  # "Running test: ... run #N" lines
    oks: int = 0  # ": OK!" lines
    failures: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    launches: int | None = None  # modprobe launches by the kernel during the test
    dups: int | None = None  # duplicate requests the kernel reported

    @property
    def status(self) -> str:
        if self.rc == 4:
            return "skip"
        if self.rc == 0 and self.runs == self.count and not self.failures:
            return "pass"
        return "fail"

    @property
    def reason(self) -> str:
        if self.status == "pass":
            return ""
        if self.failures:
            return self.failures[0]
        if self.status == "skip":
            return next((line for line in self.log if line.strip()), "skipped")
        return (f"exit status {self.rc} after {self.runs} of {self.count} runs"
                + (f": {self.log[-1]}" if self.log else ""))


def parse(text: str) -> list[SelftestResult]:
    """The guest output of ``render``'s script: one result per test, in order."""
    logs: dict[str, list[str]] = {}
    kernel: dict[str, dict[str, str]] = {}
    results: list[SelftestResult] = []
    for raw in text.splitlines():
        at = raw.find(PREFIX)
        if at < 0 or (at > 0 and raw[at - 1] not in " \t"):
            continue
        kind, _, rest = raw[at + len(PREFIX):].rstrip("\r\n").partition(" ")
        first, _, rest = rest.partition(" ")
        if not first.startswith("id="):
            continue
        tid = first[3:]
        if kind == "selftest-log":
            logs.setdefault(tid, []).append(rest)
        elif kind == "kernel":
            kernel[tid] = dict(w.split("=", 1) for w in rest.split() if "=" in w)
        elif kind == "selftest":
            f = dict(w.split("=", 1) for w in rest.split() if "=" in w)
            results.append(SelftestResult(tid, int(f["count"]), int(f["rc"]), int(f["ms"])))
    for res in results:
        res.log = logs.get(res.id, [])
        res.runs = sum(1 for line in res.log if line.startswith("Running test: "))
        res.oks = sum(1 for line in res.log if ": OK!" in line)
        res.failures = [line.strip() for line in res.log if "FAIL" in line]
        k = kernel.get(res.id)
        if k:
            res.launches = int(k["launches"])
            # Without its mark the test's part of the kernel log was
            # overwritten (thousands of warnings in a small log buffer): the
            # guest's count of 0 means nothing, so there is no count.
            res.dups = int(k["dups"]) if k.get("marked") == "1" else None
    return results


_MARK = re.compile(r"kmod-dups mark (\S+)$")
_DUPS_LINE = re.compile(r"(?:^|: )(?:module-autoload|module): duplicate request for module \S+$")
# The hardened dups.c warns once a burst and its first request reports the count.
_BURST_LINE = re.compile(r"(?:^|: )duplicate requests for module \S+: (\d+),")
_DROPPED = re.compile(r"\*\* \d+ printk messages dropped \*\*")


@dataclass(frozen=True)
class ConsoleCount:
    dups: int  # duplicates on the console between the test's mark and the next
    dropped: bool  # printk dropped messages meanwhile: dups is a lower bound


@dataclass
class _Section:
    warned: int = 0
    reported: int = 0
    bursts: int = 0
    dropped: bool = False

    @property
    def dups(self) -> int:
        """The bursts' reports when dups.c prints them, else one warning each."""
        return self.reported if self.bursts else self.warned


def console_dups(console: str) -> dict[str, ConsoleCount]:
    """Duplicates per test, counted on the serial console, which keeps every
    line the guest's log buffer may since have overwritten."""
    sections: dict[str, _Section] = {}
    current = None
    for raw in console.splitlines():
        text = consolemod.strip_prefix(raw)
        mark = _MARK.search(text)
        if mark:
            current = sections[mark.group(1)] = _Section()
        elif current is not None:
            burst = _BURST_LINE.search(text)
            # pr_warn() prints it after dups.c's pr_fmt ("module: ").
            if _DUPS_LINE.search(text):
                current.warned += 1
            elif burst:
                current.bursts += 1
                current.reported += int(burst.group(1))
            elif _DROPPED.search(text):
                current.dropped = True
    return {tid: ConsoleCount(sec.dups, sec.dropped) for tid, sec in sections.items()}


def with_console(results: Sequence[SelftestResult], console: str | None) -> None:
    """Take each test's duplicate count from the console when the console
    has its mark; a count with dropped messages is no count."""
    counts = console_dups(console or "")
    for res in results:
        count = counts.get(res.id)
        if count is not None:
            res.dups = None if count.dropped else count.dups


def table(results: Sequence[SelftestResult], tests: dict[str, KmodTest] | None = None) -> str:
    """Plain text, under 80 columns."""
    rows = [f"{'test':<5} {'result':<6} {'runs':>5} {'ms':>8} {'modprobe':>8} {'dups':>6}  what"]
    for r in results:
        what = r.reason or (tests[r.id].description if tests and r.id in tests else "")
        rows.append(f"{r.id:<5} {r.status:<6} {f'{r.runs}/{r.count}':>5} {r.ms:>8} "
                    f"{'?' if r.launches is None else r.launches:>8} {'?' if r.dups is None else r.dups:>6}"
                    f"  {what[:40]}")
    return "\n".join(rows)


@dataclass
class SelftestRun:
    guest: GuestRun
    results: list[SelftestResult]
    tests: dict[str, KmodTest]


def run(build: Path, cpus: int, runs: Path, *, select: Sequence[str] | None = None,
        count: int | None = 1, append: Sequence[str] = (), timeout: float | None = None) -> SelftestRun:
    """Boot *build* with *cpus* vCPUs (``kmod-dups boot``) and run kmod.sh's
    tests there against its test_kmod.ko; parse the results."""
    from kmod_dups.guest import session as guest_run

    kb = kmods.open_build(build)
    if kb.config.get("CONFIG_TEST_KMOD") != "m":
        raise UserError(f"{kb.path}: CONFIG_TEST_KMOD is not m; build with the test_kmod fragment")
    sh = script_path(kb.path)
    tests = read_tests(sh)
    steps = plan(tests, select, count)
    root = kmods.prepare(kb.path)
    script = render(GuestPaths(str(root.root), root.release), sh, steps)
    guest = guest_run.run_script(kb.path, cpus, script, runs, name="kmod-selftest", append=append,
                                 timeout=timeout)
    results = parse(guest.output)
    with_console(results, guest.console)
    return SelftestRun(guest, results, tests)
