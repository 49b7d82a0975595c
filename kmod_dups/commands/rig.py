"""``kmod-dups rig``: build the userspace rig against a variant's dups.c and
run a scenario under ASan, TSan or no sanitizer."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from kmod_dups import rig
from kmod_dups.codegen import bases
from kmod_dups.codegen.render import VARIANTS
from kmod_dups.errors import UserError

EPILOG = """\
scenarios (the check each is built to break in the posted code):
{scenarios}

examples:
  kmod-dups rig
        hardened dups.c, ASan, the mixed "stress" scenario (100000 requests)
  kmod-dups rig --variant as-posted --scenario reload --expect-defect
        defect (c): a request after rmmod gets the old result and modprobe
        never runs; exits 0 because the defect showed
  kmod-dups rig --variant as-posted --sanitizer thread --scenario nowait --seed 7 --expect-defect early
        defect (e) under TSan, reproducibly with seed 7
  kmod-dups rig --variant as-posted --scenario uaf --expect-defect uaf
        defect (a): ASan names the use of a freed entry and where it was freed
  kmod-dups rig --variant as-posted --scenario nowait --serial --seed 6 --expect-defect early
        one task at a time, the next picked from seed 6 at every primitive,
        in virtual time: the same seed replays the same interleaving
  kmod-dups rig --base 7.2 --scenario reload --expect-defect reload
        Debian's 7.2 tree's own dups.c and kmod.c, unmodified: a request
        after rmmod within 60 s gets the old result
  kmod-dups rig --base 7.2 --fixups --scenario reload
        the same tree with its fix-up series applied: every request after
        rmmod runs modprobe
  kmod-dups rig --scenario stress --requests 1000000 --threads 8
        the benchmark: one million requests on the hardened variant
  kmod-dups rig --sanitizer none --scenario dups --rig-arg=--param=module.enable_dups_trace=1
        duplicates reported with WARN() and a stack instead of pr_warn()
  kmod-dups rig --variant as-posted --rig-arg=--stall=wait:200:90000 --scenario dups
        any driver option passes through --rig-arg (see --rig-help)

Exit status: 0 when the run met the expectation (every check passed, or with
--expect-defect the named check failed), 1 when it did not, 2 on errors.
Builds are cached in ~/.cache/kmod-dups/rig/; each run's command, stdout and
stderr are kept in a folder under runs/ there (or --log-dir).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scenarios = "\n".join(f"  {name:<8} {help_} [{focus or 'all'}]"
                          for name, (focus, help_) in rig.SCENARIOS.items())
    p = subparsers.add_parser(
        "rig",
        help="run dups.c in a userspace rig (pthreads, ASan/TSan) against modelled modprobe",
        description="Compile the generated dups.c of a variant, unmodified, against userspace "
        "implementations of the kernel primitives it uses (kernel/rig/), then run a scenario: "
        "threads call a model of request_module() / request_module_nowait() on modules that load, "
        "fail, get unloaded, while allocations fail, tasks get killed and every primitive is "
        "randomly delayed from a seed. Each result is checked against what modprobe would say.",
        epilog=EPILOG.format(scenarios=scenarios),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--variant", choices=VARIANTS, default="hardened",
                   help="dups.c variant (default: %(default)s)")
    bases.add_arguments(p, tree_help="run this kernel tree's own kernel/module/dups.c and kmod.c, "
                        "unmodified (Linux 6.4 or later), instead of a variant's")
    p.add_argument("--fixups", action="store_true",
                   help="with --base/--tree: run the tree's code with its fix-up series applied "
                   "(what `kmod-dups series` writes for it)")
    p.add_argument("--sanitizer", choices=rig.SANITIZERS, default="address",
                   help="address (ASan + UBSan), thread (TSan) or none (the rig's own poisoning "
                   "and debug checks only) (default: %(default)s)")
    p.add_argument("--scenario", choices=list(rig.SCENARIOS), default="stress",
                   help="workload (default: %(default)s)")
    p.add_argument("--threads", type=_positive, metavar="N",
                   help="requesting threads (default: the scenario's, 4; stress: 8)")
    p.add_argument("--requests", type=_positive, metavar="N",
                   help="requests in all (default: the scenario's, 1000 to 100000)")
    p.add_argument("--seed", type=int, default=1, metavar="N",
                   help="seed of the workload and of the injected delays (default: %(default)s)")
    p.add_argument("--serial", action="store_true",
                   help="run one task at a time and pick the next from the seed at every "
                   "perturbation and blocking point, in virtual time (timeouts cost no real "
                   "time): a seed replays one interleaving exactly")
    p.add_argument("--expect-defect", nargs="?", const="any", metavar="CHECK",
                   choices=["any", *rig.known_checks()],
                   help="succeed only if the run fails: any check, or this one (uaf, dup-value, "
                   "reload, nomem, early, kill, race, ...)")
    p.add_argument("--linger-ms", type=float, default=rig.DEFAULT_LINGER_MS, metavar="MS",
                   help="what the posted 60 * HZ linger lasts; sets the jiffy length at build time "
                   "(default: %(default)s)")
    p.add_argument("--killable-fallback", action="store_true",
                   help="render dups.c for a base without wait_for_completion_state() "
                   "(wait_for_completion_killable() instead)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="kill the run after S seconds (default: none; the driver reports a hang "
                   "after 30 s without progress)")
    p.add_argument("--rig-arg", action="append", default=[], metavar="ARG",
                   help="pass an option to the driver, e.g. --rig-arg=--nomem-permille=300 "
                   "(repeatable; see --rig-help)")
    p.add_argument("--rig-help", action="store_true", help="show the driver's own options and exit")
    p.add_argument("--log-dir", metavar="DIR", help="keep the run's logs under DIR")
    p.add_argument("--jobs", "-j", type=_positive, default=2, metavar="N",
                   help="parallel compile jobs (default: %(default)s)")
    p.add_argument("--build-only", action="store_true", help="build the binary, print its path, exit")
    p.add_argument("--quiet", "-q", action="store_true", help="only the verdict line")
    p.set_defaults(func=main)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    say = None if args.quiet else _say
    tree = Path(args.tree) if args.tree else bases.rig_tree(args.base, say=say) if args.base else None
    if args.fixups:
        if tree is None:
            raise UserError("--fixups needs a tree that carries dups.c: --base 6.12|7.2 or --tree DIR")
        tree = bases.fixed_rig_tree(tree)
        if say:
            say(f"the tree's files with its fix-up series applied: {tree}")
    config = rig.BuildConfig(variant=args.variant, sanitizer=args.sanitizer,
                             linger_ms=args.linger_ms, wait_state=not args.killable_fallback, tree=tree)
    built = rig.build(config, jobs=args.jobs, progress=say)
    if args.build_only:
        print(built.binary)
        return 0
    if args.rig_help:
        return subprocess.run([str(built.binary), "--help"]).returncode
    request = rig.RunRequest(scenario=args.scenario, threads=args.threads, requests=args.requests,
                             seed=args.seed, serial=args.serial, extra_args=tuple(args.rig_arg),
                             timeout_s=args.timeout)
    if say:
        say(f"running scenario {args.scenario} (seed {args.seed}{', serial' if args.serial else ''})")
    result = rig.run(built, request, log_root=Path(args.log_dir) if args.log_dir else None,
                     progress=say)
    if not args.quiet:
        for line in rig.summarize(result, built):
            print(line)
    verdict = rig.judge(result, args.expect_defect)
    print(("ok: " if verdict.ok else "NOT OK: ") + verdict.message)
    return 0 if verdict.ok else 1
