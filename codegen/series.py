"""Turn the feature's patches into a git format-patch series: a cover
letter and one patch per logical change, for ``git am`` on the base tree.

The commits are made in a throw-away repository that holds only the files
the series touches (copied from the base tree), so a series for a 1 GB
tree takes a second; the patches apply to the full tree all the same.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from kmod_dups.codegen import basetree, checkpatch, feature, fixups, maintainers, versions
from kmod_dups.codegen.render import DEFAULT_VARIANT, check_variant, render
from kmod_dups import atomic
from kmod_dups.errors import UserError

# Findings that stay, with the reason the cover letter gives for each.
JUSTIFIED = {
    "FILE_PATH_CHANGES": "kernel/module/dups.c is a new file; MAINTAINERS needs no update "
    "since its MODULE SUPPORT entry covers F: kernel/module/",
    "UNKNOWN_COMMIT_ID": f"the Fixes: tag names upstream's {fixups.ORIGINAL} (Linux 6.4); this base is a "
    "source release without the kernel's git history, where checkpatch.pl cannot look it up",
}
AS_POSTED_WHY = "dups.c is reproduced exactly as it was posted to the list; the hardened variant fixes it"


@dataclass(frozen=True)
class Justified:
    summary: str
    why: str


def identity(signoff: str | None) -> str:
    """'Name <email>' for Signed-off-by and the patches' author."""
    if signoff:
        if "<" not in signoff or not signoff.rstrip().endswith(">"):
            raise UserError(f"--signoff {signoff!r} is not of the form 'Name <email>'")
        return signoff.strip()
    fields = []
    for key in ("user.name", "user.email"):
        proc = subprocess.run(["git", "config", "--get", key], capture_output=True, text=True)
        fields.append(proc.stdout.strip())
    if not all(fields):
        raise UserError("no identity for Signed-off-by: set git config --global user.name and "
                        "user.email, or pass --signoff 'Name <email>'")
    return f"{fields[0]} <{fields[1]}>"


def check_output_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a directory; choose another -o")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"{out} exists and is not empty; pass --force to replace it")
    parent = out.resolve().parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"cannot write {out}: {probe} is not a directory; choose another -o")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to {probe}; choose an -o in a writable place")


def make_staging(out: Path) -> Path:
    """A fresh folder beside ``out`` to write into before ``publish``."""
    return atomic.staging_dir(out, "choose an -o in a writable place")


publish = atomic.publish_dir


def _git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", "-c", "core.autocrlf=false", "-c", "commit.gpgsign=false", *args],
                          cwd=repo, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise UserError(f"git {args[0]} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return proc.stdout


def _ident_env(who: str) -> dict[str, str]:
    name, email = who.rsplit("<", 1)
    name, email = name.strip(), email.rstrip(">").strip()
    return dict(os.environ, GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email,
                GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email)


def reflow(message: str, width: int = 72) -> str:
    """Wrap each paragraph of a commit message at ``width`` columns, keeping
    "- " list items as hanging paragraphs, as kernel commit messages are,
    and indented blocks (interleavings, commands) as they are."""
    out = []
    for paragraph in re.split(r"\n[ \t]*\n", message.strip()):
        if paragraph[:1].isspace():
            # an indented block (a diagram, a command): as it is
            out.append(paragraph.rstrip())
            continue
        items = re.split(r"\n(?=- )", paragraph)
        wrapped = []
        for item in items:
            bullet = item.startswith("- ")
            words = " ".join(item.split())
            wrapped.append(textwrap.fill(words, width, subsequent_indent="  " if bullet else ""))
        out.append("\n".join(wrapped))
    return "\n\n".join(out)


def _commit(repo: Path, who: str, subject: str, message: str, trailers: tuple[str, ...] = ()) -> None:
    env = _ident_env(who)
    tags = "".join(f"{tag}\n" for tag in trailers)
    body = f"{subject}\n\n{reflow(message)}\n\n{tags}Signed-off-by: {who}\n"
    _git(repo, "add", "-A", "--force")
    proc = subprocess.run(["git", "-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "-F", "-"],
                          cwd=repo, input=body, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise UserError(f"git commit failed: {proc.stderr.strip()}")


def describe(tree: basetree.BaseTree) -> str:
    stamp = tree.path / ".git" / "kmod-dups-base"
    if stamp.exists():
        return f"Linux {tree.version}, Debian's {Path(stamp.read_text().strip()).name}"
    return f"Linux {tree.version} ({tree.path})"


def write_series(tree: Path, out: Path, variant: str = DEFAULT_VARIANT,
                 signoff: str | None = None, force: bool = False,
                 run_checkpatch: bool = True, linger_ms: int | None = None,
                 reroll: int = 1, previous: Path | None = None) -> list[Path]:
    """``write_addressed_series`` without who it is addressed to."""
    return write_addressed_series(tree, out, variant, signoff, force, run_checkpatch, linger_ms,
                                  reroll, previous)[0]


def write_addressed_series(tree: Path, out: Path, variant: str = DEFAULT_VARIANT,
                           signoff: str | None = None, force: bool = False,
                           run_checkpatch: bool = True, linger_ms: int | None = None,
                           reroll: int = 1, previous: Path | None = None
                           ) -> tuple[list[Path], maintainers.Recipients]:
    """Write the series for ``tree`` into ``out``; return the patch files
    in order, cover letter first, and whom they are addressed to (To:/Cc:
    from get_maintainer.pl, or why none): the feature for a tree without dups.c,
    the fix-up series (``fixups``) for one that has it.  *linger_ms* is for
    test builds only (``render.render_dups_c``).  *reroll* > 1 makes it
    vN, with what changed since *previous* (the v(N-1) folder) in the
    cover letter."""
    check_variant(variant)
    base = basetree.probe(Path(tree))
    out = Path(out)
    check_output_dir(out, force)
    who = identity(signoff)
    earlier = versions.read_previous(previous, reroll)
    if base.has_dups:
        if variant != DEFAULT_VARIANT:
            raise UserError(f"{base.path} (Linux {base.version}) already has {basetree.DUPS_C}: its series "
                            f"is the fix-up series, which has the {DEFAULT_VARIANT} semantics; "
                            f"--variant {variant} is for trees without dups.c")
        patches = fixups.patches(base)
    else:
        patches = feature.patches(base, variant, linger_ms)
    recipients = maintainers.recipients(base, sorted({rel for p in patches for rel in p.files}))

    staging = make_staging(out)
    try:
        with tempfile.TemporaryDirectory(prefix="kmod-dups-series-") as scratch:
            repo = Path(scratch)
            _git(repo, "init", "-q")
            touched = sorted({path for patch in patches for path in patch.files})
            for rel in touched:
                if (base.path / rel).exists():
                    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(base.path / rel, repo / rel)
            _commit(repo, who, "base", "The base tree's files that the series touches.")
            for patch in patches:
                for rel, text in patch.files.items():
                    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
                    (repo / rel).write_text(text)
                _commit(repo, who, patch.subject, patch.message, patch.trailers)
            _git(repo, "format-patch", "-q", "--cover-letter", "--no-signature", "-o", str(staging),
                 "--subject-prefix=PATCH", *(["-v", str(reroll)] if reroll > 1 else []),
                 *recipients.format_patch_args(), "HEAD~%d" % len(patches), env=_ident_env(who))
        files = sorted(staging.glob("*.patch"))
        justified = _check(base, files[1:], variant) if run_checkpatch else []
        changes = versions.changes(earlier, patches) if earlier is not None else None
        _fill_cover(files[0], base, variant, justified, patches, reroll, changes)
        versions.write_record(staging, reroll, patches)
        publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out / f.name for f in files], recipients


def _check(base: basetree.BaseTree, files: list[Path], variant: str) -> list[Justified]:
    justified: dict[str, Justified] = {}
    unexplained = []
    for patch in files:
        for finding in checkpatch.run(base.path, patch):
            key = f"{finding.level}:{finding.kind}"
            if finding.kind in JUSTIFIED:
                justified[key] = Justified(f"{finding.level} {finding.kind} ({finding.message})",
                                           JUSTIFIED[finding.kind])
            elif variant == "as-posted" and finding.file == basetree.DUPS_C:
                why = justified.get(key)
                summary = f"{finding.level} {finding.kind} in dups.c"
                justified[key] = Justified(summary, AS_POSTED_WHY) if why is None else why
            else:
                unexplained.append(f"{patch.name}: {finding.level}:{finding.kind}: {finding.message}")
    if unexplained:
        raise UserError("checkpatch.pl --strict found what the series cannot justify: "
                        + "; ".join(unexplained))
    return list(justified.values())


def _fill_cover(cover: Path, base: basetree.BaseTree, variant: str, justified: list[Justified],
                patches: list[feature.Patch], reroll: int, changes: list[str] | None) -> None:
    template = "cover.fixup.j2" if base.has_dups else "cover.j2"
    subject, _, blurb = render(template, tree=base, variant=variant, justified=justified,
                               tree_description=describe(base), patches=patches,
                               defects={d.slug: d for d in fixups.DEFECTS}, original=fixups.ORIGINAL, reroll=reroll,
                               changes=changes).partition("\n\n")
    text = cover.read_text()
    text = text.replace("*** SUBJECT HERE ***", subject.strip())
    text = text.replace("*** BLURB HERE ***", reflow(blurb))
    cover.write_text(text)
