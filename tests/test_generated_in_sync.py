"""kernel/generated/ is what codegen emits today for the default base and
variant; a template edit without regenerating fails here."""

from __future__ import annotations

from pathlib import Path

from kmod_dups.codegen import basetree
from kmod_dups.codegen.generate import DIFF_NAME, final_files, unified_diff
from kmod_dups.codegen.render import DEFAULT_VARIANT
from tests.conftest import REPO

CHECKED_IN = REPO / "kernel" / "generated"
FIX = "regenerate with: kmod-dups generate -o kernel/generated --force"


def test_checked_in_sources_match_codegen(base_tree: Path) -> None:
    tree = basetree.probe(base_tree)
    files = final_files(tree, DEFAULT_VARIANT)
    on_disk = {str(path.relative_to(CHECKED_IN)) for path in CHECKED_IN.rglob("*") if path.is_file()}
    assert on_disk == set(files) | {DIFF_NAME}, FIX
    for rel, text in files.items():
        assert (CHECKED_IN / rel).read_text() == text, f"{rel} drifted; {FIX}"
    assert (CHECKED_IN / DIFF_NAME).read_text() == unified_diff(tree, files), FIX
