"""Named base trees (codegen/bases.py) and the rig on a tree's own dups.c:
Debian's 6.12 and 7.2 carry upstream's dups.c, and each of its defects
shows as the check its scenario is built to break."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kmod_dups import cli, rig
from kmod_dups.codegen import bases
from kmod_dups.errors import UserError

needs_toolchain = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("make") is None,
    reason="gcc and make are needed to build the rig",
)


def test_unknown_base_is_one_line() -> None:
    with pytest.raises(UserError, match=r"unknown base '9.9': choose one of 6.1, 6.12, 7.2"):
        bases.lookup("9.9")


def test_cli_refuses_an_unknown_base(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["series", "--base", "9.9", "-o", "/tmp/never-written"])
    assert exc.value.code == 2
    assert "invalid choice: '9.9'" in capsys.readouterr().err
    assert not Path("/tmp/never-written").exists()


def test_base_and_tree_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["rig", "--base", "7.2", "--tree", "/usr/src", "-q"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_mirror_comes_from_the_machines_sources(tmp_path: Path) -> None:
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "other.sources").write_text("Types: deb\nURIs: https://deb.nodesource.com/node_20.x\n")
    (parts / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n")
    assert bases.machine_mirror((tmp_path / "absent.list", parts)) == "http://mirror.example/debian"
    listing = tmp_path / "sources.list"
    listing.write_text("deb [arch=amd64] http://old.example/debian bullseye main\n")
    assert bases.machine_mirror((listing,)) == "http://old.example/debian"
    with pytest.raises(UserError, match="cannot find a Debian archive"):
        bases.machine_mirror((tmp_path / "absent.list",))


def test_the_sources_list_is_the_projects_own() -> None:
    """Unstable only ever appears in the project's own list, with the
    archive key; security suites on the mirror's debian-security."""
    text = bases.sources_list(bases.lookup("6.12"), "http://m.example/debian")
    assert text.splitlines() == [
        f"deb [signed-by={bases.KEYRING}] http://m.example/debian trixie main",
        f"deb [signed-by={bases.KEYRING}] http://m.example/debian-security trixie-security main",
    ]
    assert "unstable" in bases.sources_list(bases.lookup("7.2"), "http://m.example/debian")


def test_a_base_that_cannot_be_fetched_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is needed")
    monkeypatch.setenv("KMOD_DUPS_CACHE", str(tmp_path))
    monkeypatch.setattr(bases, "machine_mirror", lambda: "http://127.0.0.1:9/debian")
    with pytest.raises(UserError) as exc:
        bases.fetch_tarball(bases.lookup("7.2"))
    message = str(exc.value)
    assert message.startswith("cannot fetch linux-source-7.2") and "\n" not in message, message


def test_a_tree_of_unknown_layout_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 9\nSUBLEVEL = 0\n")
    (tmp_path / "kernel/module").mkdir(parents=True)
    (tmp_path / "kernel/module/dups.c").write_text("/* dups.c */\n")
    (tmp_path / "kernel/module/kmod.c").write_text("/* someone else's kmod.c */\n")
    with pytest.raises(UserError, match="not the kmod.c the rig knows"):
        rig.build(rig.BuildConfig(tree=tmp_path, sanitizer="none"))
    (tmp_path / "kernel/module/dups.c").unlink()
    with pytest.raises(UserError, match=r"\(Linux 7.9.0\) has no kernel/module/dups.c"):
        rig.build(rig.BuildConfig(tree=tmp_path, sanitizer="none"))


# --- upstream's own dups.c in the rig ----------------------------------------

# scenario -> the checks that fail on upstream's dups.c and kmod.c (6.12 and 7.2):
# the 60 s linger (reload), a first request's own -ENOMEM and -ERESTARTSYS
# handed to its waiters (nomem, kill), a nowait request announcing another's
# result (early), two spellings two entries (spelling), a warning per
# duplicate (flood) and a module whose softdep asks for it waiting on itself
# (hang). Duplicates waiting for a modprobe slot: the slots test below.
UPSTREAM_DEFECTS = {
    "reload": {"reload"},
    "nomem": {"nomem"},
    "kill": {"kill"},
    "nowait": {"early"},
    "spellings": {"spelling"},
    "flood": {"flood"},
    "recursive": {"hang"},
}


@pytest.fixture(scope="module", params=["6.12", "7.2"])
def upstream(request: pytest.FixtureRequest) -> rig.Build:
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is needed to fetch Debian's trees")
    tree = bases.rig_tree(request.param)
    return rig.build(rig.BuildConfig(tree=tree, sanitizer="address"))


def _run(built: rig.Build, tmp_path: Path, scenario: str, serial: bool = False) -> rig.RigResult:
    request = rig.RunRequest(scenario=scenario, serial=serial, extra_args=("--hang-timeout=5",),
                             timeout_s=150, progress_s=0)
    return rig.run(built, request, log_root=tmp_path)


@needs_toolchain
def test_upstream_passes_what_it_fixed(upstream: rig.Build, tmp_path: Path) -> None:
    """Refcounted entries: no use after free, every duplicate the first
    request's result."""
    assert upstream.config.dups_api == 1
    for scenario in ("uaf", "dups"):
        result = _run(upstream, tmp_path, scenario)
        assert result.passed, "\n".join(rig.summarize(result))


@needs_toolchain
@pytest.mark.parametrize("scenario", list(UPSTREAM_DEFECTS))
def test_upstream_defect_shows(upstream: rig.Build, tmp_path: Path, scenario: str) -> None:
    """Serially, from seed 1, so each shows every time (the kill scenario's
    killer needs real concurrency: its defect showed 1,544 and 2,427 times
    in 20,000 requests on 7.2 and 6.12)."""
    result = _run(upstream, tmp_path, scenario, serial=scenario != "kill")
    for check in UPSTREAM_DEFECTS[scenario]:
        verdict = rig.judge(result, check)
        assert verdict.ok, verdict.message + "\n" + "\n".join(rig.summarize(result))


@needs_toolchain
def test_upstream_duplicates_hold_modprobe_slots(upstream: rig.Build, tmp_path: Path) -> None:
    """Serially, in virtual time: 50 modprobes hold every slot, then a first
    request and 100 duplicates. Upstream looks for a duplicate only after
    down_timeout() took a slot, so every one of them waits for a slot and
    none is recognised as a duplicate; today's hardened code looks first."""
    result = _run(upstream, tmp_path, "slots", serial=True)
    st = result.stats
    assert st["slot_waits"] >= 101 and st["dup_wait"] == 0, st
    hardened = _run(rig.build(rig.BuildConfig(sanitizer="address")), tmp_path, "slots", serial=True)
    assert hardened.passed, "\n".join(rig.summarize(hardened))
    assert hardened.stats["dup_wait"] >= 99 and hardened.stats["slot_waits"] < 20, hardened.stats
