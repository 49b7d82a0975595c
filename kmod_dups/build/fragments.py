"""Kconfig fragments: find them by name, read them, merge them.

A fragment is a small ``.config`` excerpt: ``CONFIG_FOO=y`` lines and
``# CONFIG_FOO is not set`` lines, with comments.  Fragments are merged in
the order given and a later fragment overrides an earlier one, which is
what the kernel's scripts/kconfig/merge_config.sh does with the same files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from kmod_dups import dotconfig
from kmod_dups.errors import UserError

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
SUFFIX = ".config"


def fragments_dir() -> Path:
    """Kconfig.fragments/ of this checkout (``KMOD_DUPS_FRAGMENTS`` overrides)."""
    env = os.environ.get("KMOD_DUPS_FRAGMENTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "Kconfig.fragments"


def available(directory: Path | None = None) -> list[str]:
    directory = directory or fragments_dir()
    if not directory.is_dir():
        return []
    return sorted(p.name.removesuffix(SUFFIX) for p in directory.glob(f"*{SUFFIX}"))


def locate(name: str, directory: Path | None = None) -> Path:
    """A fragment by name (``dups``), by file name (``dups.config``) or by
    path (anything with a slash)."""
    directory = directory or fragments_dir()
    if "/" in name:
        path = Path(name).expanduser()
        if not path.is_file():
            raise UserError(f"config fragment {name} does not exist; give a fragment name "
                            f"({', '.join(available(directory)) or 'none found'}) or a readable file")
        return path
    path = directory / (name if name.endswith(SUFFIX) else name + SUFFIX)
    if not path.is_file():
        names = available(directory)
        listing = ", ".join(names) if names else f"none in {directory}"
        raise UserError(f"unknown config fragment {name!r}: choose from {listing}, "
                        "or pass a path to a fragment file")
    return path


@dataclass(frozen=True)
class Setting:
    """One option as a fragment asks for it."""

    symbol: str         # without the CONFIG_ prefix
    value: str          # "y", "m", "n" (for "is not set"), a number or a quoted string
    source: Path
    line: int

    @property
    def where(self) -> str:
        return f"{self.source.name}:{self.line}"

    def as_line(self) -> str:
        if self.value == "n":
            return f"# CONFIG_{self.symbol} is not set"
        return f"CONFIG_{self.symbol}={self.value}"


def parse_line(line: str) -> tuple[str, str] | None:
    """``(symbol, value)`` for a config line, None for anything else."""
    line = line.strip()
    match = _SET.match(line)
    if match:
        return match.group(1).removeprefix("CONFIG_"), match.group(2)
    match = _UNSET.match(line)
    if match:
        return match.group(1).removeprefix("CONFIG_"), "n"
    return None


def read(path: Path) -> list[Setting]:
    """The settings of one fragment, in file order.  Anything that is not a
    setting, a comment or a blank line is an error: merge_config.sh would
    silently ignore it and the build would lack what the author meant."""
    settings = []
    try:
        text = path.read_text()
    except OSError as err:
        raise UserError(f"cannot read config fragment {path}: {err.strerror}") from None
    for number, line in enumerate(text.splitlines(), 1):
        parsed = parse_line(line)
        if parsed:
            settings.append(Setting(parsed[0], parsed[1], path, number))
        elif line.strip() and not line.lstrip().startswith("#"):
            raise UserError(f"{path}:{number}: not a config line: {line.strip()!r} "
                            "(expected CONFIG_FOO=value or '# CONFIG_FOO is not set')")
    return settings


def merge(paths: list[Path]) -> dict[str, Setting]:
    """What the merged fragments ask for: the last setting of each symbol."""
    merged: dict[str, Setting] = {}
    for path in paths:
        for setting in read(path):
            merged.pop(setting.symbol, None)  # keep file order of the winner
            merged[setting.symbol] = setting
    return merged


def read_config(path: Path) -> dict[str, str]:
    """A full .config as ``{symbol: value}`` (no CONFIG_ prefix, strings as
    written, so they compare with a fragment's); unset options are absent."""
    return {key.removeprefix("CONFIG_"): value for key, value in dotconfig.read(path, unquote=False).items()}


def survived(setting: Setting, config: dict[str, str]) -> bool:
    """Whether the final .config has what the fragment asked for."""
    actual = config.get(setting.symbol, "n")
    if setting.value == actual:
        return True
    if setting.value.lower().startswith("0x") and actual.lower().startswith("0x"):
        try:
            return int(setting.value, 16) == int(actual, 16)
        except ValueError:
            return False
    return False


def dropped(requested: dict[str, Setting], config: dict[str, str]) -> list[Setting]:
    """The requested settings the final .config does not have."""
    return [s for s in requested.values() if not survived(s, config)]
