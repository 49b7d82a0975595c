"""`kmod-dups run`: the main job, from the generator to the verdict."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kmod_dups.codegen import bases, basetree
from kmod_dups.cache import new_run_folder
from kmod_dups.errors import UserError

EPILOG = """\
examples:
  kmod-dups run                      # default base and variant, 8 vCPUs
  kmod-dups run --cpus 64            # a bigger storm (boots take longer under TCG)
  kmod-dups run --variant as-posted  # the seed's logic as posted
  kmod-dups run --no-control         # the feature-on kernel only
  kmod-dups run --base 7.2 --cpus 4  # 7.2: its own dups.c, the fix-up series, and the control
"""


def say(text: str) -> None:
    print(f"kmod-dups: {text}", file=sys.stderr, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    from kmod_dups import run
    from kmod_dups.build import pipeline
    from kmod_dups.codegen.render import check_variant

    check_variant(args.variant)
    if args.cpus < run.MIN_CPUS:
        raise UserError(f"--cpus {args.cpus}: a storm needs at least {run.MIN_CPUS} callers "
                        "(one first request and a duplicate); give --cpus 2 or more")
    tree = bases.from_args(args, say=say)
    folder = new_run_folder(args.runs, "run", args.cpus)
    say(f"run folder {folder}")
    # A tree that carries dups.c: its own code (upstream), the fix-up
    # series (dups) and the feature off (control).
    upstream = tree is not None and basetree.probe(tree).has_dups
    if upstream and args.variant != "hardened":
        raise UserError(f"{tree} carries dups.c: its kernels are its own code and the fix-up series, "
                        f"which has the hardened semantics; --variant {args.variant} is for trees without it")
    kernels = [("upstream", run.FEATURE_CONFIGS)] if upstream else []
    kernels.append(("dups", run.FEATURE_CONFIGS))
    if not args.no_control:
        kernels.append(("control", run.CONTROL_CONFIGS))
    builds = {}
    for kernel, configs in kernels:
        what = "its own dups.c" if kernel == "upstream" else "the fix-up series" if upstream else args.variant
        say(f"[{kernel}] building {'+'.join(configs)} ({what})")
        record = pipeline.run(pipeline.Request(configs=list(configs), tree=tree, variant=args.variant,
                                               upstream=kernel == "upstream"))
        builds[kernel] = Path(record["builddir"])
    report = run.RunReport([])
    for kernel, _ in kernels:
        report.runs.append(run.run_kernel(kernel, builds[kernel], args.cpus, folder / "guests", run.TARGETS, say))
        report.write(folder)
    print(report.text())
    if args.json:
        print(json.dumps(report.data(), indent=2, default=str))
    say(f"report in {folder}/report.txt and report.json")
    return 0 if report.verdict.ok else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="the main job: build, boot, storm and trace, and give the convergence verdict",
        description="Generate the series for the base tree, build the feature-on and the control "
        "kernels, boot each with N vCPUs, storm request_module() from every CPU for a delayed module, "
        "a failing one, a missing one and a real one under dupstrace, and judge per module whether "
        "N requests cost one modprobe and one finit_module() with every caller getting the first "
        "request's result.  Exit status 0 when the feature-on kernel converges.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpus", type=int, default=8, help="vCPUs per guest (default 8: a few minutes under TCG)")
    parser.add_argument("--variant", default="hardened", help="hardened (default) or as-posted")
    bases.add_arguments(parser, tree_help="base kernel tree (default: Debian's linux-source-6.1)")
    parser.add_argument("--runs", type=Path, help="where run folders go (default ~/.cache/kmod-dups/runs)")
    parser.add_argument("--no-control", action="store_true", help="skip the control kernel")
    parser.add_argument("--json", action="store_true", help="also print the report as JSON")
    parser.set_defaults(func=cmd_run)
