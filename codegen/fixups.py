"""The fix-up series for a tree that already carries kernel/module/dups.c
(Linux 6.4 on; Debian's 6.12 and 7.2): one patch per defect its code has.

Each defect is found by reading the tree's own dups.c and kmod.c, never by
its version, and is fixed by a hand-written diff in codegen/fixups/ (kernel
C is reviewed as a diff, not as Python strings). The diffs build on each
other in order and end in the hardened semantics; a defect the tree does
not have is skipped, and a diff that no longer applies to the tree's code
is one clear error, not a patch with fuzz.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kmod_dups.codegen import basetree
from kmod_dups.codegen.basetree import BaseTree
from kmod_dups.codegen.feature import Patch
from kmod_dups.codegen.render import render
from kmod_dups.errors import UserError

DIFFS = Path(__file__).parent / "fixups"
KMOD_C = "kernel/module/kmod.c"
FILES = (basetree.DUPS_C, KMOD_C, basetree.INTERNAL_H)
ORIGINAL = "8660484ed1cf"
FIXES = f'Fixes: {ORIGINAL} ("module: add debugging auto-load duplicate module support")'


@dataclass(frozen=True)
class Sources:
    """The texts the series changes, as they stand before a patch."""

    dups_c: str
    kmod_c: str
    internal_h: str

    def request_module(self) -> str:
        """__request_module()'s body in kmod.c."""
        start = self.kmod_c.find("int __request_module(")
        end = self.kmod_c.find("EXPORT_SYMBOL(__request_module)", start)
        return self.kmod_c[start:end] if start >= 0 and end >= 0 else ""


def _announces_by_name(src: Sources) -> bool:
    return bool(re.search(r"void kmod_dup_request_announce\(\s*(const\s+)?char\s*\*", src.dups_c))


def _lingers(src: Sources) -> bool:
    return "delayed_work" in src.dups_c


def _slot_before_check(src: Sources) -> bool:
    body = src.request_module()
    slot, check = body.find("kmod_concurrent_max"), body.find("kmod_dup_request_exists_wait(")
    return 0 <= slot < check


def _warns_per_duplicate(src: Sources) -> bool:
    return "duplicate request for module" in src.dups_c and "->dups++" not in src.dups_c


def _byte_compare(src: Sources) -> bool:
    return "parameq(" not in src.dups_c and bool(re.search(r"memcmp\(|strcmp\(", src.dups_c))


def _hands_on_kills(src: Sources) -> bool:
    return "fatal_signal_pending(" not in src.dups_c


def _waits_for_itself(src: Sources) -> bool:
    return "real_parent" not in src.dups_c


@dataclass(frozen=True)
class Defect:
    """One defect of the tree's code and the patch that fixes it."""

    slug: str
    subject: str
    present: Callable[[Sources], bool]
    # The rig scenario that shows it: kmod-dups rig --base B --scenario S.
    scenario: str
    summary: str  # what goes wrong, for the cover letter

    @property
    def diff(self) -> Path:
        found = next(DIFFS.glob(f"*-{self.slug}.diff"), None)
        if found is None:
            raise UserError(f"{DIFFS} has no diff for the {self.slug} defect: an incomplete installation")
        return found


DEFECTS = (
    Defect("announce", "module: dups: let only the first request announce its result",
           _announces_by_name, "nowait",
           "an untracked request_module_nowait() completed another request's entry early"),
    Defect("linger", "module: dups: stop tracking a request once it has its result",
           _lingers, "reload",
           "a finished result was handed out for 60 s, to requests after an rmmod too"),
    Defect("slots", "module: dups: look for a duplicate before taking a modprobe slot",
           _slot_before_check, "slots",
           "duplicates held modprobe slots while they waited"),
    Defect("flood", "module: dups: warn once per burst of duplicates",
           _warns_per_duplicate, "flood",
           "every duplicate of a burst warned"),
    Defect("spellings", "module: dups: match module names as modprobe does",
           _byte_compare, "spellings",
           "snd-dummy and snd_dummy ran two modprobes at once"),
    Defect("kill", "module: dups: do not hand a killed first request's result to its duplicates",
           _hands_on_kills, "kill",
           "a killed first request's -ERESTARTSYS reached waiters that were not killed"),
    Defect("recursion", "module: dups: never wait for the request's own modprobe",
           _waits_for_itself, "recursive",
           "a request from the first request's own modprobe waited for itself"),
)


def check_layout(tree: BaseTree) -> Sources:
    """The tree's sources, or one line saying why the series cannot serve it."""
    where = f"{tree.path} (Linux {tree.version})"
    if not tree.has_dups:
        raise UserError(f"{where} has no {basetree.DUPS_C}: a fix-up series is for trees that carry it "
                        "(6.4 on); for this one `kmod-dups series` writes the feature")
    if tree.kmod_c != KMOD_C:
        raise UserError(f"{where} already has {basetree.DUPS_C} and kmod.c at {tree.kmod_c}: a layout "
                        "the fix-up series does not know")
    src = Sources(*(tree.read(rel) for rel in FILES))
    if "kmod_dup_request_exists_wait(" not in src.request_module():
        raise UserError(f"{where}: __request_module() does not call kmod_dup_request_exists_wait(); "
                        "not a dups.c the fix-up series knows")
    if tree.throttle != "semaphore":
        raise UserError(f"{where}: kmod.c limits modprobes with an atomic_t, not the semaphore of "
                        "6.4 and later that the fix-up series is written against")
    return src


def found(tree: BaseTree) -> list[Defect]:
    """The defects the tree's code has, in series order."""
    src = check_layout(tree)
    return [d for d in DEFECTS if d.present(src)]


def _apply(files: dict[str, str], defect: Defect, where: str) -> dict[str, str]:
    with tempfile.TemporaryDirectory(prefix="kmod-dups-fixup-") as scratch:
        root = Path(scratch)
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        proc = subprocess.run(["git", "apply", "--whitespace=nowarn", str(defect.diff)], cwd=root,
                              capture_output=True, text=True)
        if proc.returncode:
            why = (proc.stderr.strip().splitlines() or ["git apply failed"])[0]
            raise UserError(f"{where}: its code has the {defect.slug} defect, but not in the form the "
                            f"fix-up series was written against (Linux 6.12, 7.2): {why}")
        return {rel: (root / rel).read_text() for rel in files}


def patches(tree: BaseTree) -> list[Patch]:
    """The fix-up patches in order, each with the full text of the files
    after it."""
    src = check_layout(tree)
    where = f"{tree.path} (Linux {tree.version})"
    files = dict(zip(FILES, (src.dups_c, src.kmod_c, src.internal_h)))
    out = []
    for defect in DEFECTS:
        current = Sources(*(files[rel] for rel in FILES))
        if not defect.present(current):
            continue
        after = _apply(files, defect, where)
        changed = {rel: text for rel, text in after.items() if text != files[rel]}
        files = after
        out.append(Patch(slug=defect.slug, subject=defect.subject,
                         message=render(f"fixup/{defect.slug}.j2", tree=tree, defect=defect),
                         files=changed, trailers=(FIXES,)))
    if not out:
        raise UserError(f"{where}: its dups.c has none of the defects the fix-up series fixes; "
                        "nothing to write")
    return out


def fixed_files(tree: Path, files: tuple[str, ...], dest_root: Path) -> Path:
    """A copy of the tree's *files* with the fix-up series applied, under
    *dest_root* (named by the version and the series' result, so it is
    written once): what the rig builds for `--fixups`."""
    import hashlib

    base = basetree.probe(tree)
    texts = {rel: (tree / rel).read_text() for rel in files if (tree / rel).is_file()}
    for patch in patches(base):
        texts.update(patch.files)
    digest = hashlib.sha1("".join(f"{k}\0{v}\0" for k, v in sorted(texts.items())).encode()).hexdigest()[:8]
    dest = dest_root / f"linux-{base.version}-fixed-{digest}"
    if not dest.is_dir():
        import shutil

        staging = Path(tempfile.mkdtemp(prefix=".fixed-", dir=dest_root))
        try:
            for rel, text in texts.items():
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                (staging / rel).write_text(text)
            staging.rename(dest)
        except OSError as err:
            shutil.rmtree(staging, ignore_errors=True)
            if not dest.is_dir():  # not another run's same result, written first
                raise UserError(f"cannot write {dest}: {err.strerror}") from None
    return dest
