"""The project's own kernel modules, built out of tree against a kernel build,
and a modules root the guest's modprobe can use.

* ``build_modules(build, dest)``: copy ``kernel/storm`` and ``kernel/targets``
  to a writable temporary folder, ``make -C BUILD M=TMP modules`` there and
  put the ``.ko`` files into *dest*.  A compiler error becomes a ``UserError``
  naming the first error and the log.
* ``make_modules_root(build, dest, kos)``: ``DEST/lib/modules/<release>/``
  holding the build's own modules (``make modules_install``), ours under
  ``extra/``, and ``depmod``'s indexes.
* ``prepare(build)``: both, once per set of inputs, in the cache.
* ``modprobe_wrapper(root)``: the guest has no ``/lib/modules`` (its root is
  this host's file system, read-only), so the kernel's modprobe
  (``/proc/sys/kernel/modprobe``) is pointed at a small script that runs
  ``/sbin/modprobe -d ROOT`` and notes each launch.

Outputs are made in a staging folder next to *dest* and renamed into place,
so a failure never leaves a half-written result.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kmod_dups.build.make import first_error
from kmod_dups import atomic, dotconfig
from kmod_dups.cache import cache_dir, locked
from kmod_dups.errors import UserError

STORM = "kmod_dups_storm"
TARGET = "kmod_dups_target"
FAIL = "kmod_dups_fail"
NONEXISTENT = "kmod_dups_nonexistent"  # a name no module has: just a name
RECURSE = "kmod_dups_recurse"  # its init requests kmod_dups_target (a post softdep of it)
# Names no module has whose modprobe the wrapper holds (each keeps one of
# kmod.c's 50 modprobe slots) while the FIFO HOLD_GATE in its config folder
# has a writer: it logs "UPTIME PID hold NAME", then reads the FIFO to EOF.
HOLD_PREFIX = "kmod_dups_hold_"
HOLD_GATE = "hold"

# Module name -> folder of kernel/ it is built from.
MODULES: dict[str, str] = {STORM: "storm", TARGET: "targets", FAIL: "targets", RECURSE: "targets"}
EXTRA_DIR = "extra"
RECORD = "kmod-dups-modroot.json"  # written last: the root is complete
MODPROBE = "/sbin/modprobe"


def kernel_dir() -> Path:
    """The repository's kernel/ folder (the sources of our modules)."""
    return Path(__file__).resolve().parent.parent / "kernel"


@dataclass(frozen=True)
class KernelBuild:
    """A configured kernel build folder, ready for out-of-tree modules."""

    path: Path
    release: str
    config: dict[str, str]

    @property
    def clang(self) -> bool:
        return self.config.get("CONFIG_CC_IS_CLANG") == "y"

    @property
    def has_modules(self) -> bool:
        """The build compiled modules of its own (not only modules_prepare)."""
        return (self.path / "modules.order").is_file() and (self.path / "System.map").is_file()


def read_config(path: Path) -> dict[str, str]:
    return dotconfig.read(path)


def open_build(build: Path) -> KernelBuild:
    """Check that *build* can build our modules: configured, modules on,
    debugfs on, ``make modules_prepare`` done."""
    build = build.expanduser().resolve()
    config_path = build / ".config"
    if not config_path.is_file():
        raise UserError(f"{build} is not a configured kernel build folder (no .config); "
                        "make one with kmod-dups build")
    config = read_config(config_path)
    if config.get("CONFIG_MODULES") != "y":
        raise UserError(f"{build}: CONFIG_MODULES is not set; the test modules need a modular kernel")
    if config.get("CONFIG_DEBUG_FS") != "y":
        raise UserError(f"{build}: CONFIG_DEBUG_FS is not set; kmod_dups_storm's controls are in debugfs")
    release_file = build / "include/config/kernel.release"
    if not release_file.is_file() or not (build / "scripts/mod/modpost").is_file():
        raise UserError(f"{build}: modules_prepare has not been run; "
                        f"run make -C {build} modules_prepare (or finish the build)")
    return KernelBuild(build, release_file.read_text().strip(), config)


def make_command(build: KernelBuild) -> list[str]:
    cmd = ["make", "-C", str(build.path)]
    if build.clang:
        cmd.append("LLVM=1")
    return cmd


def _run(cmd: list[str], log: Path, what: str) -> None:
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"$ {shlex.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", check=False)
        out.write(proc.stdout)
        out.write(f"### exit {proc.returncode}\n")
    if proc.returncode != 0:
        error = first_error(proc.stdout.splitlines()) or f"exit status {proc.returncode}"
        raise UserError(f"{what} failed: {error} (full log: {log})")


def default_dest(build: Path, kind: str) -> Path:
    """``~/.cache/kmod-dups/<kind>/<build folder name>``."""
    return cache_dir() / kind / build.expanduser().resolve().name


def build_modules(build: Path, dest: Path | None = None, *, jobs: int = 1,
                  sources: Path | None = None) -> dict[str, Path]:
    """Build kmod_dups_storm, kmod_dups_target and kmod_dups_fail against
    *build*; return module name -> .ko in *dest* (which also keeps build.log)."""
    kb = open_build(build)
    sources = sources or kernel_dir()
    dest = (dest or default_dest(kb.path, "kmods")).expanduser().resolve()
    folders = sorted(set(MODULES.values()))
    for folder in folders:
        if not (sources / folder / "Kbuild").is_file():
            raise UserError(f"{sources / folder}/Kbuild is missing; is {sources} the repository's kernel/?")

    staging = atomic.staging_dir(dest, "pass a writable folder")
    log = staging / "build.log"
    try:
        with tempfile.TemporaryDirectory(prefix="kmod-dups-kmods-") as tmp:
            work = Path(tmp)
            for folder in folders:
                shutil.copytree(sources / folder, work / folder)
            (work / "Kbuild").write_text("".join(f"obj-m += {f}/\n" for f in folders))
            cmd = make_command(kb) + [f"M={work}", f"-j{max(1, jobs)}", "modules"]
            _run(cmd, log, f"building the test modules against {kb.path}")
            for name, folder in MODULES.items():
                ko = work / folder / f"{name}.ko"
                if not ko.is_file():
                    raise UserError(f"make succeeded but {name}.ko is missing (full log: {log})")
                shutil.copy2(ko, staging / ko.name)
        (staging / "kernelrelease").write_text(kb.release + "\n")
        atomic.publish_dir(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {name: dest / f"{name}.ko" for name in MODULES}


@dataclass(frozen=True)
class ModulesRoot:
    """``root/lib/modules/<release>/`` for ``modprobe -d root``."""

    root: Path
    release: str
    build_modules: bool  # the build's own modules are in it

    @property
    def moddir(self) -> Path:
        return self.root / "lib/modules" / self.release

    def ko(self, name: str) -> Path:
        return self.moddir / EXTRA_DIR / f"{name}.ko"


def find_depmod() -> str:
    for candidate in (shutil.which("depmod"), "/sbin/depmod", "/usr/sbin/depmod"):
        if candidate and Path(candidate).exists():
            return candidate
    raise UserError("depmod not found; install kmod (apt-get install kmod)")


def make_modules_root(build: Path, dest: Path, kos: Mapping[str, Path]) -> ModulesRoot:
    """``dest/lib/modules/<release>/``: the build's modules (when it built any),
    *kos* under ``extra/``, then ``depmod -b dest <release>``."""
    kb = open_build(build)
    dest = dest.expanduser().resolve()
    depmod = find_depmod()
    for name, path in kos.items():
        if not Path(path).is_file():
            raise UserError(f"{path} ({name}) does not exist; build the test modules first")
    staging = atomic.staging_dir(dest, "pass a writable folder")
    log = staging / "modules-root.log"
    try:
        if kb.has_modules:
            _run(make_command(kb) + [f"INSTALL_MOD_PATH={staging}", "modules_install"], log,
                 f"make modules_install for {kb.path}")
        moddir = staging / "lib/modules" / kb.release
        (moddir / EXTRA_DIR).mkdir(parents=True, exist_ok=True)
        # modules_install links build and source back to the build folder.
        for link in ("build", "source"):
            if (moddir / link).is_symlink():
                (moddir / link).unlink()
        for name, path in kos.items():
            shutil.copy2(path, moddir / EXTRA_DIR / f"{name}.ko")
        _run([depmod, "-b", str(staging), kb.release], log, f"depmod for {staging}")
        record = {"build": str(kb.path), "release": kb.release, "build_modules": kb.has_modules,
                  "extra": {name: str(path) for name, path in kos.items()}}
        (staging / RECORD).write_text(json.dumps(record, indent=2) + "\n")
        atomic.publish_dir(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ModulesRoot(dest, kb.release, kb.has_modules)


def inputs_digest(kb: KernelBuild, sources: Path | None = None) -> str:
    """What the modules root depends on: our sources, the build's config,
    release and exported symbols, and its own modules (rebuilt modules
    change modules.order's mtime or vmlinux's)."""
    sources = sources or kernel_dir()
    h = hashlib.sha256()
    for folder in sorted(set(MODULES.values())):
        for path in sorted((sources / folder).rglob("*")):
            if path.is_file():
                h.update(str(path.relative_to(sources)).encode() + b"\0" + path.read_bytes())
    h.update(kb.release.encode())
    for name in (".config", "Module.symvers", "modules.order", "vmlinux"):
        path = kb.path / name
        if path.is_file():
            st = path.stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def prepare(build: Path, *, jobs: int = 1) -> ModulesRoot:
    """The modules root for *build* with our modules, made once per set of
    inputs under ``~/.cache/kmod-dups/modroots/<build>-<digest>``.

    A root that exists is reused and never rewritten, so a guest that is
    using it (another run, another test) is not disturbed."""
    kb = open_build(build)
    digest = inputs_digest(kb)
    name = f"{kb.path.name}-{digest}"
    dest = cache_dir() / "modroots" / name
    with locked(f"modroot-{digest}"):
        if (dest / RECORD).is_file():
            return ModulesRoot(dest, kb.release, kb.has_modules)
        kos = build_modules(kb.path, cache_dir() / "kmods" / name, jobs=jobs)
        return make_modules_root(kb.path, dest, kos)


def modprobe_wrapper(root: str | Path, *, config: str | Path | None = None,
                     log: str | Path | None = None, modprobe: str = MODPROBE) -> str:
    """The script the guest kernel runs as modprobe.

    ``modprobe -d ROOT`` finds modules under ``ROOT/lib/modules/$(uname -r)``;
    with *config* (a modprobe.d folder or file) it reads only that, so a
    guest script can set module options such as ``init_delay_ms``; with
    *log* each launch appends ``UPTIME PID ARGS`` to it first (the kernel
    runs ``modprobe -q -- NAME``), from shell builtins only.  With both, a
    launch for a ``HOLD_PREFIX`` name opens the FIFO ``CONFIG/HOLD_GATE``
    if there is one, logs ``UPTIME PID hold NAME`` and waits until its
    writers closed it, holding its modprobe slot.
    """
    q = shlex.quote
    lines = [
        "#!/bin/sh",
        "# kmod-dups: the kernel's modprobe in the guest (/proc/sys/kernel/modprobe).",
        "# The guest has no /lib/modules: load from the build's modules root.",
    ]
    if log is not None:
        lines += [
            "read -r up _ < /proc/uptime",
            f'echo "$up $$ $*" >> {q(str(log))}',
        ]
    args = [q(modprobe), "-d", q(str(root))]
    if config is not None and log is not None:
        gate = q(f"{config}/{HOLD_GATE}")
        lines.append(f'case "$3" in {HOLD_PREFIX}*) if [ -p {gate} ]; then '
                     f'{{ echo "$up $$ hold $3" >> {q(str(log))}; read -r _ || :; }} < {gate}; fi ;; esac')
    if config is not None:
        args += ["-C", q(str(config))]
    lines.append(f'exec {" ".join(args)} "$@"')
    return "\n".join(lines) + "\n"
