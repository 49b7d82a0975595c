"""The build's .config: a small starting config, the fragments merged onto
it with the tree's own scripts/kconfig/merge_config.sh, olddefconfig, then
a check that every option a fragment asked for survived.

olddefconfig drops what it cannot satisfy without a word; here a dropped
option is an error that names it, the fragment line that asked for it and
its unmet dependency (read from the tree's Kconfig files).

The config is made in a scratch output folder and copied into the build
folder only when it changed, so an unchanged config costs no rebuild.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from kmod_dups.build import fragments, kconfig_lang
from kmod_dups.build.fragments import Setting
from kmod_dups.build.runlog import RunLog
from kmod_dups.cache import cache_dir
from kmod_dups.errors import UserError

# Measured on Debian's 6.1.192 with boot+bcc+test_kmod+dups, cold, -j2:
# tinyconfig + fragments: 812 options =y, 2344 make steps, 14 min of CPU,
# 8 min wall, a 29 MB vmlinux; defconfig + fragments: 1508 =y (DRM, i915,
# USB, sound...), ~4100 steps, 35 min of CPU, an 81 MB vmlinux.  allnoconfig
# + fragments is tinyconfig's size (818 =y).  Hence tinyconfig.
DEFAULT_START = "tinyconfig"
STARTS = ("tinyconfig", "allnoconfig", "defconfig")
MAX_LISTED = 12


@dataclass
class ConfigResult:
    config: Path
    requested: dict[str, Setting]
    values: dict[str, str]
    changed: bool


def scratch_dir(build: Path) -> Path:
    key = hashlib.sha256(str(build.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / "kconfig" / key


def unknown_symbols(tree: kconfig_lang.KconfigTree, requested: dict[str, Setting]) -> list[Setting]:
    """Options asked for that this kernel does not have. An option asked to
    be off ("is not set") that a kernel does not have is off there: one
    fragment serves trees with and without it (SLUB_TINY came with 6.2)."""
    return [s for s in requested.values() if not tree.exists(s.symbol) and s.value != "n"]


def check_known(src: Path, requested: dict[str, Setting], version: str) -> None:
    """Every option the fragments name exists in this kernel."""
    tree = kconfig_lang.load(src)
    unknown = unknown_symbols(tree, requested)
    if unknown:
        listed = ", ".join(f"CONFIG_{s.symbol} ({s.where})" for s in unknown[:MAX_LISTED])
        raise UserError(f"{listed}: no such option in Linux {version} at {src}; "
                        "fix the spelling or drop it from the fragment")


def explain_dropped(src: Path, lost: list[Setting], values: dict[str, str]) -> str:
    tree = kconfig_lang.load(src)
    parts = []
    for s in lost[:MAX_LISTED]:
        now = values.get(s.symbol, "n")
        parts.append(f"{s.as_line()} ({s.where}) came out as "
                     f"{'not set' if now == 'n' else now}: {tree.explain(s.symbol, s.value, values)}")
    more = f" (and {len(lost) - MAX_LISTED} more)" if len(lost) > MAX_LISTED else ""
    return "; ".join(parts) + more


def _sha(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def inputs_key(paths: list[Path], start: str, tree_id: str) -> str:
    h = hashlib.sha256(f"{start}\0{tree_id}\0".encode())
    for path in paths:
        h.update(path.read_bytes() + b"\0")
    if start not in STARTS:
        h.update(Path(start).expanduser().read_bytes())
    return h.hexdigest()


def configure(src: Path, build: Path, paths: list[Path], log: RunLog, version: str,
              start: str = DEFAULT_START, make_vars: list[str] | None = None,
              tree_id: str | None = None) -> ConfigResult:
    """Make and check ``build/.config``.  ``tree_id`` names the exact source
    (commit); with it, a rerun with the same inputs reuses the checked
    .config instead of making it again."""
    requested = fragments.merge(paths)
    scratch = scratch_dir(build)
    stamp = scratch / "kmod-dups-inputs.json"
    target = build / ".config"
    key = inputs_key(paths, start, tree_id) if tree_id else None
    if key:
        try:
            saved = json.loads(stamp.read_text())
        except (OSError, ValueError):
            saved = {}
        if saved.get("key") == key and saved.get("config") == _sha(target):
            return ConfigResult(config=target, requested=requested,
                                values=fragments.read_config(target), changed=False)
    stamp.unlink(missing_ok=True)
    check_known(src, requested, version)
    scratch.mkdir(parents=True, exist_ok=True)
    make = ["make", "-C", str(src), f"O={scratch}", *(make_vars or [])]
    if start in STARTS:
        log.run([*make, start], f"make {start}")
    else:
        start_file = Path(start).expanduser()
        if not start_file.is_file():
            raise UserError(f"starting config {start} is neither one of {', '.join(STARTS)} nor a file")
        shutil.copyfile(start_file, scratch / ".config")
    log.run(["sh", str(src / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(scratch),
             str(scratch / ".config"), *map(str, paths)], "merge_config.sh", cwd=scratch)
    log.run([*make, "olddefconfig"], "make olddefconfig")
    new = scratch / ".config"
    values = fragments.read_config(new)
    lost = fragments.dropped(requested, values)
    if lost:
        raise UserError(f"{len(lost)} option(s) did not survive olddefconfig: "
                        + explain_dropped(src, lost, values))
    changed = not (target.is_file() and filecmp.cmp(new, target, shallow=False))
    if changed:
        build.mkdir(parents=True, exist_ok=True)
        tmp = build / ".config.kmod-dups-new"
        shutil.copyfile(new, tmp)
        tmp.replace(target)
    if key:
        stamp.write_text(json.dumps({"key": key, "config": _sha(target)}) + "\n")
    return ConfigResult(config=target, requested=requested, values=values, changed=changed)
