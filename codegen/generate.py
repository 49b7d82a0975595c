"""`kmod-dups generate`: the feature's files for one base tree and variant,
laid out as in the tree, plus the feature as one unified diff."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

from kmod_dups.codegen import basetree, feature
from kmod_dups.codegen.series import check_output_dir, make_staging, publish

DIFF_NAME = "feature.diff"


def final_files(base: basetree.BaseTree, variant: str) -> dict[str, str]:
    """Each touched file's text once every patch is applied."""
    files: dict[str, str] = {}
    for patch in feature.patches(base, variant):
        files.update(patch.files)
    return files


def unified_diff(base: basetree.BaseTree, files: dict[str, str]) -> str:
    chunks = []
    for rel in sorted(files):
        old_path = base.path / rel
        old = old_path.read_text().splitlines(keepends=True) if old_path.exists() else []
        new = files[rel].splitlines(keepends=True)
        chunks.extend(difflib.unified_diff(old, new, "/dev/null" if not old else f"a/{rel}", f"b/{rel}"))
    return "".join(chunks)


def generate(tree: Path, out: Path, variant: str, force: bool = False) -> dict[str, str]:
    """Write the generated files under ``out`` (dups.c and the whole of every
    file the feature changes) and ``out/feature.diff``."""
    base = basetree.probe(tree)
    files = final_files(base, variant)
    out = Path(out)
    check_output_dir(out, force)
    staging = make_staging(out)
    try:
        for rel, text in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_text(text)
        (staging / DIFF_NAME).write_text(unified_diff(base, files))
        publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return files
