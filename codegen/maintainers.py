"""To: and Cc: for a series, from the tree's own scripts/get_maintainer.pl,
so that the patches go out with `git send-email` or b4 as they are."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from kmod_dups.codegen.basetree import BaseTree

SCRIPT = "scripts/get_maintainer.pl"


@dataclass(frozen=True)
class Recipients:
    to: tuple[str, ...]
    cc: tuple[str, ...]
    # Why there are none, if there are none.
    missing: str | None = None

    def format_patch_args(self) -> list[str]:
        return [f"--to={who}" for who in self.to] + [f"--cc={who}" for who in self.cc]

    def summary(self) -> str:
        if self.missing:
            return f"no To:/Cc: ({self.missing})"
        return f"To: {', '.join(self.to)}" + (f"; Cc: {', '.join(self.cc)}" if self.cc else "")


def parse(output: str) -> Recipients:
    """get_maintainer.pl's lines, "Name <addr> (role:SECTION)": maintainers
    go in To:, reviewers and lists in Cc:."""
    to: list[str] = []
    cc: list[str] = []
    for line in output.splitlines():
        match = re.match(r"^\s*(.+?)\s*(?:\(([^)]*)\))?\s*$", line)
        if not match or "@" not in match.group(1):
            continue
        who, role = match.group(1), match.group(2) or ""
        (to if role.startswith("maintainer") else cc).append(who)
    return Recipients(tuple(dict.fromkeys(to)), tuple(w for w in dict.fromkeys(cc) if w not in to))


def recipients(tree: BaseTree, files: list[str]) -> Recipients:
    script = tree.path / SCRIPT
    if not script.is_file() or not (tree.path / "MAINTAINERS").is_file():
        return Recipients((), (), f"{tree.path} has no {SCRIPT} and MAINTAINERS")
    proc = subprocess.run(["perl", str(script), "--no-git", "--no-git-fallback", "--roles", "-f", *files],
                          cwd=tree.path, capture_output=True, text=True)
    found = parse(proc.stdout)
    if proc.returncode or not found.to:
        why = (proc.stderr.strip().splitlines() or ["no maintainer"])[-1]
        return Recipients((), (), f"{SCRIPT} names no maintainer for {' '.join(files)}: {why}")
    return found
