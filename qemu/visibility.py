"""Which host paths a guest cannot see.

The guest's root is the host's own, but virtme-ng's init (1.42, both the
shell and the Rust one) mounts fresh, empty file systems over some folders
before it runs the command: what the host keeps there is not there in the
guest.  A venv, a project, a build or a run folder under one of them makes
the guest fail half-way ("python3: not found"), so every host path a guest
will use is checked before it boots.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from kmod_dups.errors import UserError

# Folder -> what the guest has there instead (virtme/guest/virtme-init).
HIDDEN: dict[str, str] = {
    "/var/log": "a fresh tmpfs",
    "/var/tmp": "a fresh tmpfs",
    "/var/cache": "a fresh tmpfs",
    "/var/lib/apt": "a fresh tmpfs",
    "/var/lib/portables": "a fresh tmpfs",
    "/var/lib/machines": "a fresh tmpfs",
    "/var/lib/private": "a fresh tmpfs",
    "/var/lib/sudo": "a fresh tmpfs",
    "/var/lib/snapd/cookie": "a fresh tmpfs",
    "/var/spool/rsyslog": "a fresh tmpfs",
    "/run": "the guest's own /run",
    "/dev": "the guest's own devtmpfs",
    "/proc": "the guest's own procfs",
    "/sys": "the guest's own sysfs",
}


def hidden_by(path: Path) -> str | None:
    """The folder the guest mounts over *path* (None when the guest sees it)."""
    resolved = Path(path).expanduser().resolve()
    for folder in sorted(HIDDEN, key=len, reverse=True):
        if resolved == Path(folder) or Path(folder) in resolved.parents:
            return folder
    return None


def check_visible(paths: Mapping[str, Path]) -> None:
    """One line for the first host path (by what it is) the guest would not see."""
    for what, path in paths.items():
        folder = hidden_by(path)
        if folder is not None:
            raise UserError(f"the guest cannot see {what} {path}: it has {HIDDEN[folder]} over {folder}; "
                            "put it elsewhere (for example under /root or /srv)")
