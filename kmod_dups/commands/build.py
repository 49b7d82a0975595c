"""``kmod-dups build``: the patched kernel from config fragments, checked."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from kmod_dups.codegen import bases
from kmod_dups.build import fragments, kconfig, make, pipeline

EPILOG = """\
examples:
  kmod-dups build --config boot bcc test_kmod dups
        the default kernel: feature on, in ~/.cache/kmod-dups/builds/boot+bcc+test_kmod+dups-hardened
  kmod-dups build --config boot bcc test_kmod nodups
        the control kernel: the same tree with the feature off
  kmod-dups build --config boot bcc test_kmod dups-trace --variant as-posted -O /tmp/k-trace
        the seed's code as posted, warnings as WARN() with a stack
  kmod-dups build --config boot dups debug --jobs 2
        a debug kernel (KASAN, lockdep, debug objects, failslab)
  kmod-dups build --config boot dups debug --variant as-posted --test-linger-ms 2000
        a test build of the posted code whose completed entries linger 2 s, not 60 s
  kmod-dups build --tree ~/linux --config boot dups --config-only
        only make and check the .config for another tree (never modified:
        the series is applied in a work tree cloned from it)

fragments ({dir}):
  {names}

Every command's output goes to BUILDDIR/build.log; BUILDDIR/build.json
records the inputs, the artefacts, timings and the ELF checks.  An
interrupted build resumes where it stopped when the command is run again.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    names = fragments.available()
    p = subparsers.add_parser(
        "build",
        help="build the patched kernel from config fragments and check its ELF",
        description="Apply the series to a work tree of the base, merge the config fragments onto "
        "a small starting config, check every requested option survived, build vmlinux, bzImage and "
        "modules out of tree with ccache, then check vmlinux with pyelftools.",
        epilog=EPILOG.format(dir=fragments.fragments_dir(), names=" ".join(names) or "(none found)"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", "-c", nargs="+", action="extend", required=True, metavar="NAME",
                   help="config fragments to merge, in order (a name from Kconfig.fragments/ or a path)")
    bases.add_arguments(p, tree_help="base kernel tree, a git repo (default: Debian's linux-source-6.1, "
                        "unpacked into the cache)")
    p.add_argument("-O", "--builddir", type=Path, metavar="BUILDDIR",
                   help="build folder, make's O= (default: ~/.cache/kmod-dups/builds/<configs>-<variant>)")
    p.add_argument("--variant", default="hardened", help="dups.c variant of the series: hardened "
                   "(default) or as-posted")
    p.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="parallel make jobs (default: %(default)s, the number of CPUs)")
    p.add_argument("--series", type=Path, metavar="DIR",
                   help="apply this format-patch series instead of generating one")
    p.add_argument("--in-place", action="store_true",
                   help="build --tree itself; the series is applied there with git am unless the tree "
                   "already has kernel/module/dups.c")
    p.add_argument("--start-config", default=kconfig.DEFAULT_START, metavar="TARGET|FILE",
                   help=f"starting config the fragments are merged onto: {', '.join(kconfig.STARTS)} or "
                   "a .config file (default: %(default)s)")
    p.add_argument("--cc", default="gcc", help="C compiler (default: %(default)s)")
    p.add_argument("--no-ccache", dest="ccache", action="store_false", help="do not wrap the compiler in ccache")
    p.add_argument("--config-only", action="store_true",
                   help="stop after making and checking the .config")
    p.add_argument("--name", help="build folder name under the cache (default: <configs>-<variant>)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress, only errors")
    p.add_argument("--test-linger-ms", type=int, metavar="MS", dest="linger_ms",
                   help="TEST BUILDS ONLY, as-posted variant: delete a completed entry after MS "
                   "milliseconds instead of the posted 60 s, so its races can be shown in a guest "
                   "(default build folder ...-as-posted-lingerMSms)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    req = pipeline.Request(
        configs=args.config, tree=bases.from_args(args), builddir=args.builddir, variant=args.variant,
        jobs=args.jobs, cc=args.cc, ccache=args.ccache, series=args.series, in_place=args.in_place,
        start=args.start_config, config_only=args.config_only, name=args.name, quiet=args.quiet,
        linger_ms=args.linger_ms,
    )
    try:
        record = pipeline.run(req)
    except make.Interrupted:
        print("kmod-dups: build interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    if args.quiet:
        print(record["builddir"])
    return 0
