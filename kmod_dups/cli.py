"""The ``kmod-dups`` command: one subcommand per step of the pipeline.

Each step lives in its own module, which exposes ``register(subparsers)``;
this file only wires them together and turns ``UserError`` into a one-line
message and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from kmod_dups.errors import UserError

# Data flows one way: generate, series, build, boot, trace, run.  A module
# listed here that is not installed yet is skipped, so the CLI works while
# later steps are still being written.
SUBCOMMAND_MODULES = [
    "kmod_dups.codegen.cli",
    "kmod_dups.commands.build",
    "kmod_dups.qemu.cli",
    "kmod_dups.commands.trace",
    "kmod_dups.commands.run",
    "kmod_dups.commands.selftest",
    "kmod_dups.commands.rig",
    "kmod_dups.commands.stress",
    "kmod_dups.commands.report",
]

EPILOG = """\
examples:
  kmod-dups generate -o out/              # dups.c, Kconfig and hooks for the default base
  kmod-dups series -o series/             # git format-patch series for Debian's linux-source-6.1
  kmod-dups series --tree ~/linux -o s/ --variant as-posted
  kmod-dups <command> --help              # more on each command
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kmod-dups",
        description="Generate, build, boot-test and trace the kernel's "
        "duplicate module-request suppressor (CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:
                continue
            raise
        module.register(subparsers)
    return parser


# Commands that are whole tools of their own, with their own options: the
# rest of the command line goes to the tool untouched.
PASSTHROUGH = {"trace": "kmod_dups.dupstrace"}


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as an interrupt so that every cleanup runs: the
    boot harness kills its guest's process group (QEMU runs in a group of
    its own and would outlive us), builds stop make."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _terminate)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PASSTHROUGH:
        tool = importlib.import_module(PASSTHROUGH[argv[0]])
        return int(tool.main(argv[1:], prog=f"kmod-dups {argv[0]}") or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    install_signal_handlers()
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"kmod-dups: error: {err}", file=sys.stderr)
        return err.exit_code
    except Terminated:
        print("kmod-dups: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("kmod-dups: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into head(1) and the like: not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
