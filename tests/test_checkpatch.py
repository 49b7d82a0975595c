"""codegen.checkpatch fails closed: what checkpatch.pl printed, its total
line and its exit status must agree, or there is no result."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmod_dups.codegen import checkpatch
from kmod_dups.codegen.checkpatch import CheckpatchError

BAD_PATCH = """\
From: A U Thor <author@example.org>
Subject: [PATCH] module: a patch in no kernel style

Signed-off-by: A U Thor <author@example.org>
---
 kernel/module/x.c | 3 +++
 1 file changed, 3 insertions(+)

diff --git a/kernel/module/x.c b/kernel/module/x.c
--- a/kernel/module/x.c
+++ b/kernel/module/x.c
@@ -1,0 +1,3 @@
+int f(int a){
+    return a ;
+}
"""

CLEAN = "total: 0 errors, 0 warnings, 0 checks, 12 lines checked\n\n/p has no obvious style problems.\n"
ONE = ("WARNING:LONG_LINE: line length of 101 exceeds 100 columns\n#10: FILE: kernel/module/dups.c:3:\n+x\n\n"
       "total: 0 errors, 1 warnings, 0 checks, 12 lines checked\n")


def fake(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "checkpatch.pl"
    script.write_text(body)
    return script


def test_clean_and_one_finding_read_as_they_are():
    assert checkpatch.read(0, CLEAN) == []
    (finding,) = checkpatch.read(1, ONE)
    assert (finding.level, finding.kind, finding.file) == ("WARNING", "LONG_LINE", "kernel/module/dups.c")


@pytest.mark.parametrize("rc,output,why", [
    (0, "", "0 'total:' lines"),  # nothing printed: not clean
    (0, "/p has no obvious style problems.\n", "0 'total:' lines"),
    (2, CLEAN, "exit status 2"),  # perl died after printing
    (0, ONE, "exit status 0 with 1 findings"),
    (1, CLEAN, "exit status 1 with 0 findings"),
    (1, ONE.replace("0 errors, 1 warnings", "2 errors, 1 warnings"), "total says 2 errors"),
    (0, CLEAN.replace("12 lines", "0 lines"), "checked 0 lines"),
])
def test_output_that_does_not_add_up_is_an_error(rc, output, why):
    with pytest.raises(CheckpatchError, match=why):
        checkpatch.read(rc, output)


def test_a_missing_script_is_an_error(tmp_path):
    patch = tmp_path / "p.patch"
    patch.write_text(BAD_PATCH)
    with pytest.raises(CheckpatchError, match="no scripts/checkpatch.pl"):
        checkpatch.run(tmp_path, patch)


def test_perl_dying_is_an_error_not_clean(tmp_path):
    patch = tmp_path / "p.patch"
    patch.write_text(BAD_PATCH)
    script = fake(tmp_path, 'die "Can\'t locate Term/ANSIColor.pm in @INC\\n";\n')
    with pytest.raises(CheckpatchError) as err:
        checkpatch.run(tmp_path, patch, script=script)
    assert "p.patch" in str(err.value) and "Term/ANSIColor.pm" in str(err.value)


def test_a_script_that_prints_nothing_is_an_error(tmp_path):
    patch = tmp_path / "p.patch"
    patch.write_text(BAD_PATCH)
    with pytest.raises(CheckpatchError):
        checkpatch.run(tmp_path, patch, script=fake(tmp_path, "exit 0;\n"))


@pytest.mark.slow
def test_a_known_bad_patch_reports(tmp_path, base_tree):
    patch = tmp_path / "bad.patch"
    patch.write_text(BAD_PATCH)
    findings = checkpatch.run(base_tree, patch)
    kinds = {(f.level, f.kind) for f in findings}
    assert ("ERROR", "OPEN_BRACE") in kinds and ("WARNING", "LEADING_SPACE") in kinds
    assert ("WARNING", "SPACING") in kinds
