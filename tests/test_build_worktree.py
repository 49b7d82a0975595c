"""Work trees: cloned from the base (never modified), series applied with
git am, reused, and updated in place keeping the mtime of every file whose
content did not change (so make rebuilds only what changed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kmod_dups.build import worktree
from kmod_dups.build.runlog import RunLog
from kmod_dups.errors import UserError

ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          env={**os.environ, **ENV}).stdout.strip()


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KMOD_DUPS_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def base(tmp_path: Path) -> Path:
    repo = tmp_path / "base"
    (repo / "kernel/module").mkdir(parents=True)
    (repo / "kernel/module/main.c").write_text("int main_c;\n")
    (repo / "kernel/kmod.c").write_text("int kmod_c;\n")
    (repo / "README").write_text("base\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def make_series(base: Path, out: Path, dups_text: str, kmod_text: str = "int kmod_c; /* hooked */\n") -> list[Path]:
    """Two patches made the way the generator makes them: commits, then
    git format-patch with a cover letter."""
    scratch = out.parent / (out.name + "-repo")
    git(base.parent, "clone", "-q", str(base), str(scratch))
    (scratch / "kernel/module/dups.c").write_text(dups_text)
    git(scratch, "add", "-A")
    git(scratch, "commit", "-q", "-m", "module: add dups")
    (scratch / "kernel/kmod.c").write_text(kmod_text)
    git(scratch, "commit", "-q", "-am", "module: hook dups")
    git(scratch, "format-patch", "-q", "--cover-letter", "-o", str(out), "HEAD~2")
    return worktree.series_patches(sorted(out.glob("*.patch")))


def test_series_patches_skip_the_cover_letter(base: Path, tmp_path: Path) -> None:
    patches = make_series(base, tmp_path / "s1", "int dups;\n")
    assert [p.name[:5] for p in patches] == ["0001-", "0002-"]
    assert worktree.files_in(patches) == {"kernel/module/dups.c", "kernel/kmod.c"}


def test_create_reuse_and_base_untouched(base: Path, tmp_path: Path) -> None:
    log = RunLog(tmp_path / "log")
    patches = make_series(base, tmp_path / "s1", "int dups;\n")
    before = git(base, "status", "--porcelain", "--ignored")
    tree = worktree.prepare(base, "hardened", patches, log)
    assert tree.action == "created"
    assert (tree.path / "kernel/module/dups.c").read_text() == "int dups;\n"
    assert git(tree.path, "log", "--format=%s", "-3").splitlines() == \
        ["module: hook dups", "module: add dups", "base"]
    assert git(base, "status", "--porcelain", "--ignored") == before
    assert not (base / "kernel/module/dups.c").exists()
    again = worktree.prepare(base, "hardened", patches, log)
    assert (again.action, again.path, again.head) == ("reused", tree.path, tree.head)
    other = worktree.prepare(base, "as-posted", patches, log)
    assert other.path != tree.path


def test_update_touches_only_changed_files(base: Path, tmp_path: Path) -> None:
    log = RunLog(tmp_path / "log")
    tree = worktree.prepare(base, "hardened", make_series(base, tmp_path / "s1", "int dups;\n"), log)
    old = 1_000_000_000
    for rel in ("kernel/module/dups.c", "kernel/kmod.c", "README"):
        os.utime(tree.path / rel, (old, old))
    updated = worktree.prepare(base, "hardened", make_series(base, tmp_path / "s2", "int dups2;\n"), log)
    assert updated.action == "updated" and updated.touched == ["kernel/module/dups.c"]
    assert (tree.path / "kernel/module/dups.c").read_text() == "int dups2;\n"
    assert (tree.path / "kernel/module/dups.c").stat().st_mtime > old
    assert (tree.path / "kernel/kmod.c").stat().st_mtime == old
    assert (tree.path / "README").stat().st_mtime == old


def test_update_follows_a_new_base_commit(base: Path, tmp_path: Path) -> None:
    log = RunLog(tmp_path / "log")
    patches = make_series(base, tmp_path / "s1", "int dups;\n")
    worktree.prepare(base, "hardened", patches, log)
    (base / "README").write_text("base v2\n")
    git(base, "commit", "-q", "-am", "base v2")
    tree = worktree.prepare(base, "hardened", patches, log)
    assert tree.action == "updated" and "README" in tree.touched
    assert (tree.path / "README").read_text() == "base v2\n"


def test_a_series_that_does_not_apply_leaves_no_work_tree(base: Path, tmp_path: Path) -> None:
    log = RunLog(tmp_path / "log")
    patches = make_series(base, tmp_path / "s1", "int dups;\n")
    (base / "kernel/kmod.c").write_text("int something_else;\n")
    git(base, "commit", "-q", "-am", "diverge")
    with pytest.raises(UserError, match="does not apply with git am"):
        worktree.prepare(base, "hardened", patches, log)
    assert not (worktree.root_for(base, "hardened") / "linux").exists()


def test_interrupted_am_is_recovered(base: Path, tmp_path: Path) -> None:
    log = RunLog(tmp_path / "log")
    patches = make_series(base, tmp_path / "s1", "int dups;\n")
    tree = worktree.prepare(base, "hardened", patches, log)
    # leave the work tree in the middle of a failed git am, as a killed run would
    git(tree.path, "reset", "-q", "--hard", "HEAD~2")
    bad = make_series(base, tmp_path / "s2", "int dups;\n", kmod_text="x\n")
    (tree.path / "kernel/kmod.c").write_text("conflict\n")
    git(tree.path, "commit", "-q", "-am", "conflict")
    subprocess.run(["git", "am", "-q", *map(str, bad)], cwd=tree.path, capture_output=True,
                   env={**os.environ, **ENV})
    assert (tree.path / ".git/rebase-apply").exists()
    again = worktree.prepare(base, "hardened", patches, log)
    assert again.action == "updated"
    assert not (tree.path / ".git/rebase-apply").exists()
    assert (tree.path / "kernel/kmod.c").read_text() == "int kmod_c; /* hooked */\n"


def test_not_a_git_repo(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(UserError, match="is not the top of a git repository"):
        worktree.prepare(plain, "hardened", [], RunLog(tmp_path / "log"))
