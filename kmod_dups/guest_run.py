"""Run one of our guest scripts through the boot harness (``kmod-dups boot``)
and bring back its output.

The script is written under RUNS/scripts/ (the guest sees the host's file
system read-only, so it can read it there), the harness makes its run folder
under RUNS/, and ``GuestRun`` holds that folder, the harness's exit status,
its result.json and CMD's output (output.log).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kmod_dups.cache import cache_dir
from kmod_dups.errors import UserError
from kmod_dups.qemu.visibility import check_visible


@dataclass
class GuestRun:
    folder: Path | None  # the harness's run folder
    status: int  # exit status of kmod-dups boot
    result: dict  # result.json ({} when the harness wrote none)
    output: str  # CMD's output (output.log)
    script: Path

    @property
    def ok(self) -> bool:
        return self.result.get("result") == "ok"


def boot_command(build: Path, cpus: int, runs: Path, script: Path, *, append: Sequence[str] = (),
                 timeout: float | None = None, memory: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "kmod_dups.cli", "boot", "--build", str(build), "--cpus", str(cpus),
           "--runs", str(runs)]
    for arg in append:
        cmd.append(f"--append={arg}")
    if timeout is not None:
        cmd += ["--timeout", str(timeout)]
    if memory is not None:
        cmd += ["--memory", memory]
    return cmd + ["--", "sh", str(script)]


HARNESS_GRACE = 60  # seconds the harness gets to end its guest when we are interrupted


def run_script(build: Path, cpus: int, script: str, runs: Path, *, name: str,
               append: Sequence[str] = (), timeout: float | None = None,
               memory: str | None = None) -> GuestRun:
    runs = runs.expanduser().resolve()
    check_visible({
        "the Python that runs kmod-dups in the guest": Path(sys.prefix),
        "the kmod_dups package": Path(__file__).resolve().parent,
        "the build": build,
        "the run folder": runs,
        "the kmod-dups cache (modules roots; KMOD_DUPS_CACHE)": cache_dir(),
    })
    scripts = runs / "scripts"
    try:
        scripts.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot write {scripts}: {err.strerror}") from err
    path = scripts / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{cpus}cpu.sh"
    path.write_text(script, encoding="utf-8")
    before = {p.name for p in runs.iterdir()}
    cmd = boot_command(build, cpus, runs, path, append=append, timeout=timeout, memory=memory)
    # The harness prints its progress on stderr (passed through) and CMD's
    # output on stdout, which output.log keeps anyway.
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    try:
        proc.wait()
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM (see kmod_dups.cli): let the harness end its
        # guest (QEMU runs in a session of its own, which a SIGKILL to the
        # harness would leave behind), then stop.
        proc.terminate()
        try:
            proc.wait(timeout=HARNESS_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    new = sorted(p for p in runs.iterdir() if p.name not in before and p.is_dir() and p != scripts)
    if not new:
        return GuestRun(None, proc.returncode, {}, "", path)
    folder = new[-1]
    try:
        result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = {}
    try:
        output = (folder / "output.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        output = ""
    return GuestRun(folder, proc.returncode, result, output, path)
