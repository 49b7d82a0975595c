"""Host paths the guest cannot see are refused before a guest boots."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmod_dups.guest import session as guest_run
from kmod_dups.errors import UserError
from kmod_dups.qemu import visibility


@pytest.mark.parametrize("path,folder", [
    ("/var/tmp/venv/bin/python3", "/var/tmp"),
    ("/var/cache/kmod-dups/builds/x", "/var/cache"),
    ("/var/log", "/var/log"),
    ("/var/lib/apt/lists", "/var/lib/apt"),
    ("/run/user/0/x", "/run"),
    ("/root/.cache/kmod-dups", None),
    ("/var/lib/dpkg", None),
    ("/tmp/kd", None),  # an overlay of the host's /tmp: its content is there
    ("/var/tmpfoo", None),
])
def test_hidden_by(path, folder):
    assert visibility.hidden_by(Path(path)) == folder


def test_a_symlink_into_a_hidden_folder_is_hidden(tmp_path):
    link = tmp_path / "link"
    link.symlink_to("/var/tmp")
    assert visibility.hidden_by(link / "x") == "/var/tmp"


def test_run_script_refuses_a_run_folder_the_guest_cannot_see(tmp_path):
    with pytest.raises(UserError) as err:
        guest_run.run_script(tmp_path, 2, "true\n", Path("/var/tmp/kmod-dups-runs"), name="x")
    message = str(err.value)
    assert "the run folder /var/tmp/kmod-dups-runs" in message and "tmpfs over /var/tmp" in message
    assert "\n" not in message
    assert not Path("/var/tmp/kmod-dups-runs").exists()
