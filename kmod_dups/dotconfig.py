"""A kernel .config as a dict: the one reader every job uses.

``CONFIG_X=value`` lines only, keyed by the full ``CONFIG_X`` name; options
that are not set (``# CONFIG_X is not set``) are absent, so ``.get(name,
"n")`` reads them as the kernel does.  String values keep their quotes
unless *unquote*.
"""

from __future__ import annotations

import re
from pathlib import Path

_SET = re.compile(r"^(CONFIG_\w+)=(.*)$")


def parse(text: str, *, unquote: bool = True) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _SET.match(line.strip())
        if match:
            value = match.group(2)
            values[match.group(1)] = value.strip('"') if unquote else value
    return values


def read(path: Path, *, unquote: bool = True) -> dict[str, str]:
    """*path*'s options (OSError when it cannot be read)."""
    return parse(path.read_text(encoding="utf-8", errors="replace"), unquote=unquote)
