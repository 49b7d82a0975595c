"""Run the base tree's own scripts/checkpatch.pl on a patch and read its
findings, so the cover letter can name and justify what stays.

The reading fails closed: checkpatch's exit status, its ``total:`` line and
the findings it printed must agree (0 and no findings, or 1 and exactly as
many findings of each level as the total says).  Anything else, a script
that is missing or not perl, perl dying, output that does not parse, is an
error, never "clean".
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kmod_dups.errors import UserError

_FINDING = re.compile(r"^(ERROR|WARNING|CHECK):(\w+): (.*)$", re.M)
_FILE = re.compile(r"^#\d+: FILE: (\S+?):\d+:", re.M)
_TOTAL = re.compile(r"^total: (\d+) errors, (\d+) warnings, (?:(\d+) checks, )?(\d+) lines checked$", re.M)


class CheckpatchError(UserError):
    """checkpatch.pl did not give a result that can be read."""


@dataclass(frozen=True)
class Finding:
    level: str  # ERROR, WARNING or CHECK (--strict)
    kind: str  # checkpatch's type, e.g. LONG_LINE
    message: str
    file: str  # "" when checkpatch names no file (commit message, new files)


def run(tree: Path, patch: Path, *, script: Path | None = None) -> list[Finding]:
    script = script or tree / "scripts" / "checkpatch.pl"
    if not script.is_file():
        raise CheckpatchError(f"{tree} has no scripts/checkpatch.pl to check the series with")
    if shutil.which("perl") is None:
        raise CheckpatchError("perl is not installed; checkpatch.pl needs it: apt-get install perl")
    proc = subprocess.run(
        ["perl", str(script), "--strict", "--show-types", str(patch.resolve())],
        cwd=tree, capture_output=True, text=True,
    )
    try:
        return read(proc.returncode, proc.stdout)
    except CheckpatchError as err:
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        raise CheckpatchError(f"checkpatch.pl on {patch.name}: {err}" + (f" ({last})" if last else "")) from None


def read(returncode: int, output: str) -> list[Finding]:
    """checkpatch's findings, checked against its exit status and total."""
    totals = _TOTAL.findall(output)
    if len(totals) != 1:
        raise CheckpatchError(f"exit status {returncode} and {len(totals)} 'total:' lines, expected one")
    errors, warnings, checks, lines = (int(n or 0) for n in totals[0])
    if lines == 0:
        raise CheckpatchError("it checked 0 lines")
    findings = parse(output)
    counted = {level: sum(f.level == level for f in findings) for level in ("ERROR", "WARNING", "CHECK")}
    if (counted["ERROR"], counted["WARNING"], counted["CHECK"]) != (errors, warnings, checks):
        raise CheckpatchError(f"total says {errors} errors, {warnings} warnings, {checks} checks, but "
                              f"{counted['ERROR']}, {counted['WARNING']}, {counted['CHECK']} were printed")
    if returncode not in (0, 1) or (returncode == 0) != (not findings):
        raise CheckpatchError(f"exit status {returncode} with {len(findings)} findings")
    return findings


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
