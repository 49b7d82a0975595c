"""Run the kernel's make out of tree, show a step counter instead of make's
thousands of lines, keep the full output in the build log, and turn a
failure into its first compiler error.

An interrupted build (Ctrl-C, SIGTERM) stops make cleanly: kbuild deletes
half-written targets (.DELETE_ON_ERROR) and a rerun continues where it was.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from kmod_dups.errors import UserError

# kbuild's quiet output: "  CC      kernel/fork.o", "  LD [M]  fs/xfs/xfs.ko"
STEP = re.compile(r"^  ([A-Z][A-Z0-9_\-]*(?: \[M\])?)\s+(\S.*)$")
ERROR_PATTERNS = [
    re.compile(r"^(?P<loc>[^\s:][^:]*:\d+(?::\d+)?): (?:fatal )?error: (?P<msg>.*)$"),
    re.compile(r"^(?P<loc>[^\s:][^:]*): (?P<msg>undefined reference to .*)$"),
    re.compile(r"^(?P<loc>ld(?:\.\w+)?): (?P<msg>.*)$"),
    re.compile(r"^(?P<loc>[^\s:]+): (?P<msg>.*(?:No space left on device|Cannot allocate memory).*)$"),
    re.compile(r"^\*\*\* (?P<msg>.*)$"),
    re.compile(r"^(?P<loc>make\[\d+\]|make): \*\*\* (?P<msg>.*)$"),
]


class Interrupted(Exception):
    """The user stopped the build; make was stopped cleanly."""


@dataclass
class MakeResult:
    steps: int
    seconds: float
    compiled: list[str]


def first_error(lines: list[str]) -> str | None:
    """The first compiler/linker error in make's output, the way a person
    scrolling up would find it; make's own '***' lines only as a fallback."""
    for pattern in ERROR_PATTERNS:
        for line in lines:
            match = pattern.match(line.rstrip())
            if match:
                return line.strip() if pattern in ERROR_PATTERNS[:2] else match.group("msg")
    return None


class Progress:
    """A one-line step counter (a bar when the number of steps is known)."""

    def __init__(self, label: str, expected: int | None, stream: TextIO | None = None):
        self.label = label
        self.expected = expected
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self.steps = 0
        self.last_print = 0.0
        self.current = ""

    def elapsed(self) -> str:
        s = int(time.monotonic() - self.start)
        return f"{s // 60:d}:{s % 60:02d}"

    def step(self, kind: str, target: str) -> None:
        self.steps += 1
        self.current = f"{kind.split()[0]} {target}"
        now = time.monotonic()
        if (self.tty and now - self.last_print > 0.1) or now - self.last_print > 30:
            self.last_print = now
            self.show()

    def show(self, final: bool = False) -> None:
        if self.expected:
            frac = min(self.steps / self.expected, 0.99 if not final else 1.0)
            width = 24
            bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
            head = f"{self.label} [{bar}] {frac * 100:3.0f}% {self.steps} steps {self.elapsed()}"
        else:
            head = f"{self.label}: {self.steps} steps {self.elapsed()}"
        if self.tty:
            cols = shutil.get_terminal_size((100, 20)).columns
            line = f"{head}  {self.current}" if not final else head
            self.stream.write("\r" + line[:cols - 1].ljust(cols - 1))
            if final:
                self.stream.write("\n")
        else:
            self.stream.write(f"{head}  {self.current}\n" if not final else f"{head}\n")
        self.stream.flush()


def run_make(src: Path, build: Path, targets: list[str], jobs: int, cc: str | None,
             log_path: Path, label: str, expected: int | None = None,
             extra: list[str] | None = None) -> MakeResult:
    """``make -C src O=build -jN CC=cc targets...``; output to ``log_path``."""
    cmd = ["make", "-C", str(src), f"O={build}", f"-j{jobs}", *(extra or [])]
    if cc:
        cmd += [f"CC={cc}", f"HOSTCC={cc}"]
    cmd += targets
    env = dict(os.environ, KBUILD_BUILD_USER="kmod-dups", KBUILD_BUILD_HOST="kmod-dups", LC_ALL="C")
    progress = Progress(label, expected)
    compiled: list[str] = []
    tail: list[str] = []
    errors: list[str] = []
    with open(log_path, "a") as log:
        log.write(f"### {time.strftime('%H:%M:%S')} $ {' '.join(cmd)}\n")
        log.flush()
        # SIGTERM stops the build like Ctrl-C; installed before make starts
        # so that no signal can slip in between.
        old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
        proc = None
        try:
            # make runs in a session of its own (Ctrl-C reaches only us, and we
            # stop make in order), with SIGINT at its default even when this
            # process was started with it ignored (a background job).
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                    text=True, errors="replace", bufsize=1, start_new_session=True,
                                    preexec_fn=_default_signals)
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                match = STEP.match(line)
                if match:
                    progress.step(match.group(1), match.group(2))
                    if match.group(1).split()[0] == "CC":
                        compiled.append(match.group(2).strip())
                else:
                    tail.append(line)
                    if len(tail) > 400:
                        del tail[:200]
                    if " error" in line or "***" in line or "No space left" in line or \
                            "undefined reference" in line:
                        if len(errors) < 200:
                            errors.append(line)
            rc = proc.wait()
        except KeyboardInterrupt:
            if proc is not None:
                _stop(proc)
            log.write("### interrupted\n")
            if progress.tty:
                progress.stream.write("\n")
            raise Interrupted() from None
        finally:
            signal.signal(signal.SIGTERM, old_term)
        log.write(f"### exit {rc}\n")
    seconds = time.monotonic() - progress.start
    if rc:
        if progress.tty:
            progress.stream.write("\n")
        error = first_error(errors) or first_error(tail) or f"make exited with {rc}"
        if "No space left on device" in "".join(errors + tail):
            raise UserError(f"disk full while building in {build}: {error}; free some space and "
                            f"rerun to resume (full log: {log_path})")
        raise UserError(f"build failed: {error} (full log: {log_path})")
    progress.show(final=True)
    return MakeResult(progress.steps, seconds, compiled)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt()


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def _stop(proc: subprocess.Popen) -> None:
    """Stop make and its children the way Ctrl-C would, then harder: a
    recipe shell that takes SIGINT just before it forks keeps waiting for
    its child, so make may not finish on SIGINT alone."""
    for sig, wait in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
