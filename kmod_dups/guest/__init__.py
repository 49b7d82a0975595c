"""What runs in the guest: ``session`` (one guest script through the boot
API), ``storm`` (the storm script's variables and the parser of what the
guest prints), and the guest's shell as real files: ``lib.sh`` (every
script's functions), ``trace.sh`` (dupstrace around a session),
``stress.sh`` (the debug-kernel scenarios), ``semantics.sh`` and
``selftest.sh``.  They are POSIX sh, shellcheck-clean, and read only
variables; ``script()`` is the one Python step that puts those variables
first, then the libraries, then the body (one function call a line, made by
the job)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from importlib import resources

LIBRARIES = ("lib", "trace", "stress", "semantics", "selftest")
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
HEADER = """#!/bin/sh
# Written by kmod-dups; runs as root inside the guest.  Lines starting with
# "KDS " are for the host (kmod_dups.guest.storm.parse_output).
# Values below and conditions for eval are single-quoted on purpose (each
# library file is checked with its own directives).
# shellcheck disable=SC2016
"""


def library(name: str) -> str:
    if name not in LIBRARIES:
        raise ValueError(f"no guest library {name!r}")
    return resources.files(__package__).joinpath(f"{name}.sh").read_text(encoding="utf-8")


def path(name: str) -> str:
    """Where a library file is (for tests that run it)."""
    return str(resources.files(__package__).joinpath(f"{name}.sh"))


def assignments(variables: Mapping[str, object]) -> str:
    lines = []
    for key, value in variables.items():
        if not _NAME.match(key):
            raise ValueError(f"not a shell variable name: {key!r}")
        lines.append(f"{key}={shlex.quote(str(value))}")
    return "\n".join(lines) + "\n"


def script(variables: Mapping[str, object], libraries: Sequence[str], body: Sequence[str] = ()) -> str:
    """A whole guest script: variables, libraries, body."""
    parts = [HEADER + assignments(variables)]
    parts += ["\n" + library(name) for name in libraries]
    if body:
        parts.append("\n" + "\n".join(body) + "\n")
    return "".join(parts)
