"""The steps of ``kmod-dups build`` in order, and the build folder's record.

Build folder (the ``O=`` directory, default ~/.cache/kmod-dups/builds/NAME):

    vmlinux, arch/x86/boot/bzImage, .config, *.ko   kbuild's own outputs
    modules-install/lib/modules/RELEASE/            make modules_install
    build.log                                       every command's full output
    build.json                                      what was built from what, timings,
                                                    artefact paths, the ELF checks
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kmod_dups.build import elfcheck, fragments, kconfig, make, seed, toolchain, worktree
from kmod_dups.build.runlog import RunLog
from kmod_dups.cache import cache_dir
from kmod_dups.errors import UserError

TARGETS = ["vmlinux", "bzImage", "modules"]
RECORD = "build.json"
LOG = "build.log"
# Measured: the default configuration's build folder is ~0.4 GB after a
# cold build (the work tree, shared between builds, is 1.5 GB); a debug
# build is larger.  Ask for headroom before starting, not halfway through.
NEEDED_FREE_GIB = 2.0
FALLBACK_SIGNOFF = "kmod-dups <kmod-dups@localhost>"


@dataclass
class Request:
    configs: list[str]
    tree: Path | None = None
    builddir: Path | None = None
    variant: str = "hardened"
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    cc: str = "gcc"
    ccache: bool = True
    series: Path | None = None
    in_place: bool = False
    start: str = kconfig.DEFAULT_START
    config_only: bool = False
    name: str | None = None
    quiet: bool = False
    # Test builds only: the as-posted variant's linger, shortened from 60 s.
    linger_ms: int | None = None
    # A tree that carries dups.c built with its own code, no series: the
    # "upstream" kernel beside the fix-up series' one.
    upstream: bool = False

    @property
    def flavour(self) -> str:
        return UPSTREAM if self.upstream else flavour(self.variant, self.linger_ms)


UPSTREAM = "upstream"


def flavour(variant: str, linger_ms: int | None = None) -> str:
    """The variant, marked when a test build shortens the as-posted linger:
    such a build gets its own work tree and build folder."""
    return variant if linger_ms is None else f"{variant}-linger{linger_ms}ms"


def default_name(configs: list[str], variant: str, linger_ms: int | None = None,
                 tree: Path | None = None, kind: str | None = None) -> str:
    """The build folder's name; a tree other than the default base (--base
    7.2, --tree DIR) is named by its version in front, so that its build
    never lands in the default base's folder."""
    from kmod_dups.codegen.basetree import kernel_version

    names = [Path(c).name.removesuffix(fragments.SUFFIX) for c in configs]
    prefix = "" if tree is None else f"linux-{kernel_version(tree.expanduser())}-"
    return prefix + "+".join(names) + f"-{kind or flavour(variant, linger_ms)}"


def default_builddir(req: Request) -> Path:
    return cache_dir() / "builds" / (req.name or default_name(req.configs, req.variant, req.linger_ms, req.tree, req.flavour))


class Say:
    def __init__(self, quiet: bool):
        self.quiet = quiet

    def __call__(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def build_lock(builddir: Path) -> Iterator[None]:
    try:
        builddir.mkdir(parents=True, exist_ok=True)
        (builddir / ".kmod-dups.lock").touch()
    except OSError as err:
        raise UserError(f"cannot create the build folder {builddir}: {err.strerror}; "
                        "choose another -O") from None
    with open(builddir / ".kmod-dups.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another kmod-dups build is running in {builddir}; wait for it "
                            "or choose another -O") from None
        yield


def write_record(builddir: Path, record: dict) -> None:
    tmp = builddir / (RECORD + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    tmp.replace(builddir / RECORD)


def read_record(builddir: Path) -> dict:
    try:
        return json.loads((Path(builddir) / RECORD).read_text())
    except (OSError, ValueError):
        return {}


def _git_identity() -> bool:
    for key in ("user.name", "user.email"):
        proc = subprocess.run(["git", "config", "--get", key], capture_output=True, text=True)
        if not proc.stdout.strip():
            return False
    return True


def make_series(base: Path, variant: str, out: Path, linger_ms: int | None = None) -> list[Path]:
    from kmod_dups.codegen.series import write_series

    signoff = None if _git_identity() else FALLBACK_SIGNOFF
    files = write_series(base, out, variant=variant, signoff=signoff, force=True, linger_ms=linger_ms)
    return worktree.series_patches([Path(f) for f in files])


def given_series(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise UserError(f"--series {folder} is not a folder of patches")
    patches = worktree.series_patches(list(folder.glob("*.patch")))
    if not patches:
        raise UserError(f"--series {folder} holds no patches (*.patch with a diff)")
    return patches


def steps_estimate(key: str) -> int | None:
    try:
        return json.loads((cache_dir() / "build-steps.json").read_text()).get(key)
    except (OSError, ValueError):
        return None


def remember_steps(key: str, steps: int) -> None:
    path = cache_dir() / "build-steps.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[key] = steps
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def check_disk(builddir: Path, cold: bool) -> None:
    free = shutil.disk_usage(builddir).free / 2**30
    need = NEEDED_FREE_GIB if cold else NEEDED_FREE_GIB / 3
    if free < need:
        raise UserError(f"only {free:.1f} GiB free for {builddir}; a build needs about {need:.0f} GiB: "
                        "free some space or pass -O on another disk")


def kernel_release(builddir: Path) -> str:
    try:
        return (builddir / "include/config/kernel.release").read_text().strip()
    except OSError:
        return ""


def run(req: Request) -> dict:
    say = Say(req.quiet)
    from kmod_dups.codegen.render import check_linger, check_variant

    check_variant(req.variant)
    check_linger(req.variant, req.linger_ms)
    if req.linger_ms is not None and req.series is not None:
        raise UserError("--test-linger-ms renders the series itself; it cannot be combined with --series")
    if not req.configs:
        raise UserError("no config fragments given: pass --config NAME... "
                        f"({', '.join(fragments.available())})")
    paths = [fragments.locate(name) for name in req.configs]
    for path in paths:
        fragments.read(path)  # syntax errors before anything slow
    if req.jobs < 1:
        raise UserError(f"--jobs {req.jobs}: give at least 1")
    toolchain.check_basic()
    cc = toolchain.compiler_command(req.cc, req.ccache)

    base = base_tree(req.tree)
    builddir = (req.builddir or default_builddir(req)).expanduser().resolve()
    name = req.name or default_name(req.configs, req.variant, req.linger_ms, req.tree, req.flavour)
    if builddir.exists() and not builddir.is_dir():
        raise UserError(f"-O {builddir} exists and is not a directory; choose another build folder")
    with build_lock(builddir):
        log = RunLog(builddir / LOG)
        if log.path.exists():
            log.path.replace(builddir / (LOG + ".prev"))
        record: dict = {
            "name": name, "status": "running", "configs": req.configs,
            "fragments": [str(p) for p in paths], "variant": req.variant, "linger_ms": req.linger_ms,
            "builddir": str(builddir), "start": req.start, "log": str(log.path),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "timings": {},
        }
        write_record(builddir, record)
        try:
            try:
                _run(req, say, base, paths, cc, builddir, log, record)
            except KeyboardInterrupt:
                raise make.Interrupted() from None
        except make.Interrupted:
            record["status"] = "interrupted"
            write_record(builddir, record)
            raise
        except UserError as err:
            record["status"] = "failed"
            record["error"] = str(err)
            write_record(builddir, record)
            raise
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            hint = "free some space and rerun" if err.errno == errno.ENOSPC else "check the path"
            raise UserError(f"{where}{err.strerror}; {hint} (log: {log.path})") from None
        record["status"] = "ok" if not req.config_only else "configured"
        write_record(builddir, record)
    return record


def plant_seed(builddir: Path, src: Path, head: str, start: str, values: dict[str, str], record: dict,
               say: Say) -> None:
    """A never-built folder starts as a copy of its closest finished sibling
    (kmod_dups.build.seed), so make redoes only what the options changed."""
    chosen = seed.choose(builddir.parent, builddir, str(src), head, start, values)
    if chosen is None or not seed.plant(chosen, builddir):
        return
    record["seeded_from"] = str(chosen.path)
    listed = ", ".join(chosen.different[:4]) + (" ..." if len(chosen.different) > 4 else "")
    say(f"      seeded from {chosen.path.name} ({len(chosen.different)} option(s) differ: {listed})")


def base_tree(tree: Path | None) -> Path:
    """The tree to start from: --tree (checked to be a kernel tree) or
    Debian's linux-source-6.1 unpacked into the cache."""
    from kmod_dups.codegen import basetree

    if tree is None:
        return basetree.default_base_tree()
    base = tree.expanduser().resolve()
    basetree.kernel_version(base)
    return base


def config_inputs_id(tree: worktree.WorkTree, series_files: set[str]) -> str | None:
    """What the .config depends on in the source: the base commit and the
    Kconfig files the series changes (a change to dups.c alone keeps the
    checked .config, so an incremental build skips the config step)."""
    if not tree.base_head:
        return None
    h = hashlib.sha256(tree.base_head.encode())
    for rel in sorted(series_files):
        if Path(rel).name.startswith("Kconfig"):
            h.update(rel.encode() + b"\0" + (tree.path / rel).read_bytes() + b"\0")
    return h.hexdigest()


def _run(req: Request, say: Say, base: Path, paths: list[Path], cc: str, builddir: Path, log: RunLog,
         record: dict) -> None:
    from kmod_dups.codegen import basetree

    timings = record["timings"]
    total = 3 if req.config_only else 5
    say(f"kmod-dups build: {' '.join(req.configs)} ({req.flavour}) in {builddir}")

    # 1. the series
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kmod-dups-series-") as tmp:
        already = (base / basetree.DUPS_C).exists()
        if req.series is not None:
            patches = given_series(req.series.expanduser())
        elif req.upstream:
            if not already:
                raise UserError(f"{base} has no {basetree.DUPS_C}: an upstream build is of a tree "
                                "that carries it (--base 6.12 or 7.2)")
            patches = []
        elif req.in_place and already:
            patches = []
        else:
            patches = make_series(base, req.variant, Path(tmp) / "series", req.linger_ms)
        series_files = worktree.files_in(patches)
        saved = builddir / "series"
        if patches:
            shutil.rmtree(saved, ignore_errors=True)
            saved.mkdir()
            for p in patches:
                shutil.copy(p, saved / p.name)
        say(f"[1/{total}] series: {len(patches)} patch(es) for {base}" if patches
            else f"[1/{total}] series: none, {base} already has {basetree.DUPS_C}")
        # 2. the work tree
        if req.in_place:
            tree = worktree.in_place(base, patches, log)
        else:
            tree = worktree.prepare(base, req.flavour, patches, log)
    timings["worktree"] = round(time.monotonic() - t0, 1)
    src = tree.path
    version = basetree.kernel_version(src)
    record.update({"base": str(base), "base_head": tree.base_head, "worktree": str(src),
                   "head": tree.head, "series": [p.name for p in patches] if patches else [],
                   "series_digest": tree.series_digest, "linux": version})
    detail = f" (changed: {', '.join(tree.touched)})" if tree.action == "updated" and tree.touched else ""
    say(f"[2/{total}] work tree: {tree.action} {src}{detail}")

    lock = contextlib.nullcontext() if req.in_place else worktree.lock(worktree.root_for(base, req.flavour),
                                                                        shared=True)
    with lock:
        if not req.in_place and worktree.head(src) != tree.head:
            raise UserError(f"the work tree {src} changed under this build (another build with a "
                            "different series?); rerun")
        # 3. the config
        t0 = time.monotonic()
        tree_id = config_inputs_id(tree, series_files) if not req.in_place else None
        result = kconfig.configure(src, builddir, paths, log, version, start=req.start, tree_id=tree_id)
        timings["config"] = round(time.monotonic() - t0, 1)
        record["config"] = str(result.config)
        record["requested_options"] = len(result.requested)
        say(f"[3/{total}] config: {req.start} + {' '.join(req.configs)}: all {len(result.requested)} "
            f"requested options set ({'new' if result.changed else 'unchanged'} .config)")
        if req.config_only:
            return
        toolchain.check_for_config(result.values, req.cc)
        if not req.in_place and not (builddir / "include/config/auto.conf").exists():
            plant_seed(builddir, src, tree.head, req.start, result.values, record, say)

        # 4. make
        cold = not (builddir / "vmlinux").exists()
        check_disk(builddir, cold)
        key = f"{'+'.join(req.configs)}:{req.start}"
        t0 = time.monotonic()
        built = make.run_make(src, builddir, TARGETS, req.jobs, cc, log.path,
                              label=f"[4/{total}] make -j{req.jobs}",
                              expected=steps_estimate(key) if cold else None)
        mod_root = builddir / "modules-install"
        if result.values.get("MODULES") == "y":
            make.run_make(src, builddir, ["modules_install"], 1, cc, log.path,
                          label=f"[4/{total}] modules_install", extra=[f"INSTALL_MOD_PATH={mod_root}"])
        timings["make"] = round(time.monotonic() - t0, 1)
        if cold:
            remember_steps(key, built.steps)
        record.update({"steps": built.steps, "cold": cold, "compiled_count": len(built.compiled),
                       # the list only when short: it is there to show what an incremental build redid
                       "compiled": built.compiled if len(built.compiled) <= 50 else None})

    release = kernel_release(builddir)
    artefacts = {
        "vmlinux": builddir / "vmlinux",
        "bzImage": builddir / "arch/x86/boot/bzImage",
        "config": builddir / ".config",
        "System.map": builddir / "System.map",
        "modules": mod_root / "lib/modules" / release if release else mod_root,
    }
    missing = [k for k, v in artefacts.items() if not v.exists()]
    if missing:
        raise UserError(f"make succeeded but {', '.join(missing)} is missing in {builddir} (log: {log.path})")
    record["kernelrelease"] = release
    record["artefacts"] = {k: str(v) for k, v in artefacts.items()}

    # 5. ELF checks
    t0 = time.monotonic()
    feature, trace, printk = elfcheck.expectations(result.values)
    report = elfcheck.check(artefacts["vmlinux"], feature, trace, printk)
    timings["elfcheck"] = round(time.monotonic() - t0, 2)
    record["elfcheck"] = report.as_dict()
    say(f"[5/{total}] ELF checks on vmlinux (feature {'on' if feature else 'off'}"
        f"{', trace' if trace else ''}), {timings['elfcheck']} s:\n{report.table()}")
    if not report.ok:
        bad = "; ".join(f"{c.what}: {c.actual}, expected {c.expected}" for c in report.failures())
        raise UserError(f"vmlinux does not match its config: {bad}")
    kos = sum(1 for _ in artefacts["modules"].rglob("*.ko")) if artefacts["modules"].is_dir() else 0
    say("artefacts:\n" + "\n".join(f"  {k:<10} {v}" for k, v in artefacts.items())
        + f"  ({kos} modules)\n  {'log':<10} {log.path}\n  {'record':<10} {builddir / RECORD}")
