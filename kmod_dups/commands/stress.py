"""`kmod-dups stress`: debug-kernel storms, fault injection and starvation."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kmod_dups.codegen import bases
from kmod_dups.cache import new_run_folder
from kmod_dups.errors import UserError

EPILOG = """\
scenarios (default: all, in this order):
{scenarios}

examples:
  kmod-dups stress
        build boot+dups+debug (hardened), boot 4 vCPUs, run every scenario;
        exit 0 only if all results are correct with zero kernel reports
  kmod-dups stress --cpus 64 --rounds 25
        the same at 64 vCPUs (about 12,000 requests)
  kmod-dups stress --variant as-posted --test-linger-ms 2000 --scenario reload \\
      --scenario late-waiter
        the posted code, its 60 s linger cut to 2 s in a test build: shows the
        stale result and the use-after-free
  kmod-dups stress --cpus 8 --scenario starve --starve-threads 300
        latency of an unrelated request under 300 duplicates
  kmod-dups stress --build ~/.cache/kmod-dups/builds/boot+dups+debug-hardened --scenario failslab

The debug kernel (KASAN, lockdep, debug objects, DEBUG_ATOMIC_SLEEP, failslab;
Kconfig.fragments/debug.config) is built once per variant and kept in
~/.cache/kmod-dups/builds/boot+dups+debug-<variant>.  Each run leaves
report.txt and report.json in its folder, and the guest's console and output
under guests/.  Exit status: 0 when every scenario was correct and the kernel
reported nothing; 1 otherwise (expected for the as-posted variant).
"""


def say(text: str) -> None:
    print(f"kmod-dups: {text}", file=sys.stderr, flush=True)


def sizes_from(args: argparse.Namespace):  # noqa: ANN201 - debugstorm.Sizes, imported lazily
    from kmod_dups import debugstorm

    try:
        return debugstorm.Sizes(rounds=args.rounds, repeat=args.repeat, per_cpu=args.per_cpu, crowd=args.crowd,
                                inject=args.inject, races=args.races, starve_threads=args.starve_threads,
                                starve_delays_ms=tuple(args.starve_delay or debugstorm.Sizes().starve_delays_ms))
    except ValueError as err:
        raise UserError(f"storm size: {err}") from None


def cmd_stress(args: argparse.Namespace) -> int:
    from kmod_dups import debugstorm, stress
    from kmod_dups.codegen.render import check_linger, check_variant

    check_variant(args.variant)
    check_linger(args.variant, args.linger_ms)
    if args.cpus < 1:
        raise UserError(f"--cpus {args.cpus}: give at least 1")
    names = args.scenario or debugstorm.DEFAULT_SCENARIOS
    try:
        names = debugstorm.check_scenarios(names, args.cpus)
    except ValueError as err:
        raise UserError(str(err)) from None
    sizes = sizes_from(args)
    if args.build:
        build = args.build.expanduser().resolve()
        if args.linger_ms is not None:
            raise UserError("--test-linger-ms makes a build; with --build the build's own linger is used")
    else:
        from kmod_dups.build import pipeline

        say(f"building {'+'.join(stress.DEBUG_CONFIGS)} ({pipeline.flavour(args.variant, args.linger_ms)})")
        record = pipeline.run(pipeline.Request(configs=list(stress.DEBUG_CONFIGS), tree=bases.from_args(args, say=say),
                                               variant=args.variant, linger_ms=args.linger_ms))
        build = Path(record["builddir"])
    ctx, names = stress.check(build, args.cpus, names, sizes)
    folder = new_run_folder(args.runs, f"stress-{ctx.variant}", args.cpus)
    say(f"run folder {folder}")
    report = stress.run_stress(build, args.cpus, names, sizes, folder / "guests", say, timeout=args.timeout)
    stress.write_report(folder, report)
    print(stress.table(report))
    print()
    print(stress.details(report))
    if args.json:
        print(json.dumps(stress.report_data(report), indent=2, default=str))
    verdict = "clean" if report.clean else "NOT clean"
    say(f"{report.variant}: {verdict}: {report.requests} requests, {report.reports} kernel reports; "
        f"report in {folder}/report.txt")
    return 0 if report.clean else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    from kmod_dups import debugstorm

    scenarios = "\n".join(f"  {s.name:<13} {s.what}" for s in debugstorm.SCENARIOS.values())
    defaults = debugstorm.Sizes()
    p = subparsers.add_parser(
        "stress", help="debug-kernel storms (KASAN, lockdep, failslab) for the hardened or as-posted variant",
        description="Build the debug kernel boot+dups+debug for a variant, boot it with N vCPUs and run "
        "storms of request_module()/request_module_nowait() with unloads, failing and missing modules, "
        "more callers than CPUs, dups allocations failed by failslab, killed first requests, a waiter "
        "kept off its CPU, and an unrelated request under hundreds of duplicates.  Each scenario is "
        "judged on its results and on what the kernel reported (KASAN, lockdep, debug objects, "
        "refcount, WARN, BUG) while it ran.",
        epilog=EPILOG.format(scenarios=scenarios), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="hardened", help="hardened (default) or as-posted")
    p.add_argument("--test-linger-ms", type=int, metavar="MS", dest="linger_ms",
                   help="as-posted only: build a test kernel whose completed entries linger MS ms, not 60 s")
    p.add_argument("--build", type=Path, metavar="DIR", help="use this kmod-dups build folder (a debug "
                   "kernel) instead of building boot+dups+debug")
    bases.add_arguments(p, tree_help="base kernel tree (default: Debian's linux-source-6.1)")
    p.add_argument("--cpus", type=int, default=4, help="vCPUs (default 4; 64 takes tens of minutes under TCG)")
    p.add_argument("--scenario", action="append", metavar="NAME", help="run this scenario (repeatable; "
                   "default: all)")
    p.add_argument("--rounds", type=int, default=defaults.rounds, help="rounds per storm (default %(default)s)")
    p.add_argument("--repeat", type=int, default=defaults.repeat,
                   help="unload-and-storm repetitions in mix and failslab (default %(default)s)")
    p.add_argument("--per-cpu", type=int, default=defaults.per_cpu,
                   help="storm callers per vCPU (default %(default)s)")
    p.add_argument("--crowd", type=int, default=defaults.crowd,
                   help="callers per vCPU in the crowd storm (default %(default)s)")
    p.add_argument("--inject", type=int, default=defaults.inject,
                   help="failslab: every Nth call fails its dups allocation (default %(default)s)")
    p.add_argument("--races", type=int, default=defaults.races,
                   help="repetitions of reload and nowait-race (default %(default)s)")
    p.add_argument("--starve-threads", type=int, default=defaults.starve_threads,
                   help="duplicates in flight in starve (default %(default)s)")
    p.add_argument("--starve-delay", type=int, action="append", metavar="MS",
                   help="init delay of the module the starve storm loads (repeatable; default "
                   f"{' and '.join(map(str, defaults.starve_delays_ms))}: below and above the 5 s "
                   "a request waits for a modprobe slot)")
    p.add_argument("--runs", type=Path, help="where run folders go (default ~/.cache/kmod-dups/runs)")
    p.add_argument("--timeout", type=float, metavar="S", help="wall-clock limit of the guest run")
    p.add_argument("--json", action="store_true", help="also print the report as JSON")
    p.set_defaults(func=cmd_stress)
