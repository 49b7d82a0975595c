"""A new build folder seeded from its closest finished sibling (fast: fake
build folders; the real kernels are in test_build_slow.py)."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from kmod_dups.build import seed

TREE = "/cache/worktrees/linux-hardened/linux"
HEAD = "f" * 40


def fake_build(builds: Path, name: str, options: dict[str, str], status: str = "ok", head: str = HEAD,
               start: str = "tinyconfig") -> Path:
    folder = builds / name
    (folder / "include/config").mkdir(parents=True)
    (folder / "tools/objtool").mkdir(parents=True)
    (folder / "vmlinux").write_bytes(b"\x7fELF")
    (folder / "include/config/auto.conf").write_text("auto\n")
    (folder / ".config").write_text("".join(f"CONFIG_{k}={v}\n" for k, v in options.items()))
    (folder / "build.json").write_text(json.dumps({"status": status, "worktree": TREE, "head": head,
                                                   "start": start}))
    (folder / "build.log").write_text("the seed's own log\n")
    (folder / "series").mkdir()
    (folder / "modules-install").mkdir()
    cmd = folder / "tools/objtool/.check.o.cmd"
    cmd.write_text(f"cmd_{folder}/tools/objtool/check.o := gcc -o {folder}/tools/objtool/check.o\n"
                   f"other := {folder}-trace/x.o\n")
    os.utime(cmd, (1_000_000, 1_000_000))
    return folder


FEATURE = {"MODULES": "y", "MODULE_DEBUG_AUTOLOAD_DUPS": "y", "NET": "y"}
CONTROL = {"MODULES": "y", "NET": "y"}
TRACE = {**FEATURE, "MODULE_DEBUG_AUTOLOAD_DUPS_TRACE": "y"}


def test_closest_finished_sibling_of_the_same_source_is_chosen(tmp_path: Path) -> None:
    builds = tmp_path / "builds"
    fake_build(builds, "trace", TRACE)
    feature = fake_build(builds, "feature", FEATURE)
    fake_build(builds, "failed", CONTROL, status="failed")
    fake_build(builds, "other-commit", CONTROL, head="e" * 40)
    fake_build(builds, "other-start", CONTROL, start="defconfig")
    own = builds / "control"
    chosen = seed.choose(builds, own, TREE, HEAD, "tinyconfig", CONTROL)
    assert chosen == seed.Seed(feature, ["MODULE_DEBUG_AUTOLOAD_DUPS"])


def test_a_kernel_far_from_every_sibling_builds_cold(tmp_path: Path) -> None:
    builds = tmp_path / "builds"
    fake_build(builds, "feature", FEATURE)
    debug = {**FEATURE, **{f"DEBUG_{i}": "y" for i in range(seed.MAX_DIFFERENT + 1)}}
    assert seed.choose(builds, builds / "debug", TREE, HEAD, "tinyconfig", debug) is None
    assert seed.choose(builds, builds / "feature", TREE, HEAD, "tinyconfig", FEATURE) is None  # not itself


def test_plant_copies_all_but_the_seeds_own_files_and_keeps_times(tmp_path: Path) -> None:
    builds = tmp_path / "builds"
    feature = fake_build(builds, "feature", FEATURE)
    own = builds / "control"
    own.mkdir()
    (own / ".config").write_text("CONFIG_MODULES=y\n")
    (own / "build.json").write_text('{"status": "running"}')
    (own / seed.SCRATCH / "arch").mkdir(parents=True)  # left by an interrupted plant
    assert seed.plant(seed.Seed(feature, []), own)
    assert (own / ".config").read_text() == "CONFIG_MODULES=y\n"
    assert json.loads((own / "build.json").read_text()) == {"status": "running"}
    assert not (own / "build.log").exists() and not (own / "series").exists()
    assert not (own / "modules-install").exists() and not (own / seed.SCRATCH).exists()
    assert (own / "include/config/auto.conf").stat().st_mtime == \
        (feature / "include/config/auto.conf").stat().st_mtime
    cmd = own / "tools/objtool/.check.o.cmd"
    text = cmd.read_text()
    assert f"cmd_{own}/tools/objtool/check.o := gcc -o {own}/tools/objtool/check.o" in text
    assert f"{feature}-trace/x.o" in text  # only the seed's own folder, not a longer name
    assert cmd.stat().st_mtime == 1_000_000
    assert (feature / "build.log").exists()  # the seed is untouched


def test_a_seed_being_built_is_not_copied(tmp_path: Path) -> None:
    builds = tmp_path / "builds"
    feature = fake_build(builds, "feature", FEATURE)
    own = builds / "control"
    own.mkdir()
    with open(feature / seed.LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        assert not seed.plant(seed.Seed(feature, []), own)
    assert not (own / "vmlinux").exists()


def test_an_entry_left_by_an_interrupted_plant_is_replaced(tmp_path: Path) -> None:
    builds = tmp_path / "builds"
    feature = fake_build(builds, "feature", FEATURE)
    own = builds / "control"
    (own / "tools/objtool").mkdir(parents=True)
    (own / "tools/objtool/half.o").write_text("")
    assert seed.plant(seed.Seed(feature, []), own)
    assert not (own / "tools/objtool/half.o").exists()
    assert (own / "tools/objtool/.check.o.cmd").exists()
