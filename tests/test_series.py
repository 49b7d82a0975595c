"""The series on the real base tree: it applies with git am, checkpatch
--strict finds only what the cover letter justifies, and every step
compiles the objects it touches with the feature on and off."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from kmod_dups.cache import cache_dir, locked
from kmod_dups.codegen import checkpatch
from kmod_dups.codegen.render import VARIANTS
from kmod_dups.codegen.series import write_series
from tests.conftest import SIGNOFF, clone_tree, git_am

pytestmark = pytest.mark.slow

CONFIGS = {
    "off": [],
    "on": ["MODULE_DEBUG", "MODULE_DEBUG_AUTOLOAD_DUPS"],
    "trace": ["MODULE_DEBUG", "MODULE_DEBUG_AUTOLOAD_DUPS", "MODULE_DEBUG_AUTOLOAD_DUPS_TRACE"],
}


@pytest.fixture(scope="module", params=VARIANTS)
def series(request, base_tree: Path, tmp_path_factory) -> tuple[str, list[Path]]:
    out = tmp_path_factory.mktemp("series") / request.param
    return request.param, write_series(base_tree, out, request.param, signoff=SIGNOFF)


def test_layout_of_the_series(series) -> None:
    variant, files = series
    names = [path.name for path in files]
    assert names[0] == "0000-cover-letter.patch"
    assert [name[:5] for name in names[1:]] == [f"{n:04d}-" for n in range(1, len(names))]
    cover = files[0].read_text()
    assert f"Subject: [PATCH 0/{len(names) - 1}] module: " in cover
    assert f"Variant: {variant}." in cover and "Linux 6.1" in cover
    assert "*** SUBJECT HERE ***" not in cover and "*** BLURB HERE ***" not in cover
    assert re.search(r"\d+ files changed, \d+ insertions", cover)  # the diffstat
    for patch in files[1:]:
        text = patch.read_text()
        assert re.search(r"^Subject: \[PATCH \d/\d\] module: ", text, re.M)
        assert f"Signed-off-by: {SIGNOFF}" in text
        message = text.split("\n\n", 1)[1].split("\n---\n", 1)[0]
        assert len(message.split("\n\n")) >= 3, "a commit message explains why"
        assert all(len(line) <= 75 for line in message.splitlines())


def test_checkpatch_strict(series, base_tree: Path) -> None:
    variant, files = series
    cover = files[0].read_text()
    for patch in files[1:]:
        for finding in checkpatch.run(base_tree, patch):
            assert finding.level != "ERROR", finding
            # Whatever stays is named in the cover letter.
            assert finding.kind in cover, finding
            if variant == "hardened":
                assert finding.kind == "FILE_PATH_CHANGES", finding


def _configured(tree: Path, name: str, options: list[str]) -> Path:
    """An O= folder configured from tinyconfig with MODULES and ``options``,
    kept in the cache so that reruns only recompile what changed."""
    obj = cache_dir() / "test-objs" / name
    obj.mkdir(parents=True, exist_ok=True)
    make = ["make", "-s", f"O={obj}", "CC=ccache gcc"]
    subprocess.run([*make, "tinyconfig"], cwd=tree, check=True, capture_output=True)
    enable = [arg for option in ["MODULES", *options] for arg in ("-e", option)]
    subprocess.run([str(tree / "scripts/config"), "--file", str(obj / ".config"), *enable], check=True)
    subprocess.run([*make, "olddefconfig"], cwd=tree, check=True, capture_output=True)
    config = (obj / ".config").read_text()
    for option in options:
        assert f"CONFIG_{option}=y" in config, f"olddefconfig dropped {option}"
    return obj


def test_applies_and_every_step_compiles(series, base_tree: Path, tmp_path: Path) -> None:
    variant, files = series
    tree = clone_tree(base_tree, tmp_path / "linux")
    with locked("test-objs"):
        for step, patch in enumerate(files[1:], 1):
            applied = git_am(tree, [patch])
            assert applied.returncode == 0, applied.stderr
            for name, options in CONFIGS.items():
                obj = _configured(tree, name, options)
                targets = ["kernel/kmod.o", "kernel/module/main.o"]
                if options:
                    targets.append("kernel/module/dups.o")
                build = subprocess.run(["make", f"O={obj}", "CC=ccache gcc", "W=1", "-j2", *targets],
                                       cwd=tree, capture_output=True, text=True)
                assert build.returncode == 0, f"{variant} step {step} ({name}): {build.stderr[-3000:]}"
                ours = [line for line in build.stderr.splitlines()
                        if "warning:" in line and re.search(r"dups\.c|kmod\.c|internal\.h", line)]
                if variant == "as-posted":
                    # The posted dups.c does not include internal.h, so W=1
                    # finds its two functions without a prototype in scope.
                    ours = [line for line in ours if "[-Wmissing-prototypes]" not in line]
                assert not ours, f"{variant} step {step} ({name}): {ours}"
                for target in targets:
                    assert (obj / target).is_file()
    log = subprocess.run(["git", "log", "--format=%s", f"-{len(files) - 1}"], cwd=tree,
                         capture_output=True, text=True, check=True).stdout
    assert log.count("module: ") == len(files) - 1
    assert (tree / "kernel/module/dups.c").is_file()


def test_series_refuses_an_applied_tree(series, base_tree: Path, tmp_path: Path) -> None:
    from kmod_dups.errors import UserError

    _, files = series
    tree = clone_tree(base_tree, tmp_path / "linux")
    assert git_am(tree, files[1:]).returncode == 0
    with pytest.raises(UserError, match="already has kernel/module/dups.c"):
        write_series(tree, tmp_path / "again", signoff=SIGNOFF)
    assert not (tmp_path / "again").exists()
