"""`kmod-dups selftest`: the kernel's own kmod selftest
(tools/testing/selftests/kmod/kmod.sh) in a guest of the built kernel."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kmod_dups.codegen import bases, basetree
from kmod_dups.cache import new_run_folder
from kmod_dups.errors import UserError

EPILOG = """\
examples:
  kmod-dups selftest                       # every enabled test, kmod.sh's own counts, 4 vCPUs
  kmod-dups selftest 0008 0009             # the two request_module() storms (150 rounds each)
  kmod-dups selftest --count 1             # every test once: a quick pass
  kmod-dups selftest --base 7.2 --upstream 0008   # 7.2's own dups.c
  kmod-dups selftest --control 0008        # the same kernel without the feature
  kmod-dups selftest --build DIR 0001      # a kernel already built (with the test_kmod fragment)

The table has one row per test: pass, fail or skip, the runs kmod.sh made,
the wall time, the modprobe launches and the duplicate requests the kernel
reported while it ran. Exit status 0 when every test passed (or was skipped
by kmod.sh), 1 when one failed, 2 on errors.
"""


def say(text: str) -> None:
    print(f"kmod-dups: {text}", file=sys.stderr, flush=True)


def _build(args: argparse.Namespace) -> Path:
    """The kernel to test: --build, or built for the base and variant."""
    from kmod_dups import run
    from kmod_dups.build import pipeline
    from kmod_dups.codegen.render import check_variant

    if args.build:
        if args.upstream or args.control or args.base or args.tree or args.variant != "hardened":
            raise UserError("--build tests a kernel as it is built: it takes no --base, --tree, --variant, "
                            "--upstream or --control")
        return args.build
    check_variant(args.variant)
    tree = bases.from_args(args, say=say)
    # the tests asked for, known before minutes of building
    from kmod_dups import kmod_selftest

    source = (tree if tree is not None else basetree.default_base_tree()) / kmod_selftest.KMOD_SH
    if source.is_file():
        _check_tests(source, args)
    if args.upstream and (tree is None or not basetree.probe(tree).has_dups):
        raise UserError("--upstream builds a tree's own dups.c: pass --base 6.12|7.2 or a --tree that has it")
    configs = run.CONTROL_CONFIGS if args.control else run.FEATURE_CONFIGS
    say(f"building {'+'.join(configs)}")
    record = pipeline.run(pipeline.Request(configs=list(configs), tree=tree, variant=args.variant,
                                           upstream=args.upstream))
    return Path(record["builddir"])


def _check_tests(script: Path, args: argparse.Namespace) -> None:
    """The tests asked for are kmod.sh's (one line if not)."""
    from kmod_dups import kmod_selftest

    kmod_selftest.plan(kmod_selftest.read_tests(script), args.tests or None, args.count)


def cmd_selftest(args: argparse.Namespace) -> int:
    from kmod_dups import kmod_selftest

    if args.cpus < 1:
        raise UserError(f"--cpus {args.cpus}: give at least 1")
    if args.count is not None and args.count < 1:
        raise UserError(f"--count {args.count}: run each test at least once")
    build = _build(args)
    # what the guest will need, checked before anything is written
    from kmod_dups import kmods

    _check_tests(kmod_selftest.script_path(kmods.open_build(build).path), args)
    folder = new_run_folder(args.runs, "selftest", args.cpus)
    say(f"run folder {folder}; booting {args.cpus} vCPUs for kmod.sh "
        f"{' '.join(args.tests) if args.tests else '(every enabled test)'}")
    result = kmod_selftest.run(build, args.cpus, folder, select=args.tests or None, count=args.count,
                               timeout=args.timeout)
    if not result.results:
        raise UserError(f"the guest ran no kmod.sh test (guest: {result.guest.result}); see {result.guest.folder}")
    text = kmod_selftest.table(result.results, result.tests)
    (folder / "selftest.txt").write_text(text + "\n")
    print(text)
    failed = [r.id for r in result.results if r.status == "fail"]
    say(f"{len(result.results) - len(failed)} of {len(result.results)} passed or skipped; table in "
        f"{folder}/selftest.txt")
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "selftest", help="run the kernel's kmod selftest (kmod.sh) in a guest of the built kernel",
        description="Boot the kernel (built for the base and variant, or --build) and run the tree's "
        "tools/testing/selftests/kmod/kmod.sh there against its test_kmod module, each test as its "
        "own kmod.sh invocation, and print the table.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tests", nargs="*", metavar="TEST", help="kmod.sh test ids (0001 ... 0013; "
                        "default: every test kmod.sh enables)")
    parser.add_argument("--count", type=int, metavar="N",
                        help="run each test N times (default: kmod.sh's own count, 150 for 0008 and 0009)")
    parser.add_argument("--cpus", type=int, default=4, help="guest vCPUs (default: %(default)s)")
    parser.add_argument("--build", type=Path, metavar="DIR", help="a build folder to test as it is")
    bases.add_arguments(parser, tree_help="base kernel tree (default: Debian's linux-source-6.1)")
    parser.add_argument("--variant", default="hardened", help="hardened (default) or as-posted")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--control", action="store_true", help="the kernel without the feature")
    kind.add_argument("--upstream", action="store_true",
                      help="a tree that carries dups.c, built with its own code (no fix-up series)")
    parser.add_argument("--timeout", type=float, metavar="S", help="stop the guest after S seconds")
    parser.add_argument("--runs", type=Path, help="where run folders go (default ~/.cache/kmod-dups/runs)")
    parser.set_defaults(func=cmd_selftest)
