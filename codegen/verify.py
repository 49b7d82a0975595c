"""Apply a written series to a scratch copy of its base tree with git am,
and summarize what landed: the proof that the series is usable as is."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from kmod_dups.cache import cache_dir
from kmod_dups.errors import UserError


def _run(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    """A tool's run; a missing tool is one line, not a traceback."""
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env)
    except OSError as err:
        raise UserError(f"cannot run {argv[0]}: {err.strerror}") from None


def _git(tree: Path, *args: str) -> str:
    env = dict(os.environ, GIT_COMMITTER_NAME="kmod-dups", GIT_COMMITTER_EMAIL="kmod-dups@localhost")
    proc = _run(["git", *args], cwd=tree, env=env)
    if proc.returncode:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise UserError(f"git {args[0]} failed in {tree}: {detail[0] if detail else 'no output'}")
    return proc.stdout


def _scratch_clone(tree: Path, name: str, why: str) -> Path:
    """A fresh clone of ``tree`` (a git repo) at the cache's scratch/NAME,
    replacing the previous one; its objects are shared with ``tree``."""
    if not (tree / ".git").exists():
        raise UserError(f"{tree} is not a git repository, so it cannot be cloned for {why}")
    scratch = cache_dir() / "scratch" / name
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    _git(scratch.parent, "clone", "-q", "--shared", str(tree), str(scratch))
    return scratch


def apply_to_scratch(tree: Path, patches: list[Path]) -> tuple[Path, str]:
    """Clone ``tree`` (a git repo) into the cache's scratch folder, replacing
    the previous scratch copy, and ``git am`` the patches there.  Returns
    the scratch tree and a summary (shortlog and diffstat)."""
    scratch = _scratch_clone(tree, tree.name, "a scratch git am; drop --verify or use a git tree")
    base = _git(scratch, "rev-parse", "HEAD").strip()
    try:
        _git(scratch, "am", "-q", *[str(patch.resolve()) for patch in patches])
    except UserError as err:
        raise UserError(f"the series does not apply to {tree}: {err}") from None
    summary = _git(scratch, "log", "--reverse", "--format=  %h %s", f"{base}..HEAD")
    summary += _git(scratch, "diff", "--stat=72", base, "HEAD")
    return scratch, summary


# What a step is compiled with: the module loader with the feature on (and
# its trace option), then off, where kmod.c builds against internal.h's stubs.
STEP_OBJECTS = ("kernel/module/dups.o", "kernel/module/kmod.o")
FEATURE_OPTIONS = ("MODULE_DEBUG_AUTOLOAD_DUPS", "MODULE_DEBUG_AUTOLOAD_DUPS_TRACE")


def _make(tree: Path, build: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    jobs = str(os.cpu_count() or 1)
    return _run(["make", "-s", f"-j{jobs}", "ARCH=x86_64", f"O={build}", *targets], cwd=tree)


def _configure(tree: Path, build: Path, feature: bool) -> None:
    config = [str(tree / "scripts/config"), "--file", str(build / ".config")]
    switches = ["--enable", "MODULES", "--enable", "DEBUG_FS", "--enable", "MODULE_DEBUG"]
    for option in FEATURE_OPTIONS:
        switches += ["--enable" if feature else "--disable", option]
    proc = _run([*config, *switches])
    if proc.returncode:
        raise UserError(f"scripts/config failed in {tree}: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    proc = _make(tree, build, "olddefconfig")
    text = (build / ".config").read_text()
    if proc.returncode or ("CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y" in text) != feature:
        raise UserError(f"cannot configure {tree} with CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS "
                        f"{'on' if feature else 'off'}: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")


def compile_each_step(tree: Path, patches: list[Path], say=print) -> list[str]:
    """git am the patches one at a time on a scratch clone of ``tree`` and
    compile with W=1 after each: dups.c and kmod.c with the feature on,
    kmod.c (against internal.h's stubs) with it off.
    Returns one line per step; a step that warns or fails is an error."""
    scratch = _scratch_clone(tree, f"{tree.name}-steps", "a step-wise compile; drop --compile or use a git tree")
    build = cache_dir() / "scratch" / f"{tree.name}-steps-build"
    build.mkdir(exist_ok=True)
    if not (build / ".config").exists():
        say("configuring an allnoconfig x86_64 build with the module loader (once)")
        proc = _make(scratch, build, "allnoconfig")
        if proc.returncode:
            raise UserError(f"make allnoconfig failed in {scratch}: {proc.stderr.strip()[-200:]}")
    lines = []
    for step, patch in enumerate(patches, 1):
        try:
            _git(scratch, "am", "-q", str(patch.resolve()))
        except UserError as err:
            raise UserError(f"{patch.name} does not apply on top of the steps before it: {err}") from None
        for feature in (True, False):
            _configure(scratch, build, feature)
            # dups.o is only in the build with the feature on
            objects = STEP_OBJECTS if feature else STEP_OBJECTS[1:]
            for obj in objects:
                (build / obj).unlink(missing_ok=True)
            proc = _make(scratch, build, "W=1", *objects)
            noise = [line for line in (proc.stderr + proc.stdout).splitlines()
                     if "warning:" in line or "error:" in line]
            if proc.returncode or noise:
                detail = noise[0] if noise else (proc.stderr.strip().splitlines() or ["make failed"])[-1]
                raise UserError(f"step {step} ({patch.name}), feature {'on' if feature else 'off'}: "
                                f"W=1 build of {' '.join(objects)}: {detail}")
        lines.append(f"  step {step}: W=1 clean with the feature on and off: {patch.name}")
        say(lines[-1])
    return lines
