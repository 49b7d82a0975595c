"""`kmod-dups trace`: the dupstrace BCC tool (kmod_dups/dupstrace.py), which
also runs on its own on any live kernel.  kmod_dups.cli hands it the rest
of the command line; this module only lists it in `kmod-dups --help`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser(
        "trace", add_help=False,
        help="count module requests, modprobe launches and finit_module() per module (BCC; "
        "`kmod-dups trace -h`)")
