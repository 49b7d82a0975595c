"""`kmod-dups report RUN_DIR`: judge a saved run again and print it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EPILOG = """\
examples:
  kmod-dups report ~/.cache/kmod-dups/runs/run-20261201-211500-8cpu
  kmod-dups report ~/.cache/kmod-dups/runs/stress-hardened-20261201-220000-4cpu --json

exit status: 0 when the run passes today's judges (converged, or clean), 1 when
it does not, 2 for a folder that is not a saved run.
"""


def cmd_report(args: argparse.Namespace) -> int:
    from kmod_dups import report

    rejudged = report.rejudge(args.folder)
    print(rejudged.text())
    if args.json:
        print(json.dumps(rejudged.data(), indent=2, default=str))
    return 0 if rejudged.ok else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="judge a saved run (kmod-dups run or stress) again and print it",
        description="Read a run folder of kmod-dups run or kmod-dups stress (its report.json names the "
        "guests), re-read what each guest printed (output.log, console.log, result.json) and judge it "
        "again with this version's judges, without booting anything.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, metavar="RUN_DIR", help="the run folder")
    parser.add_argument("--json", action="store_true", help="also print the report as JSON")
    parser.set_defaults(func=cmd_report)
