#!/usr/bin/python3
"""dupstrace: count module auto-load requests, modprobe launches and
finit_module() calls per module, to show whether duplicate requests
converge.  A BCC tool in the manner of bcc's own tools: it runs on any live
kernel with BPF and kprobes, and probes only what the kernel has.

Per module it counts
  REQ     request_module() calls        (tracepoint module:module_request)
  DUPS    duplicates the kernel caught  (kmod_dup_request_exists_wait() == true)
  EXEC    modprobe launches             (call_usermodehelper_exec() with modprobe's argv)
  FINIT   finit_module() calls          (syscalls:sys_{enter,exit}_finit_module)
  FAIL    of which failed               (EEXIST for a concurrent duplicate, ...)
  LOADS   modules that went live        (tracepoint module:module_load)
  WASTE   image bytes that failed finit_module() calls read in vain
plus the peak of VmallocUsed over the session (sampled from /proc/meminfo).

Run it as root: /usr/bin/python3 -m kmod_dups.dupstrace -h
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

EXAMPLES = """examples:
  ./dupstrace.py                 # trace until Ctrl-C, then print the table
  ./dupstrace.py -d 30           # trace for 30 seconds
  ./dupstrace.py 5               # print the table every 5 seconds
  ./dupstrace.py 5 3             # ... three times, then exit
  ./dupstrace.py -m kmod_dups_target   # only this module
  ./dupstrace.py -j -d 10 > out.json   # JSON for scripts
  ./dupstrace.py --ebpf          # print the BPF program and exit
"""

MODULE_NAME_LEN = 56  # MODULE_NAME_LEN on 64-bit kernels: 64 - sizeof(unsigned long)
UNKNOWN = "?"  # finit_module() calls whose module name could not be learned

# The BPF program, in one place.  HAVE_* switches are defined from what the
# running kernel offers (see probe_kernel()); FILTER_NAME from -m.
BPF_PROGRAM = r"""
#include <uapi/linux/ptrace.h>
#include <linux/umh.h>

#define NAME_LEN __NAME_LEN__

struct name_t {
	char name[NAME_LEN];
};

struct counts_t {
	u64 requests;
	u64 requests_nowait;
	u64 dups;
	u64 launches;
	u64 finit;
	u64 finit_failed;
	u64 loads;
	u64 read_bytes;
	u64 wasted_bytes;
};

/* A finit_module() in flight on a thread: what it read, which module. */
struct finit_t {
	struct name_t name;
	u64 bytes;
};

BPF_HASH(counts, struct name_t, struct counts_t, 4096);
BPF_HASH(finits, u32, struct finit_t, 4096);
BPF_HASH(dup_calls, u32, struct name_t, 4096);

static __always_inline int wanted(struct name_t *key)
{
#ifdef FILTER_NAME
	char want[] = FILTER_NAME;

	for (int i = 0; i < sizeof(want); i++) {
		if (key->name[i] != want[i])
			return 0;
	}
#endif
	return 1;
}

static __always_inline struct counts_t *counts_of(struct name_t *key)
{
	struct counts_t zero = {};

	if (!wanted(key))
		return NULL;
	return counts.lookup_or_try_init(key, &zero);
}

TRACEPOINT_PROBE(module, module_request)
{
	struct name_t key = {};
	struct counts_t *c;

	bpf_probe_read_kernel_str(&key.name, sizeof(key.name),
				  (void *)args + (args->data_loc_name & 0xFFFF));
	c = counts_of(&key);
	if (!c)
		return 0;
	__sync_fetch_and_add(&c->requests, 1);
	if (!args->wait)
		__sync_fetch_and_add(&c->requests_nowait, 1);
	return 0;
}

TRACEPOINT_PROBE(module, module_load)
{
	struct name_t key = {};
	struct counts_t *c;
	struct finit_t *f;
	u32 tid = bpf_get_current_pid_tgid();

	bpf_probe_read_kernel_str(&key.name, sizeof(key.name),
				  (void *)args + (args->data_loc_name & 0xFFFF));
	f = finits.lookup(&tid);
	if (f)
		f->name = key;
	c = counts_of(&key);
	if (c)
		__sync_fetch_and_add(&c->loads, 1);
	return 0;
}

/* call_modprobe() is inlined; its usermode helper call is not. */
int trace_umh_exec(struct pt_regs *ctx, struct subprocess_info *info)
{
	struct name_t key = {};
	struct counts_t *c;
	char **argv;
	char *arg;
	char opt[4] = {};

	argv = info->argv;
	if (bpf_probe_read_kernel(&arg, sizeof(arg), &argv[1]) || !arg)
		return 0;
	bpf_probe_read_kernel_str(opt, sizeof(opt), arg);
	if (opt[0] != '-' || opt[1] != 'q' || opt[2] != 0)
		return 0;	/* not call_modprobe()'s "modprobe -q -- name" */
	if (bpf_probe_read_kernel(&arg, sizeof(arg), &argv[3]) || !arg)
		return 0;
	bpf_probe_read_kernel_str(&key.name, sizeof(key.name), arg);
	c = counts_of(&key);
	if (c)
		__sync_fetch_and_add(&c->launches, 1);
	return 0;
}

#ifdef HAVE_DUPS
int trace_dups_entry(struct pt_regs *ctx, char *module_name)
{
	struct name_t key = {};
	u32 tid = bpf_get_current_pid_tgid();

	bpf_probe_read_kernel_str(&key.name, sizeof(key.name), module_name);
	dup_calls.update(&tid, &key);
	return 0;
}

int trace_dups_return(struct pt_regs *ctx)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct name_t *key = dup_calls.lookup(&tid);
	struct counts_t *c;

	if (!key)
		return 0;
	if (PT_REGS_RC(ctx) & 0xff) {
		c = counts_of(key);
		if (c)
			__sync_fetch_and_add(&c->dups, 1);
	}
	dup_calls.delete(&tid);
	return 0;
}
#endif

TRACEPOINT_PROBE(syscalls, sys_enter_finit_module)
{
	struct finit_t f = {};
	u32 tid = bpf_get_current_pid_tgid();

	finits.update(&tid, &f);
	return 0;
}

#ifdef HAVE_READ_FILE
/* The module image read into vmalloc space by finit_module(). */
int trace_read_file_return(struct pt_regs *ctx)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct finit_t *f = finits.lookup(&tid);
	long ret = PT_REGS_RC(ctx);

	if (f && ret > 0)
		f->bytes += ret;
	return 0;
}
#endif

#ifdef HAVE_FIND_MODULE
/* A failed load never reaches module_load; learn its name from the
 * loader's check for an existing module of the same name. */
int trace_find_module(struct pt_regs *ctx, const char *name)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct finit_t *f = finits.lookup(&tid);

	if (!f || f->name.name[0])
		return 0;
	bpf_probe_read_kernel_str(&f->name.name, sizeof(f->name.name), name);
	return 0;
}
#endif

TRACEPOINT_PROBE(syscalls, sys_exit_finit_module)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct finit_t *f = finits.lookup(&tid);
	struct name_t key = {};
	struct counts_t *c;

	if (!f)
		return 0;
	key = f->name;
	if (!key.name[0]) {
		key.name[0] = '?';
		key.name[1] = 0;
	}
	c = counts_of(&key);
	if (c) {
		__sync_fetch_and_add(&c->finit, 1);
		__sync_fetch_and_add(&c->read_bytes, f->bytes);
		if (args->ret) {
			__sync_fetch_and_add(&c->finit_failed, 1);
			__sync_fetch_and_add(&c->wasted_bytes, f->bytes);
		}
	}
	finits.delete(&tid);
	return 0;
}
"""

# Kernel functions, in order of preference, for what is not a tracepoint.
UMH_EXEC = "call_usermodehelper_exec"
DUPS_FUNC = "kmod_dup_request_exists_wait"
READ_FILE_FUNCS = ("kernel_read_file_from_fd", "kernel_read_file")
FIND_MODULE_FUNCS = ("find_module_all",)
TRACEPOINTS = (("module", "module_request"), ("module", "module_load"),
               ("syscalls", "sys_enter_finit_module"), ("syscalls", "sys_exit_finit_module"))


@dataclass
class ModuleCounts:
    """What one module's requests cost during the session."""

    module: str
    requests: int = 0
    requests_nowait: int = 0
    dups: int = 0
    launches: int = 0
    finit: int = 0
    finit_failed: int = 0
    loads: int = 0
    read_bytes: int = 0
    wasted_bytes: int = 0


@dataclass
class Session:
    """A tracing session's result: per-module counts and what could not be
    traced on this kernel."""

    kernel: str
    seconds: float
    modules: list[ModuleCounts]
    vmalloc_start_kb: int | None
    vmalloc_peak_kb: int | None
    dups_traced: bool
    untraced: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


@dataclass(frozen=True)
class Probes:
    """Which optional probe points the running kernel has."""

    dups: bool
    read_file: str | None
    find_module: str | None

    def defines(self, filter_name: str | None) -> str:
        lines = []
        if self.dups:
            lines.append("#define HAVE_DUPS 1")
        if self.read_file:
            lines.append("#define HAVE_READ_FILE 1")
        if self.find_module:
            lines.append("#define HAVE_FIND_MODULE 1")
        if filter_name:
            lines.append(f"#define FILTER_NAME {json.dumps(filter_name)}")
        return "".join(line + "\n" for line in lines)

    def untraced(self) -> list[str]:
        out = []
        if not self.dups:
            out.append(f"DUPS: {DUPS_FUNC}() is not in this kernel (no CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS)")
        if not self.read_file:
            out.append(f"WASTE: none of {', '.join(READ_FILE_FUNCS)}() can be probed")
        if not self.find_module:
            out.append(f"FAIL names: {FIND_MODULE_FUNCS[0]}() cannot be probed; failed loads count as {UNKNOWN!r}")
        return out


def program(probes: Probes, filter_name: str | None = None) -> str:
    text = probes.defines(filter_name) + BPF_PROGRAM
    return text.replace("__NAME_LEN__", str(MODULE_NAME_LEN))


def kprobe_functions() -> set[str]:
    """Functions that can take a kprobe: listed by ftrace when the kernel has
    dynamic ftrace, else the text symbols of /proc/kallsyms (a function
    inlined everywhere has neither), less the kprobe blacklist."""
    names: set[str] = set()
    for path in ("/sys/kernel/tracing/available_filter_functions",
                 "/sys/kernel/debug/tracing/available_filter_functions"):
        try:
            with open(path) as handle:
                names = {line.split()[0] for line in handle if line.strip()}
            break
        except OSError:
            continue
    if not names:
        try:
            with open("/proc/kallsyms") as handle:
                names = {fields[2] for fields in map(str.split, handle)
                         if len(fields) >= 3 and fields[1] in "tT" and len(fields) == 3}
        except OSError:
            pass
    try:
        with open("/sys/kernel/debug/kprobes/blacklist") as handle:
            names -= {line.split()[1] for line in handle if len(line.split()) > 1}
    except OSError:
        pass
    return names


def probe_kernel(functions: set[str]) -> Probes:
    def first(candidates: tuple[str, ...]) -> str | None:
        return next((name for name in candidates if name in functions), None)

    return Probes(dups=DUPS_FUNC in functions, read_file=first(READ_FILE_FUNCS),
                  find_module=first(FIND_MODULE_FUNCS))


class VmallocSampler(threading.Thread):
    """Samples VmallocUsed from /proc/meminfo; keeps the first and the peak."""

    def __init__(self, period: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.period = period
        self.start_kb: int | None = None
        self.peak_kb: int | None = None
        self._halt = threading.Event()

    @staticmethod
    def read_kb() -> int | None:
        try:
            with open("/proc/meminfo") as handle:
                for line in handle:
                    if line.startswith("VmallocUsed:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def run(self) -> None:
        while not self._halt.is_set():
            value = self.read_kb()
            if value is not None:
                if self.start_kb is None:
                    self.start_kb = value
                self.peak_kb = value if self.peak_kb is None else max(self.peak_kb, value)
            self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def human_bytes(value: int) -> str:
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024  # type: ignore[assignment]
    return str(value)


def table(session: Session) -> str:
    """The per-module table, 80 columns wide."""
    dups = "DUPS" if session.dups_traced else "DUPS*"
    lines = [f"{'MODULE':<28} {'REQ':>6} {dups:>6} {'EXEC':>6} {'FINIT':>6} {'FAIL':>6} {'LOADS':>6} {'WASTE':>8}"]
    for m in sorted(session.modules, key=lambda m: (-m.requests, m.module)):
        name = m.module if len(m.module) <= 28 else m.module[:27] + "~"
        dup = str(m.dups) if session.dups_traced else "-"
        lines.append(f"{name:<28} {m.requests:>6} {dup:>6} {m.launches:>6} {m.finit:>6} "
                     f"{m.finit_failed:>6} {m.loads:>6} {human_bytes(m.wasted_bytes):>8}")
    if session.vmalloc_peak_kb is not None and session.vmalloc_start_kb is not None:
        lines.append(f"VmallocUsed: {session.vmalloc_start_kb} kB at start, peak {session.vmalloc_peak_kb} kB "
                     f"(+{session.vmalloc_peak_kb - session.vmalloc_start_kb} kB)")
    for note in session.untraced:
        lines.append(f"not traced: {note}")
    if not session.dups_traced:
        lines.append("* this kernel has no duplicate detection to count")
    return "\n".join(line[:80] for line in lines)


def read_counts(bpf_table) -> list[ModuleCounts]:  # noqa: ANN001 - a bcc table
    modules = []
    for key, value in bpf_table.items():
        name = key.name.decode(errors="replace")
        modules.append(ModuleCounts(module=name, **{f: getattr(value, f) for f in (
            "requests", "requests_nowait", "dups", "launches", "finit", "finit_failed",
            "loads", "read_bytes", "wasted_bytes")}))
    return modules


def parse_args(argv: list[str] | None = None, prog: str = "dupstrace") -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Count module auto-load requests, modprobe launches and finit_module() calls "
        "per module, and show whether duplicate requests converge.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES.replace("./dupstrace.py", prog if prog != "dupstrace" else "./dupstrace.py"))
    parser.add_argument("interval", nargs="?", type=float, help="print the table every INTERVAL seconds")
    parser.add_argument("count", nargs="?", type=int, help="number of intervals to print")
    parser.add_argument("-d", "--duration", type=float, help="total tracing time in seconds")
    parser.add_argument("-m", "--module", help="only count this module name")
    parser.add_argument("-j", "--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--ebpf", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("interval", "duration"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"{name} must be positive")
    if args.count is not None and args.count <= 0:
        parser.error("count must be positive")
    if args.module and len(args.module) >= MODULE_NAME_LEN:
        parser.error(f"module names are shorter than {MODULE_NAME_LEN} characters")
    return args


KHEADERS = "/sys/kernel/kheaders.tar.xz"


@contextlib.contextmanager
def kernel_headers() -> Iterator[str | None]:
    """The running kernel's own headers for BCC while it compiles: the
    CONFIG_IKHEADERS archive, unpacked into a private folder (mkdtemp: 0700,
    ours alone) that is removed afterwards.  Nothing another user could have
    written (a planted folder, marker or symlink under /tmp) is trusted or
    followed.  BCC can unpack the archive by itself, but it renames a
    directory into place, which fails (EXDEV) on overlayfs such as
    virtme-ng's /tmp, and it prefers /lib/modules/RELEASE/build, which for an
    O= build folder holds only generated headers.  Yields the folder for
    BCC_KERNEL_SOURCE, or None to leave BCC to its own search."""
    if os.environ.get("BCC_KERNEL_SOURCE") or not os.path.exists(KHEADERS):
        yield None
        return
    dest = tempfile.mkdtemp(prefix=f"dupstrace-kheaders-{os.uname().release}-")
    try:
        subprocess.run(["tar", "-xf", KHEADERS, "-C", dest, "--no-same-owner"], check=True)
        yield dest
    finally:
        shutil.rmtree(dest, ignore_errors=True)


TRACEFS_EVENTS = ("/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events")


def attach(probes: Probes, text: str):  # noqa: ANN201 - returns (a bcc.BPF, what could not be attached)
    """Load the program and attach every probe.  The required ones (the
    tracepoints, call_usermodehelper_exec) end the tool when they fail; an
    optional one that fails is named in the result and the rest still run."""
    from bcc import BPF  # Debian's python3-bpfcc; imported late so -h works anywhere

    if not any(os.path.isdir(path) for path in TRACEFS_EVENTS):
        raise SystemExit("dupstrace: tracefs is not mounted, so no tracepoint can be found; "
                         "mount -t tracefs nodev /sys/kernel/tracing")
    for category, event in TRACEPOINTS:
        if not BPF.tracepoint_exists(category, event):
            raise SystemExit(f"dupstrace: this kernel has no tracepoint {category}:{event}; "
                             "it needs CONFIG_MODULES and CONFIG_FTRACE_SYSCALLS")
    with kernel_headers() as headers:
        if headers:
            os.environ["BCC_KERNEL_SOURCE"] = headers
        try:
            bpf = BPF(text=text)
        finally:
            if headers:
                del os.environ["BCC_KERNEL_SOURCE"]
    bpf.attach_kprobe(event=UMH_EXEC, fn_name="trace_umh_exec")
    optional = []
    if probes.dups:
        optional += [("kprobe", DUPS_FUNC, "trace_dups_entry", "DUPS"),
                     ("kretprobe", DUPS_FUNC, "trace_dups_return", "DUPS")]
    if probes.read_file:
        optional.append(("kretprobe", probes.read_file, "trace_read_file_return", "WASTE"))
    if probes.find_module:
        optional.append(("kprobe", probes.find_module, "trace_find_module", "module names of loads"))
    failed = []
    for kind, event, fn_name, what in optional:
        try:
            getattr(bpf, f"attach_{kind}")(event=event, fn_name=fn_name)
        except Exception as err:  # bcc raises bare Exceptions for attach errors
            failed.append(f"{what}: cannot attach the {kind} on {event}() ({err})")
    return bpf, failed


def main(argv: list[str] | None = None, prog: str = "dupstrace") -> int:
    args = parse_args(argv, prog)
    functions = kprobe_functions()
    probes = probe_kernel(functions) if functions else Probes(dups=True, read_file=READ_FILE_FUNCS[0],
                                                              find_module=FIND_MODULE_FUNCS[0])
    text = program(probes, args.module)
    if args.ebpf:
        print(text)
        return 0
    if os.geteuid() != 0:
        print("dupstrace: must run as root (BPF)", file=sys.stderr)
        return 1
    if not functions:
        print("dupstrace: cannot list the kernel's functions (available_filter_functions, "
              "/proc/kallsyms); mount tracefs (mount -t tracefs nodev /sys/kernel/tracing) "
              "and run as root", file=sys.stderr)
        return 1
    if UMH_EXEC not in functions:
        print(f"dupstrace: {UMH_EXEC}() cannot be probed on this kernel", file=sys.stderr)
        return 1
    try:
        bpf, not_attached = attach(probes, text)
    except Exception as err:  # bcc raises bare Exceptions for compile/attach errors
        print(f"dupstrace: cannot load the BPF program: {err}", file=sys.stderr)
        return 1

    sampler = VmallocSampler()
    sampler.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("Tracing module requests... Hit Ctrl-C to end.", file=sys.stderr, flush=True)
    started = time.monotonic()
    deadline = started + args.duration if args.duration else None
    printed = 0

    def session() -> Session:
        return Session(kernel=os.uname().release, seconds=round(time.monotonic() - started, 3),
                       modules=read_counts(bpf["counts"]), vmalloc_start_kb=sampler.start_kb,
                       vmalloc_peak_kb=sampler.peak_kb, dups_traced=probes.dups,
                       untraced=probes.untraced() + not_attached)

    while not stop.is_set():
        now = time.monotonic()
        waits = [t for t in (deadline, started + (printed + 1) * args.interval if args.interval else None) if t]
        if stop.wait(max(0.0, min(waits) - now) if waits else None):
            break
        if deadline and time.monotonic() >= deadline:
            break
        printed += 1
        if args.json:
            print(session().to_json(), flush=True)
        else:
            print(f"{time.strftime('%H:%M:%S')}\n{table(session())}\n", flush=True)
        if args.count and printed >= args.count:
            sampler.stop()
            return 0
    sampler.stop()
    print(session().to_json() if args.json else table(session()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
