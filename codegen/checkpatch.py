"""Run the base tree's own scripts/checkpatch.pl on a patch and read its
findings, so the cover letter can name and justify what stays."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kmod_dups.errors import UserError

_FINDING = re.compile(r"^(ERROR|WARNING|CHECK):(\w+): (.*)$", re.M)
_FILE = re.compile(r"^#\d+: FILE: (\S+?):\d+:", re.M)


@dataclass(frozen=True)
class Finding:
    level: str  # ERROR, WARNING or CHECK (--strict)
    kind: str  # checkpatch's type, e.g. LONG_LINE
    message: str
    file: str  # "" when checkpatch names no file (commit message, new files)


def run(tree: Path, patch: Path) -> list[Finding]:
    script = tree / "scripts" / "checkpatch.pl"
    if not script.is_file():
        raise UserError(f"{tree} has no scripts/checkpatch.pl to check the series with")
    if shutil.which("perl") is None:
        raise UserError("perl is not installed; checkpatch.pl needs it: apt-get install perl")
    proc = subprocess.run(
        ["perl", str(script), "--strict", "--show-types", "--no-summary", str(patch.resolve())],
        cwd=tree, capture_output=True, text=True,
    )
    return parse(proc.stdout)


def parse(output: str) -> list[Finding]:
    findings = []
    blocks = re.split(r"\n\n+", output)
    for block in blocks:
        match = _FINDING.search(block)
        if not match:
            continue
        file_match = _FILE.search(block)
        findings.append(Finding(match[1], match[2], match[3], file_match[1] if file_match else ""))
    return findings
