"""The fix-up series for trees that carry dups.c (Debian's 6.12 and 7.2):
each defect found by reading the code, one patch per defect; each patch
fixes its own defect in the rig and no other check regresses; the series
ends passing every scenario; and it is ready to send (Fixes:, To:/Cc:,
vN with its changes).  The series on the whole trees (git am, checkpatch,
W=1 at every step) is the slow test at the end."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kmod_dups import rig
from kmod_dups.codegen import bases, basetree, fixups, maintainers, versions
from kmod_dups.codegen.feature import Patch
from kmod_dups.errors import UserError
from tests.conftest import SIGNOFF, clone_tree, git_am

needs_toolchain = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("make") is None,
    reason="gcc and make are needed to build the rig",
)
needs_apt = pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get fetches Debian's trees")

ALL = [d.slug for d in fixups.DEFECTS]


def _copy_files(tree: Path, dest: Path) -> Path:
    """The files of a tree the series and the rig read (not the whole tree,
    where it is unpacked)."""
    for rel in bases.RIG_FILES:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tree / rel, dest / rel)
    return dest


@pytest.fixture(scope="module", params=["6.12", "7.2"])
def upstream_files(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is needed to fetch Debian's trees")
    return _copy_files(bases.rig_tree(request.param), tmp_path_factory.mktemp(f"linux-{request.param}"))


def staged(files: Path, patches: list[Patch], count: int, dest: Path) -> Path:
    """A copy of the tree's files with the first *count* patches applied."""
    _copy_files(files, dest)
    for patch in patches[:count]:
        for rel, text in patch.files.items():
            (dest / rel).write_text(text)
    return dest


# --- reading the code --------------------------------------------------------

def test_every_defect_is_found_in_upstream_code(upstream_files: Path) -> None:
    tree = basetree.probe(upstream_files)
    assert tree.has_dups
    assert [d.slug for d in fixups.found(tree)] == ALL


def test_each_patch_removes_its_own_defect_only(upstream_files: Path, tmp_path: Path) -> None:
    patches = fixups.patches(basetree.probe(upstream_files))
    assert [p.slug for p in patches] == ALL
    for count in range(len(patches) + 1):
        tree = basetree.probe(staged(upstream_files, patches, count, tmp_path / f"s{count}"))
        left = [d.slug for d in fixups.found(tree)]
        assert left == ALL[count:], (count, left)


def test_a_partly_fixed_tree_gets_the_rest(upstream_files: Path, tmp_path: Path) -> None:
    patches = fixups.patches(basetree.probe(upstream_files))
    tree = basetree.probe(staged(upstream_files, patches, 2, tmp_path / "two"))
    assert [p.slug for p in fixups.patches(tree)] == ALL[2:]
    done = basetree.probe(staged(upstream_files, patches, len(patches), tmp_path / "all"))
    with pytest.raises(UserError, match="none of the defects"):
        fixups.patches(done)


def test_code_in_another_form_is_one_line(upstream_files: Path, tmp_path: Path) -> None:
    """The defect is there (the delayed delete) but the code around it is
    not what the diff was written against: an error, not fuzz."""
    patches = fixups.patches(basetree.probe(upstream_files))
    tree = staged(upstream_files, patches, 1, tmp_path / "t")
    dups = tree / basetree.DUPS_C
    dups.write_text(dups.read_text().replace("\tlist_del(&kmod_req->list);\n", "\tlist_del_init(&kmod_req->list);\n"))
    with pytest.raises(UserError, match=r"has the linger defect, but not in the form") as err:
        fixups.patches(basetree.probe(tree))
    assert "\n" not in str(err.value)


def test_a_dups_tree_of_unknown_layout_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 9\nSUBLEVEL = 0\n")
    module = tmp_path / "kernel/module"
    module.mkdir(parents=True)
    for name in ("Kconfig", "Makefile", "internal.h", "dups.c"):
        (module / name).write_text("\n")
    (tmp_path / "kernel/kmod.c").write_text("static DEFINE_SEMAPHORE(kmod_concurrent_max, 50);\n")
    with pytest.raises(UserError, match="already has kernel/module/dups.c and kmod.c at kernel/kmod.c"):
        fixups.patches(basetree.probe(tmp_path))
    (tmp_path / "kernel/kmod.c").rename(module / "kmod.c")
    with pytest.raises(UserError, match="does not call kmod_dup_request_exists_wait"):
        fixups.patches(basetree.probe(tmp_path))


# --- the rig: each patch fixes what it says ----------------------------------

# slug -> the scenario and the check that fails before the patch, serially
SHOWN_BY = {
    "announce": ("nowait", "early"),
    "linger": ("reload", "reload"),
    "flood": ("flood", "flood"),
    "spellings": ("spellings", "spelling"),
    "recursion": ("recursive", "hang"),
}


def _rig(tree: Path, tmp_path: Path, scenario: str, serial: bool = True, **kw) -> rig.RigResult:
    built = rig.build(rig.BuildConfig(tree=tree, sanitizer="address", **kw))
    # slots and flood have their own sizes; uaf's rounds are slow (20,000: a minute)
    requests = {"slots": None, "flood": None, "uaf": 4000}.get(scenario, 20000)
    request = rig.RunRequest(scenario=scenario, serial=serial, requests=requests,
                             extra_args=("--hang-timeout=5",), timeout_s=300, progress_s=0)
    return rig.run(built, request, log_root=tmp_path)


@needs_toolchain
@pytest.mark.parametrize("slug", list(SHOWN_BY))
def test_the_patch_fixes_its_defect(upstream_files: Path, tmp_path: Path, slug: str) -> None:
    patches = fixups.patches(basetree.probe(upstream_files))
    index = ALL.index(slug)
    before = staged(upstream_files, patches, index, tmp_path / "before")
    after = staged(upstream_files, patches, index + 1, tmp_path / "after")
    scenario, check = SHOWN_BY[slug]
    failing = _rig(before, tmp_path, scenario)
    assert rig.judge(failing, check).ok, "\n".join(rig.summarize(failing))
    fixed = _rig(after, tmp_path, scenario)
    assert fixed.passed, "\n".join(rig.summarize(fixed))


@needs_toolchain
def test_the_slots_patch_lets_duplicates_wait_without_a_slot(upstream_files: Path, tmp_path: Path) -> None:
    patches = fixups.patches(basetree.probe(upstream_files))
    index = ALL.index("slots")
    slow = {"linger_ms": 6000}
    before = _rig(staged(upstream_files, patches, index, tmp_path / "b"), tmp_path, "slots", **slow)
    assert before.stats["dup_wait"] == 0 and before.stats["slot_waits"] >= 101, before.stats
    after = _rig(staged(upstream_files, patches, index + 1, tmp_path / "a"), tmp_path, "slots", **slow)
    assert after.passed, "\n".join(rig.summarize(after))
    assert after.stats["dup_wait"] == 100 and after.stats["slot_waits"] < 20, after.stats


@needs_toolchain
@pytest.mark.parametrize("serial", [True, False], ids=["serial", "concurrent"])
def test_the_kill_patch(upstream_files: Path, tmp_path: Path, serial: bool) -> None:
    """Serially (the commit message's figure: 126 from seed 1) and with
    real concurrency."""
    patches = fixups.patches(basetree.probe(upstream_files))
    index = ALL.index("kill")
    before = _rig(staged(upstream_files, patches, index, tmp_path / "b"), tmp_path, "kill", serial=serial)
    assert rig.judge(before, "kill").ok, "\n".join(rig.summarize(before))
    after = _rig(staged(upstream_files, patches, index + 1, tmp_path / "a"), tmp_path, "kill", serial=serial)
    assert after.passed, "\n".join(rig.summarize(after))


@needs_toolchain
@pytest.mark.parametrize("scenario", ["uaf", "dups", "reload", "nomem", "owner-nomem", "nowait", "kill",
                                      "spellings", "recursive", "flood", "stress"])
def test_the_fixed_tree_passes_every_scenario(upstream_files: Path, tmp_path: Path, scenario: str) -> None:
    patches = fixups.patches(basetree.probe(upstream_files))
    tree = staged(upstream_files, patches, len(patches), tmp_path / "fixed")
    assert rig.BuildConfig(tree=tree).dups_api == 3
    result = _rig(tree, tmp_path, scenario, serial=False)
    assert result.passed, "\n".join(rig.summarize(result))


# --- ready to send -----------------------------------------------------------

def test_get_maintainer_roles() -> None:
    found = maintainers.parse(
        "Luis Chamberlain <mcgrof@kernel.org> (maintainer:MODULE SUPPORT)\n"
        "Aaron Tomlin <atomlin@atomlin.com> (reviewer:MODULE SUPPORT)\n"
        "linux-modules@vger.kernel.org (open list:MODULE SUPPORT)\n"
        "Luis Chamberlain <mcgrof@kernel.org> (maintainer:KERNEL MODULE AUTOLOADING)\n"
        "\n"
        "some noise\n")
    assert found.to == ("Luis Chamberlain <mcgrof@kernel.org>",)
    assert found.cc == ("Aaron Tomlin <atomlin@atomlin.com>", "linux-modules@vger.kernel.org")
    assert found.format_patch_args()[0] == "--to=Luis Chamberlain <mcgrof@kernel.org>"


def _patch(slug: str, code: str, message: str = "why") -> Patch:
    return Patch(slug=slug, subject=f"module: dups: {slug}", message=message, files={"a.c": code})


def test_versions_say_what_changed(tmp_path: Path) -> None:
    versions.write_record(tmp_path, 1, [_patch("a", "1"), _patch("b", "2"), _patch("c", "3")])
    earlier = versions.read_previous(tmp_path, 2)
    lines = versions.changes(earlier, [_patch("a", "1"), _patch("b", "2", "better why"), _patch("d", "4")])
    assert lines == ["module: dups: b: commit message changed", "new: module: dups: d",
                     "dropped: module: dups: c"]
    assert versions.changes(earlier, [_patch("a", "1"), _patch("b", "2"), _patch("c", "3")]) == \
        ["no change to the patches since v1; resent"]


def test_version_mistakes_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="needs --previous DIR, the v1 series"):
        versions.read_previous(None, 2)
    with pytest.raises(UserError, match="pass -v 2 or more"):
        versions.read_previous(tmp_path, 1)
    with pytest.raises(UserError, match="not a series this tool wrote"):
        versions.read_previous(tmp_path, 2)
    versions.write_record(tmp_path, 1, [_patch("a", "1")])
    with pytest.raises(UserError, match="is v1, not v2"):
        versions.read_previous(tmp_path, 3)
    with pytest.raises(UserError, match="a series version is 1 or more"):
        versions.read_previous(None, 0)


# --- the whole trees ---------------------------------------------------------

def test_series_applies_to_each_trees_files(upstream_files: Path, tmp_path: Path) -> None:
    """Both trees, from their files alone (the whole-tree test below is on
    7.2 only: 6.12's files differ in one line no diff touches)."""
    from kmod_dups.codegen.series import write_series

    files = write_series(upstream_files, tmp_path / "s", signoff=SIGNOFF, run_checkpatch=False)
    repo = _copy_files(upstream_files, tmp_path / "git")
    for args in (["init", "-q"], ["add", "-A", "--force"], ["-c", "user.name=t", "-c", "user.email=t@t",
                                                            "commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    applied = git_am(repo, files[1:])
    assert applied.returncode == 0, applied.stderr
    assert not fixups.found(basetree.probe(repo))


@pytest.mark.slow
@needs_apt
def test_series_on_the_whole_tree(tmp_path: Path) -> None:
    """Written with checkpatch --strict (write_series fails on anything the
    cover letter does not justify), addressed by get_maintainer.pl, applied
    with git am, compiled with W=1 at every step, and a v2 that says what
    changed."""
    from kmod_dups.codegen.series import write_series
    from kmod_dups.codegen.verify import compile_each_step

    base = bases.base_tree("7.2")
    files = write_series(base, tmp_path / "v1", signoff=SIGNOFF)
    assert len(files) == 1 + len(ALL)
    cover = files[0].read_text()
    assert "To: Luis Chamberlain <mcgrof@kernel.org>" in cover and "linux-modules@vger.kernel.org" in cover
    for path in files[1:]:
        text = path.read_text()
        assert fixups.FIXES + "\n" + f"Signed-off-by: {SIGNOFF}" in text
        assert "kmod-dups rig --tree . --serial --scenario" in text
        message = text.split("\n\n", 1)[1].split("\n---\n", 1)[0]
        assert all(len(line) <= 75 for line in message.splitlines() if not line.startswith("Fixes:"))
    tree = clone_tree(base, tmp_path / "linux")
    applied = git_am(tree, files[1:])
    assert applied.returncode == 0, applied.stderr
    assert not fixups.found(basetree.probe(tree)), "the series leaves no defect it knows"
    assert len(compile_each_step(base, files[1:], say=lambda _: None)) == len(ALL)
    again = write_series(base, tmp_path / "v2", signoff=SIGNOFF, reroll=2, previous=tmp_path / "v1")
    assert again[1].name.startswith("v2-0001-")
    assert "Subject: [PATCH v2 0/7]" in again[0].read_text()
    assert "no change to the patches since v1; resent" in again[0].read_text()


# --- the command line --------------------------------------------------------

def test_cli_bad_input_is_one_line(upstream_files: Path, tmp_path: Path) -> None:
    from tests.test_cli_codegen import assert_one_line_error, run

    out = str(tmp_path / "o")
    assert_one_line_error(run("series", "--tree", str(upstream_files), "--variant", "as-posted", "-o", out,
                              "--signoff", SIGNOFF), "its series is the fix-up series")
    assert_one_line_error(run("series", "--tree", str(upstream_files), "-v", "2", "-o", out,
                              "--signoff", SIGNOFF), "-v 2 needs --previous DIR")
    assert_one_line_error(run("generate", "--tree", str(upstream_files), "-o", out),
                          "writes its fix-up series")
    assert_one_line_error(run("rig", "--fixups", "--build-only"), "--fixups needs a tree that carries dups.c")
    assert not (tmp_path / "o").exists()


@needs_toolchain
def test_cli_rig_fixups_builds_the_fixed_code(upstream_files: Path) -> None:
    from tests.test_cli_codegen import run

    proc = run("rig", "--tree", str(upstream_files), "--fixups", "--build-only")
    assert proc.returncode == 0, proc.stderr
    fixed = Path(proc.stderr.split("with its fix-up series applied: ", 1)[1].split()[0])
    assert rig.BuildConfig(tree=fixed).dups_api == 3 and not fixups.found(basetree.probe(fixed))
    unfixed = run("rig", "--tree", str(upstream_files), "--build-only")
    assert Path(proc.stdout.strip()).name != Path(unfixed.stdout.strip()).name  # two binaries
