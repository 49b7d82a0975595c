"""Named base trees (``--base 6.1|6.12|7.2``): Debian's linux-source packages,
fetched as package files into the cache with an apt configuration of the
project's own (the system's sources and state are never touched) and
unpacked once into a git repository with one commit."""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kmod_dups.cache import cache_dir, locked
from kmod_dups.codegen import basetree
from kmod_dups.errors import UserError

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
SYSTEM_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


@dataclass(frozen=True)
class NamedBase:
    name: str
    package: str
    # (archive, suite): archive "debian" or "debian-security" on the machine's mirror
    suites: tuple[tuple[str, str], ...]
    installed: Path | None = None  # a tarball setup-debian may have installed already

    @property
    def tarball_name(self) -> str:
        return f"{self.package}.tar.xz"


BASES = {
    "6.1": NamedBase("6.1", "linux-source-6.1", (("debian", "bookworm"), ("debian-security", "bookworm-security")),
                     installed=basetree.DEBIAN_SOURCE_TARBALL),
    "6.12": NamedBase("6.12", "linux-source-6.12", (("debian", "trixie"), ("debian-security", "trixie-security"))),
    # Debian's unstable suite: only ever in the project's own apt configuration
    "7.2": NamedBase("7.2", "linux-source-7.2", (("debian", "unstable"),)),
}
DEFAULT_BASE = "6.1"


def lookup(name: str) -> NamedBase:
    try:
        return BASES[name]
    except KeyError:
        raise UserError(f"unknown base {name!r}: choose one of {', '.join(BASES)} "
                        "(or pass --tree DIR for any tree)") from None


def machine_mirror(sources: tuple[Path, ...] = SYSTEM_SOURCES) -> str:
    """The URI of the Debian archive the machine's apt already uses."""
    uris: list[str] = []
    for src in sources:
        files = sorted(src.glob("*.sources")) + sorted(src.glob("*.list")) if src.is_dir() else [src]
        for path in files:
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            uris += re.findall(r"^URIs:\s*(\S+)", text, re.M)
            uris += re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.M)
    for uri in uris:
        if re.search(r"/debian/?$", uri):
            return uri.rstrip("/")
    raise UserError("cannot find a Debian archive in /etc/apt/sources.list(.d): add one, or pass "
                    "--tree DIR with an unpacked kernel tree")


def sources_list(base: NamedBase, mirror: str) -> str:
    root = mirror.rsplit("/", 1)[0]
    lines = []
    for archive, suite in base.suites:
        uri = mirror if archive == "debian" else f"{root}/{archive}"
        lines.append(f"deb [signed-by={KEYRING}] {uri} {suite} main\n")
    return "".join(lines)


def _apt(apt_dir: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = ["apt-get", "-q",
           "-o", f"Dir::Etc::sourcelist={apt_dir / 'sources.list'}",
           "-o", "Dir::Etc::sourceparts=/dev/null",
           "-o", f"Dir::State::Lists={apt_dir / 'lists'}",
           "-o", f"Dir::Cache={apt_dir / 'cache'}",
           "-o", "Debug::NoLocking=1",
           *args]
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def fetch_tarball(base: NamedBase, *, say=None) -> Path:
    """The base's linux-source tarball, fetched into the cache once."""
    if base.installed is not None and base.installed.is_file():
        return base.installed
    debs = cache_dir() / "debs"
    tarball = debs / base.tarball_name
    if tarball.is_file():
        return tarball
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise UserError(f"cannot fetch {base.package}: apt-get and dpkg-deb are needed "
                        "(or pass --tree DIR)")
    with locked(f"fetch-{base.package}"):
        if tarball.is_file():
            return tarball
        apt_dir = debs / f"apt-{base.name}"
        (apt_dir / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (apt_dir / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        mirror = machine_mirror()
        (apt_dir / "sources.list").write_text(sources_list(base, mirror))
        if say:
            say(f"fetching {base.package} from {mirror} ({', '.join(s for _, s in base.suites)})")
        proc = _apt(apt_dir, "update")
        if proc.returncode:
            raise UserError(f"cannot fetch {base.package}: apt-get update failed: {_last(proc.stdout)}")
        staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=debs))
        try:
            proc = _apt(apt_dir, "download", base.package, cwd=staging)
            deb = next(staging.glob(f"{base.package}_*.deb"), None)
            if proc.returncode or deb is None:
                raise UserError(f"cannot fetch {base.package} from {mirror}: {_last(proc.stdout)}")
            if say:
                say(f"unpacking {deb.name}")
            member = f"./usr/src/{base.tarball_name}"
            with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as dpkg:
                untar = subprocess.run(["tar", "-x", "-C", str(staging), member], stdin=dpkg.stdout,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if dpkg.returncode or untar.returncode:
                raise UserError(f"{deb.name} holds no {member.lstrip('.')}: {_last(untar.stdout)}")
            (staging / member).rename(tarball)
            (debs / f"{base.package}.version").write_text(deb.name + "\n")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return tarball


def _last(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


def base_tree(name: str, *, say=None) -> Path:
    """The named base unpacked into the cache as a git tree."""
    return basetree.default_base_tree(fetch_tarball(lookup(name), say=say))


# What the rig needs of a tree (its version, its own dups.c and kmod.c),
# and what the fix-up series reads and changes with them.
RIG_FILES = ("Makefile", "kernel/module/dups.c", "kernel/module/kmod.c", "kernel/module/internal.h",
             "kernel/module/Kconfig", "kernel/module/Makefile", "include/linux/completion.h")


def rig_tree(name: str, *, say=None) -> Path:
    """The named base's files the rig builds, extracted from its tarball
    once (seconds, where unpacking the whole tree takes minutes); the whole
    tree if it is unpacked already."""
    base = lookup(name)
    tarball = fetch_tarball(base, say=say)
    full = cache_dir() / "base" / base.package
    if (full / ".git" / "kmod-dups-base").exists():
        return full
    # a folder per list of files, so that a longer list is extracted anew
    dest = cache_dir() / "base-files" / f"{base.package}-{hashlib.sha1(chr(0).join(RIG_FILES).encode()).hexdigest()[:8]}"
    stamp = dest / ".kmod-dups-files"
    top = base.package

    def fill(staging: Path) -> Path:
        proc = subprocess.run(["tar", "-xf", str(tarball), "-C", str(staging), "--ignore-failed-read",
                               *(f"{top}/{rel}" for rel in RIG_FILES)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if not (staging / top / "Makefile").is_file():
            raise UserError(f"{tarball} does not hold {top}/Makefile: {_last(proc.stdout)}")
        (staging / top / stamp.name).write_text(str(tarball) + "\n")
        return staging / top

    return basetree.unpack_once(dest, stamp, f"base-files-{base.package}", fill)


def fixed_rig_tree(tree: Path) -> Path:
    """The rig's files of ``tree`` with its fix-up series applied, beside
    the extracted base files in the cache."""
    from kmod_dups.codegen import fixups

    root = cache_dir() / "base-files"
    root.mkdir(parents=True, exist_ok=True)
    return fixups.fixed_files(tree, RIG_FILES, root)


def add_arguments(parser: argparse.ArgumentParser, *, tree_help: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--base", metavar="NAME", choices=list(BASES),
                       help=f"a Debian kernel tree by version: {', '.join(BASES)} (default: "
                       f"{DEFAULT_BASE}); fetched from the machine's Debian mirror into the cache once")
    group.add_argument("--tree", metavar="DIR", type=Path, help=tree_help)


def from_args(args: argparse.Namespace, *, say=None) -> Path | None:
    """The tree --base or --tree names; None for the default base."""
    if getattr(args, "tree", None):
        return Path(args.tree)
    name = getattr(args, "base", None)
    if name and name != DEFAULT_BASE:
        return base_tree(name, say=say)
    return None
