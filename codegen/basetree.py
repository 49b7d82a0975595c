"""Read a kernel tree: its version, its layout and the kernel APIs that the
generated code relies on.  The generator's decisions are made from this."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kmod_dups.cache import cache_dir, locked
from kmod_dups.codegen.render import KernelApis
from kmod_dups.errors import UserError

DEBIAN_SOURCE_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
DUPS_C = "kernel/module/dups.c"
MODULE_KCONFIG = "kernel/module/Kconfig"
MODULE_MAKEFILE = "kernel/module/Makefile"
INTERNAL_H = "kernel/module/internal.h"
KMOD_C_LOCATIONS = ("kernel/module/kmod.c", "kernel/kmod.c")


@dataclass(frozen=True)
class BaseTree:
    """A kernel source tree as the generator sees it."""

    path: Path
    version: str
    kmod_c: str
    has_module_debug_menu: bool
    throttle: str  # "atomic" (6.1: atomic_t + wait queue) or "semaphore"
    apis: KernelApis
    # It carries kernel/module/dups.c already (6.4 on, or the series is
    # applied): it gets the fix-up series, not the feature.
    has_dups: bool = False

    def read(self, relpath: str) -> str:
        return (self.path / relpath).read_text()

    @property
    def internal_h_include(self) -> str:
        """How kmod.c names kernel/module/internal.h from where it sits."""
        return '"internal.h"' if self.kmod_c.startswith("kernel/module/") else '"module/internal.h"'


def kernel_version(path: Path) -> str:
    try:
        text = (path / "Makefile").read_text(errors="replace")[:2000]
    except OSError:
        raise UserError(f"{path} is not a kernel tree (no top-level Makefile); "
                        "pass --tree with the root of a Linux source tree") from None
    fields = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)[ \t]*=[ \t]*(\S*)", text, re.M))
    if "VERSION" not in fields or "PATCHLEVEL" not in fields:
        raise UserError(f"{path} is not a kernel tree (its Makefile has no VERSION/PATCHLEVEL); "
                        "pass --tree with the root of a Linux source tree")
    version = f"{fields['VERSION']}.{fields['PATCHLEVEL']}"
    if fields.get("SUBLEVEL"):
        version += f".{fields['SUBLEVEL']}"
    return version + fields.get("EXTRAVERSION", "")


def probe(path: Path) -> BaseTree:
    """Read what the generator needs from the tree at ``path``."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UserError(f"{path} is not a directory; pass --tree with the root of a Linux source tree")
    version = kernel_version(path)
    for needed in (MODULE_KCONFIG, MODULE_MAKEFILE, INTERNAL_H):
        if not (path / needed).is_file():
            raise UserError(f"{path} (Linux {version}) has no {needed}: the generator needs a tree "
                            "with kernel/module/ (Linux 5.19 or later)")
    kmod_c = next((loc for loc in KMOD_C_LOCATIONS if (path / loc).is_file()), None)
    if kmod_c is None:
        raise UserError(f"{path} has neither kernel/kmod.c nor kernel/module/kmod.c; is it a complete tree?")
    kmod_text = (path / kmod_c).read_text()
    if re.search(r"static\s+atomic_t\s+kmod_concurrent_max", kmod_text):
        throttle = "atomic"
    elif re.search(r"DEFINE_SEMAPHORE\(kmod_concurrent_max", kmod_text):
        throttle = "semaphore"
    else:
        raise UserError(f"{path / kmod_c}: cannot find the modprobe concurrency limit "
                        "(kmod_concurrent_max); this kernel's kmod.c is not one the generator knows")
    completion_h = path / "include/linux/completion.h"
    apis = KernelApis(
        has_wait_for_completion_state=completion_h.is_file()
        and "wait_for_completion_state" in completion_h.read_text(),
    )
    kconfig = (path / MODULE_KCONFIG).read_text()
    return BaseTree(
        path=path,
        version=version,
        kmod_c=kmod_c,
        has_module_debug_menu=bool(re.search(r"^menuconfig MODULE_DEBUG$", kconfig, re.M)),
        throttle=throttle,
        apis=apis,
        has_dups=(path / DUPS_C).exists(),
    )


def _git(tree: Path, *args: str) -> None:
    proc = subprocess.run(
        ["git", "-c", "user.name=kmod-dups", "-c", "user.email=kmod-dups@localhost",
         "-c", "core.autocrlf=false", *args],
        cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    if proc.returncode:
        last = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"git {args[0]} failed in {tree}: {last}")


def unpack_once(dest: Path, stamp: Path, lock: str, fill: Callable[[Path], Path]) -> Path:
    """``dest`` made once under a lock: ``fill(staging)`` unpacks into a
    staging folder beside it and returns the folder that becomes ``dest``;
    ``stamp`` (inside it) marks it complete, so a half-unpacked tree is
    never used."""
    if stamp.exists():
        return dest
    with locked(lock):
        if stamp.exists():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(dest, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
        try:
            fill(staging).rename(dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dest


def default_base_tree(tarball: Path = DEBIAN_SOURCE_TARBALL) -> Path:
    """Debian's linux-source-6.1, unpacked once into the cache as a git repo
    with a single commit (so ``git am`` and work trees can start from it)."""
    dest = cache_dir() / "base" / tarball.name.removesuffix(".tar.xz")
    stamp = dest / ".git" / "kmod-dups-base"
    if stamp.exists():
        return dest
    if not tarball.is_file():
        raise UserError(f"{tarball} is missing: install Debian's kernel source with "
                        "`apt-get install linux-source-6.1` (or pass --tree DIR)")

    def fill(staging: Path) -> Path:
        subprocess.run(["tar", "-xf", str(tarball), "-C", str(staging)], check=True)
        tops = [child for child in staging.iterdir() if child.is_dir()]
        if len(tops) != 1:
            raise UserError(f"{tarball} does not unpack to a single kernel tree")
        unpacked = tops[0]
        _git(unpacked, "init", "-q")
        _git(unpacked, "add", "-A", "--force")  # Debian's .gitignore ignores "/*"
        _git(unpacked, "commit", "-q", "-m", f"Debian {tarball.name}")
        (unpacked / ".git" / stamp.name).write_text(str(tarball) + "\n")
        return unpacked

    return unpack_once(dest, stamp, "base-tree", fill)
