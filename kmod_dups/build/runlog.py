"""Run a command with its output appended to the build log, not the screen.

Every step of a build (git, kconfig, make) goes into one log file in the
build folder, with a header line per command, so a failure can always be
read in full afterwards.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

from kmod_dups.errors import UserError


class RunLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def note(self, text: str) -> None:
        with open(self.path, "a") as log:
            log.write(f"### {time.strftime('%H:%M:%S')} {text}\n")

    def run(self, cmd: list[str], what: str, cwd: Path | None = None,
            env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``cmd``; on failure raise a one-line UserError naming ``what``,
        the last line of its output and the log."""
        self.note(f"$ {' '.join(shlex.quote(c) for c in cmd)}" + (f"  (in {cwd})" if cwd else ""))
        try:
            proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, errors="replace")
        except FileNotFoundError:
            raise UserError(f"{what}: {cmd[0]} is not installed") from None
        with open(self.path, "a") as log:
            log.write(proc.stdout)
            log.write(f"### exit {proc.returncode}\n")
        if check and proc.returncode:
            raise UserError(f"{what} failed: {last_line(proc.stdout)} (full output: {self.path})")
        return proc


def last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() or "fatal" in line.lower():
            return line
    return lines[-1] if lines else "no output"
