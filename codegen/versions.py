"""Versions of a series: what vN changes since v(N-1), for the cover letter.

Each series folder keeps a small record of its version and of each patch
(subject, and digests of its message and of its files), so that the next
version compares with what was really sent, not with what is remembered.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from kmod_dups.codegen.feature import Patch
from kmod_dups.errors import UserError

RECORD = ".kmod-dups-series.json"


@dataclass(frozen=True)
class SentPatch:
    slug: str
    subject: str
    message: str  # digest
    code: str  # digest


@dataclass(frozen=True)
class Version:
    number: int
    patches: tuple[SentPatch, ...]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def summarize(patch: Patch) -> SentPatch:
    code = "".join(f"{rel}\0{text}\0" for rel, text in sorted(patch.files.items()))
    return SentPatch(patch.slug, patch.subject, _digest(patch.message + "\0".join(patch.trailers)), _digest(code))


def write_record(folder: Path, number: int, patches: list[Patch]) -> None:
    record = {"version": number, "patches": [summarize(p).__dict__ for p in patches]}
    (folder / RECORD).write_text(json.dumps(record, indent=1) + "\n")


def read_previous(previous: Path | None, number: int) -> Version | None:
    """The v(number-1) series in *previous*, checked against *number*."""
    if number < 1:
        raise UserError(f"-v {number}: a series version is 1 or more")
    if previous is None:
        if number > 1:
            raise UserError(f"-v {number} needs --previous DIR, the v{number - 1} series folder, so that the "
                            "cover letter can say what changed")
        return None
    if number == 1:
        raise UserError("--previous is for a later version: pass -v 2 or more")
    record = Path(previous) / RECORD
    try:
        data = json.loads(record.read_text())
        earlier = Version(int(data["version"]), tuple(SentPatch(**p) for p in data["patches"]))
    except FileNotFoundError:
        raise UserError(f"--previous {previous}: not a series this tool wrote (no {RECORD})") from None
    except OSError as err:
        raise UserError(f"--previous {previous}: cannot read {RECORD}: {err.strerror}") from None
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"--previous {previous}: unreadable {RECORD} ({err})") from None
    if earlier.number != number - 1:
        raise UserError(f"--previous {previous} is v{earlier.number}, not v{number - 1}")
    return earlier


def changes(earlier: Version, patches: list[Patch]) -> list[str]:
    """One line per patch that is new, dropped or changed since *earlier*."""
    before = {p.slug: p for p in earlier.patches}
    now = [summarize(p) for p in patches]
    lines = []
    for patch in now:
        old = before.get(patch.slug)
        if old is None:
            lines.append(f"new: {patch.subject}")
            continue
        what = [w for w, changed in (("subject", old.subject != patch.subject),
                                     ("code", old.code != patch.code),
                                     ("commit message", old.message != patch.message)) if changed]
        if what:
            lines.append(f"{patch.subject}: {' and '.join(what)} changed")
    kept = {p.slug for p in now}
    lines += [f"dropped: {p.subject}" for p in earlier.patches if p.slug not in kept]
    return lines or [f"no change to the patches since v{earlier.number}; resent"]
