"""Storms in the guest: the POSIX sh script that drives kmod_dups_storm, and
the parser for what it prints.

``render(paths, storms)`` writes a script for ``kmod-dups boot ... -- sh
SCRIPT``.  The script mounts debugfs (and tracefs) when needed, installs the
modprobe wrapper (``kmods.modprobe_wrapper``) as the kernel's modprobe and
first in ``PATH``, insmods kmod_dups_storm, then runs each storm: it unloads
the requested module first (so every storm starts from "not loaded"), writes
its modprobe options, writes the controls and ``1`` to ``go``, waits for any
modprobe still running (a ``request_module_nowait()`` returns before its
modprobe ends), and prints what happened.

Every line it prints for us starts with ``KDS <kind>``; after the kind comes
``id=<storm id>`` where it applies, then either ``key=value`` fields or a
verbatim line of a debugfs file:

    KDS setup release=6.1.192+ cpus=8 online=0-7 feature=1 trace=N
    KDS storm id=s1 name=kmod_dups_target mode=wait lead=none ... rc=0 ms=2210
    KDS summary id=s1 calls 8                  (each line of summary)
    KDS result id=s1 3 0 wait 0 2163236 55 rest (each line of results)
    KDS kernel id=s1 launches=1 dups=7 warns=0 marked=1
    KDS module id=s1 name=kmod_dups_target state=live
    KDS call id=k1 2 131 wait -512 1021 1 kmod_dups_target  (lines of call)
    KDS end

``parse_output(text)`` turns that into dataclasses; ``parse_results``,
``parse_summary`` and ``parse_calls`` read the debugfs files themselves.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from kmod_dups import guest
from kmod_dups.kmods import FAIL, NONEXISTENT, RECURSE, STORM, TARGET, modprobe_wrapper

__all__ = [
    "FAIL", "NONEXISTENT", "RECURSE", "STORM", "TARGET", "GuestPaths", "Storm", "CallResult", "StormSummary",
    "CallRecord", "StormRun", "GuestOutput", "preamble", "storm_lines", "render", "parse_results",
    "parse_summary", "parse_calls", "parse_output",
]

DEBUGFS_DIR = "/sys/kernel/debug/kmod_dups_storm"
DUPS_PARAM = "/sys/module/module/parameters/enable_dups_trace"
MODES = ("wait", "nowait", "mix")
LEADS = ("none", "wait", "nowait")
PREFIX = "KDS "
_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_MODULE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,55}$")
_OPTIONS = re.compile(r"^[A-Za-z0-9_=,. -]*$")


@dataclass(frozen=True)
class GuestPaths:
    """Where things are in the guest.  *root* and *release* name the modules
    root made by ``kmods.make_modules_root`` (a host path: the guest sees the
    host's file system read-only); *work* is a writable guest folder (/run is
    a tmpfs under virtme-ng)."""

    root: str
    release: str
    work: str = "/run/kmod-dups"

    @property
    def bin(self) -> str:
        return f"{self.work}/bin"

    @property
    def wrapper(self) -> str:
        return f"{self.bin}/modprobe"

    @property
    def config(self) -> str:
        return f"{self.work}/modprobe.d"

    @property
    def log(self) -> str:
        return f"{self.work}/modprobe.log"

    def ko(self, name: str) -> str:
        return f"{self.root}/lib/modules/{self.release}/extra/{name}.ko"


@dataclass(frozen=True)
class Storm:
    """One storm: *threads* callers (0: one per online CPU, but at least
    *min_threads*) ask for *name* in *rounds* rounds released at once.

    *lead* ``wait``/``nowait`` makes one caller go first; the others follow
    when it returned or after *lead_delay_ms*.  *options* are modprobe
    options for *name* (``init_delay_ms=5000``).  *repeat* runs the storm
    that many times, unloading the module before each.
    """

    id: str
    name: str = TARGET
    mode: str = "wait"
    threads: int = 0
    min_threads: int = 1
    rounds: int = 1
    lead: str = "none"
    lead_delay_ms: int = 500
    options: str = ""
    repeat: int = 1

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(f"storm id {self.id!r}: use letters, digits, '.', '_' or '-'")
        if not _MODULE_NAME.match(self.name):
            raise ValueError(f"module name {self.name!r} is not a module name")
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r}: one of {', '.join(MODES)}")
        if self.lead not in LEADS:
            raise ValueError(f"lead {self.lead!r}: one of {', '.join(LEADS)}")
        if self.threads < 0 or self.min_threads < 1 or self.rounds < 1 or self.repeat < 1:
            raise ValueError("threads >= 0, min_threads, rounds and repeat >= 1")
        if not 0 <= self.lead_delay_ms <= 60000:
            raise ValueError("lead_delay_ms: 0 to 60000")
        if not _OPTIONS.match(self.options):
            raise ValueError(f"module options {self.options!r}: only name=value words")

    def run_ids(self) -> list[str]:
        if self.repeat == 1:
            return [self.id]
        return [f"{self.id}.{i}" for i in range(1, self.repeat + 1)]


def _q(value: object) -> str:
    return shlex.quote(str(value))


def variables(paths: GuestPaths, *, storm: bool = True) -> dict[str, object]:
    """What lib.sh reads; ``kds_setup`` loads kmod_dups_storm unless *storm*
    is false."""
    return {
        "KDS_ROOT": paths.root, "KDS_RELEASE": paths.release, "KDS_WORK": paths.work,
        "KDS_CONF": paths.config, "KDS_LOG": paths.log, "KDS_WRAPPER": paths.wrapper,
        "KDS_WRAPPER_TEXT": modprobe_wrapper(paths.root, config=paths.config, log=paths.log),
        "KDS_DIR": DEBUGFS_DIR, "KDS_STORM": 1 if storm else 0, "KDS_STORM_MODULE": STORM,
        "KDS_PARAM": DUPS_PARAM,
    }


def preamble(paths: GuestPaths, *, storm: bool = True, variables_: dict[str, object] | None = None,
             libraries: Sequence[str] = ()) -> str:
    """Variables and lib.sh (plus *libraries*) for every guest script of ours."""
    return guest.script({**variables(paths, storm=storm), **(variables_ or {})}, ("lib", *libraries))


def storm_lines(storm: Storm) -> list[str]:
    """The shell lines that run *storm* (one kds_storm call per repetition)."""
    args = [storm.name, storm.mode, storm.threads, storm.min_threads, storm.rounds, storm.lead,
            storm.lead_delay_ms, storm.options]
    return [f"kds_storm {_q(run_id)} {' '.join(_q(a) for a in args)}" for run_id in storm.run_ids()]


def render(paths: GuestPaths, storms: Sequence[Storm], *, cleanup: Iterable[str] = (TARGET, FAIL)) -> str:
    """A complete guest script running *storms* one after the other."""
    ids = [i for s in storms for i in s.run_ids()]
    if len(set(ids)) != len(ids):
        raise ValueError("storm ids must be unique")
    body = ["kds_setup"]
    for storm in storms:
        body += storm_lines(storm)
    body += [f"kds_unload {_q(name)}" for name in cleanup]
    body.append("kds_teardown")
    return preamble(paths) + "\n" + "\n".join(body) + "\n"


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True)
class CallResult:
    """One line of ``results``: what one caller got in one round."""

    cpu: int
    round: int
    mode: str  # "wait" or "nowait"
    ret: int
    latency_us: int
    start_us: int = 0  # after the round's first release
    role: str = "rest"  # "lead" or "rest"
    injected: bool = False  # made with fail-nth armed, and the fault was injected

    @property
    def wait(self) -> bool:
        return self.mode == "wait"

    @property
    def lead(self) -> bool:
        return self.role == "lead"

    @property
    def end_us(self) -> int:
        return self.start_us + self.latency_us


@dataclass(frozen=True)
class StormSummary:
    """The ``summary`` file."""

    name: str
    mode: str
    lead: str
    lead_delay_ms: int
    rounds: int
    threads: int
    online_cpus: int
    interrupted: bool
    calls: int
    wait_calls: int
    nowait_calls: int
    rets: dict[int, int]
    ret_other: int = 0
    min_latency_us: int | None = None
    max_latency_us: int | None = None
    inject: int = 0  # every Nth call made with fail-nth armed (0: none)
    injected: int = 0  # calls whose armed fault was injected


@dataclass(frozen=True)
class CallRecord:
    """One line of ``call``: a request made by a writer of that file."""

    seq: int
    pid: int
    mode: str
    ret: int
    latency_us: int
    killed: bool
    name: str


@dataclass
class StormRun:
    """One storm as the guest script reported it."""

    id: str
    name: str
    mode: str
    lead: str
    threads: int  # as asked: 0 is one per online CPU
    rounds: int
    lead_delay_ms: int
    options: str
    rc: int  # exit status of the write to go
    ms: int  # how long the write to go took
    summary: StormSummary | None = None
    results: list[CallResult] = field(default_factory=list)
    launches: int | None = None  # modprobe launches by the kernel for name
    # Duplicates in the kernel log: the first requests' reports of their
    # bursts, or one warning line each from a dups.c that reports none.
    dups: int | None = None
    warns: int | None = None  # WARN()s with a stack trace raised in dups.c
    bursts: int | None = None  # first requests that reported their duplicates
    warned: int | None = None  # duplicate warning lines (one a burst, or one a duplicate)
    marked: bool = False  # the kernel log still held the start marker
    state: str = ""  # the module afterwards: live, coming, going, absent

    @property
    def rets(self) -> set[int]:
        return {r.ret for r in self.results}

    def by_role(self, role: str) -> list[CallResult]:
        return [r for r in self.results if r.role == role]


@dataclass
class GuestOutput:
    setup: dict[str, str] = field(default_factory=dict)
    storms: dict[str, StormRun] = field(default_factory=dict)
    calls: dict[str, list[CallRecord]] = field(default_factory=dict)
    records: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    kernel: dict[str, dict[str, str]] = field(default_factory=dict)
    fatal: dict[str, str] | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)
    dmesg: dict[str, list[str]] = field(default_factory=dict)  # kernel log lines the guest copied, by id
    tracer_errors: list[str] = field(default_factory=list)  # what dupstrace printed on stderr
    ended: bool = False

    def fatal_sentence(self) -> str:
        """Why the guest script stopped, as a sentence ('' when it did not)."""
        if self.fatal is None:
            return ""
        return fatal_sentence(self.fatal, self.tracer_errors)

    def record(self, kind: str, id: str) -> dict[str, str]:
        """Fields of the ``KDS <kind> id=<id>`` line ({} when missing)."""
        return self.records.get((kind, id), {})


def _int(text: str) -> int:
    return int(text, 10)


def _data_lines(text: str) -> Iterator[tuple[str, list[str]]]:
    """Each line of a debugfs table that is not blank or a comment, with its words."""
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line, line.split()


def parse_results(text: str) -> list[CallResult]:
    """The ``results`` file (comment lines skipped)."""
    out = []
    for line, f in _data_lines(text):
        if len(f) not in (5, 7, 8) or f[2] not in ("wait", "nowait") or (len(f) == 8 and f[7] not in ("0", "1")):
            raise ValueError(f"not a results line: {line!r}")
        extra: dict[str, object] = {"start_us": _int(f[5]), "role": f[6]} if len(f) >= 7 else {}
        if len(f) == 8:
            extra["injected"] = f[7] == "1"
        out.append(CallResult(cpu=_int(f[0]), round=_int(f[1]), mode=f[2], ret=_int(f[3]),
                              latency_us=_int(f[4]), **extra))
    return out


_SUMMARY_INTS = ("lead_delay_ms", "rounds", "threads", "online_cpus", "calls", "wait_calls",
                 "nowait_calls", "ret_other", "min_latency_us", "max_latency_us", "inject", "injected")


def parse_summary(text: str) -> StormSummary | None:
    """The ``summary`` file; None before the first run."""
    values: dict[str, str] = {}
    rets: dict[int, int] = {}
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "ret" and len(f) == 3:
            rets[_int(f[1])] = rets.get(_int(f[1]), 0) + _int(f[2])
        elif len(f) == 2:
            values[f[0]] = f[1]
        else:
            raise ValueError(f"not a summary line: {line!r}")
    if values.get("runs", "1") == "0":
        return None
    try:
        ints = {k: _int(values[k]) for k in _SUMMARY_INTS if k in values}
        return StormSummary(name=values["name"], mode=values["mode"], lead=values["lead"],
                            interrupted=values["interrupted"] == "1", rets=rets, **ints)
    except KeyError as err:
        raise ValueError(f"summary without {err.args[0]}") from None


def parse_calls(text: str) -> list[CallRecord]:
    """The ``call`` file (comment lines skipped)."""
    out = []
    for line, f in _data_lines(text):
        if len(f) != 7 or f[2] not in ("wait", "nowait"):
            raise ValueError(f"not a call line: {line!r}")
        out.append(CallRecord(seq=_int(f[0]), pid=_int(f[1]), mode=f[2], ret=_int(f[3]),
                              latency_us=_int(f[4]), killed=f[5] == "1", name=f[6]))
    return out


def _fields(words: Iterable[str]) -> dict[str, str]:
    return dict(w.split("=", 1) for w in words if "=" in w)


def parse_output(text: str) -> GuestOutput:
    """Everything the guest scripts printed, from output.log (other lines,
    the kernel's or a command's, are ignored)."""
    out = GuestOutput()
    summaries: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip("\r\n")
        at = line.find(PREFIX)
        if at < 0 or (at > 0 and line[at - 1] not in " \t"):
            continue
        line = line[at + len(PREFIX):]
        kind, _, rest = line.partition(" ")
        run_id = ""
        if rest.startswith("id="):
            first, _, rest = rest.partition(" ")
            run_id = first[3:]
        if kind == "summary":
            summaries.setdefault(run_id, []).append(rest)
        elif kind == "result":
            _storm(out, run_id).results.extend(parse_results(rest))
        elif kind == "call":
            out.calls.setdefault(run_id, []).extend(parse_calls(rest))
        elif kind == "storm":
            f = _fields(rest.split())
            run = _storm(out, run_id)
            run.name, run.mode, run.lead = f["name"], f["mode"], f["lead"]
            run.threads, run.rounds = _int(f["threads"]), _int(f["rounds"])
            run.lead_delay_ms = _int(f["lead_delay_ms"])
            run.options = f.get("options", "").replace("+", " ")
            run.rc, run.ms = _int(f["rc"]), _int(f["ms"])
        elif kind == "kernel":
            f = _fields(rest.split())
            out.kernel[run_id] = f
            if run_id in out.storms:
                run = out.storms[run_id]
                run.launches, run.dups, run.warns = _int(f["launches"]), _int(f["dups"]), _int(f["warns"])
                run.bursts = _int(f["bursts"]) if "bursts" in f else None
                run.warned = _int(f["warned"]) if "warned" in f else None
                run.marked = f.get("marked") == "1"
        elif kind == "module":
            _storm(out, run_id).state = _fields(rest.split()).get("state", "")
        elif kind == "setup":
            out.setup = _fields(rest.split())
        elif kind == "fatal":
            out.fatal = _fields(rest.split())
        elif kind == "warning":
            out.warnings.append(_fields(rest.split()))
        elif kind == "dmesg":
            out.dmesg.setdefault(run_id, []).append(rest)
        elif kind == "tracer-error":
            out.tracer_errors.append(rest)
        elif kind == "end":
            out.ended = True
        else:
            out.records[(kind, run_id)] = _fields(rest.split())
    for run_id, lines in summaries.items():
        _storm(out, run_id).summary = parse_summary("\n".join(lines))
    return out


# What each "KDS fatal reason=..." of the guest's kds_die means.
FATAL_REASONS = {
    "not-root": "the guest script does not run as root",
    "release": "the guest runs kernel {running}, but the modules were built for {modules}",
    "workdir": "the guest cannot make its work folder {dir}",
    "debugfs": "debugfs cannot be mounted in the guest",
    "wrapper": "the guest cannot write the modprobe wrapper",
    "modprobe-path": "the guest cannot set /proc/sys/kernel/modprobe",
    "insmod": "kmod_dups_storm.ko does not load in the guest",
    "no-debugfs-dir": "kmod_dups_storm loaded but made no debugfs folder",
    "control": "the storm module refused {value} in its control file {file}",
    "tracer": "dupstrace did not start in the guest",
    "no-failslab": "the kernel has no failslab debugfs folder (CONFIG_FAILSLAB)",
    "failslab-knob": "a failslab setting could not be written",
    "taskset": "the guest shell could not be bound to CPUs (taskset)",
    "mkfifo": "the guest could not make the hog's FIFO",
}


def fatal_sentence(fields: dict[str, str], tracer_errors: Sequence[str] = ()) -> str:
    reason = fields.get("reason", "")
    template = FATAL_REASONS.get(reason)
    if template is None:
        words = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"the guest script stopped ({words or 'no reason given'})"
    try:
        sentence = template.format(**fields)
    except KeyError:
        sentence = template
    errors = [e for e in tracer_errors if e.strip()]
    if reason == "tracer" and errors:
        sentence += f": {errors[-1].strip()}"
    return sentence


def _storm(out: GuestOutput, run_id: str) -> StormRun:
    run = out.storms.get(run_id)
    if run is None:
        run = StormRun(id=run_id, name="", mode="", lead="", threads=0, rounds=0, lead_delay_ms=0,
                       options="", rc=-1, ms=0)
        out.storms[run_id] = run
    return run
