"""Run one of our guest scripts through the boot API (``qemu.boot``) and
bring back its output.

The script is written under RUNS/scripts/ (the guest sees the host's file
system read-only, so it can read it there); the boot makes its run folder
under RUNS/, and ``GuestRun`` holds that folder, the boot's typed outcome,
CMD's output and the console.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kmod_dups.cache import cache_dir
from kmod_dups.errors import UserError
from kmod_dups.qemu import boot as bootmod
from kmod_dups.qemu.runner import Outcome
from kmod_dups.qemu.visibility import check_visible


@dataclass
class GuestRun:
    folder: Path  # the boot's run folder
    outcome: Outcome
    output: str  # CMD's output (output.log)
    console: str | None  # the console; None when it cannot be read
    script: Path

    @property
    def ok(self) -> bool:
        return self.outcome.result == "ok"

    @property
    def result(self) -> str:
        return self.outcome.result

    @property
    def boot_seconds(self) -> float | None:
        return self.outcome.timings.get("guest_up")


def say(message: str) -> None:
    print(f"kmod-dups: {message}", file=sys.stderr, flush=True)


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
    request = bootmod.BootRequest(build=build, cpus=cpus, command=("sh", str(path)), runs=runs,
                                  append=tuple(append), timeout=timeout, memory=memory)
    plan = bootmod.check(request)  # refuse bad input before writing anything
    path.write_text(script, encoding="utf-8")
    result = bootmod.boot(request, say, plan=plan)
    return GuestRun(result.folder.path, result.outcome, result.output, result.console, path)
