"""dupstrace without a kernel: probe selection, the BPF text, argument
checks and the 80-column table.  The guest tests run it for real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmod_dups import dupstrace
from kmod_dups.dupstrace import ModuleCounts, Probes, Session


def test_probes_pick_what_the_kernel_has() -> None:
    probes = dupstrace.probe_kernel({"call_usermodehelper_exec", "kernel_read_file", "find_module_all"})
    assert probes == Probes(dups=False, read_file="kernel_read_file", find_module="find_module_all")
    assert any("CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS" in note for note in probes.untraced())
    full = dupstrace.probe_kernel({"kmod_dup_request_exists_wait", "kernel_read_file_from_fd",
                                   "kernel_read_file", "find_module_all"})
    assert full.read_file == "kernel_read_file_from_fd" and full.dups and not full.untraced()


def test_program_switches_follow_the_probes() -> None:
    none = dupstrace.program(Probes(dups=False, read_file=None, find_module=None))
    assert "#define HAVE_" not in none and "#define FILTER_NAME" not in none
    text = dupstrace.program(Probes(dups=True, read_file="kernel_read_file", find_module=None), "snd")
    assert "#define HAVE_DUPS 1" in text and "#define HAVE_READ_FILE 1" in text
    assert '#define FILTER_NAME "snd"' in text and "#define NAME_LEN 56" in text
    assert "HAVE_FIND_MODULE 1" not in text


@pytest.mark.parametrize("argv", [["-d", "0"], ["0"], ["1", "0"], ["-m", "x" * 60]])
def test_bad_arguments(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        dupstrace.parse_args(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_ebpf_prints_the_program(capsys) -> None:
    assert dupstrace.main(["--ebpf"]) == 0
    assert "TRACEPOINT_PROBE(module, module_request)" in capsys.readouterr().out


def _session(dups_traced: bool) -> Session:
    return Session(
        kernel="6.1.192", seconds=3.2, dups_traced=dups_traced,
        modules=[ModuleCounts("kmod_dups_target", requests=448, dups=447, launches=1, finit=1, loads=1,
                              read_bytes=600_000),
                 ModuleCounts("a_module_with_a_really_long_name_indeed_ok", requests=3, launches=3,
                              finit=3, finit_failed=2, loads=1, wasted_bytes=1_300_000)],
        vmalloc_start_kb=9000, vmalloc_peak_kb=12000,
        untraced=[] if dups_traced else ["DUPS: kmod_dup_request_exists_wait() is not in this kernel"])


@pytest.mark.parametrize("dups_traced", [True, False])
def test_table_fits_80_columns(dups_traced: bool) -> None:
    text = dupstrace.table(_session(dups_traced))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["MODULE", "REQ", "DUPS" if dups_traced else "DUPS*"]
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].split()[:7] == ["kmod_dups_target", "448", "447" if dups_traced else "-", "1", "1", "0", "1"]
    assert "1.2M" in lines[2]
    assert "peak 12000 kB (+3000 kB)" in text


def test_json_round_trip() -> None:
    data = json.loads(_session(True).to_json())
    assert data["modules"][0]["requests"] == 448 and data["vmalloc_peak_kb"] == 12000


def test_vmalloc_sampler_starts_and_stops() -> None:
    sampler = dupstrace.VmallocSampler(period=0.001)
    sampler.start()
    sampler.stop()
    assert not sampler.is_alive()
    if dupstrace.VmallocSampler.read_kb() is not None:
        assert sampler.peak_kb is not None and sampler.peak_kb >= sampler.start_kb


def test_kernel_headers_never_trust_what_another_user_planted(tmp_path, monkeypatch) -> None:
    """The old code unpacked into /tmp/dupstrace-kheaders-RELEASE and trusted
    an .unpacked marker there: planted headers were compiled in as root, and
    a planted symlink was followed by the root-run tar."""
    import os
    import stat
    import subprocess

    from kmod_dups import dupstrace

    archive_src = tmp_path / "src"
    (archive_src / "include/linux").mkdir(parents=True)
    (archive_src / "include/linux/kernel.h").write_text("/* the kernel's own */\n")
    archive = tmp_path / "kheaders.tar.xz"
    subprocess.run(["tar", "-cJf", str(archive), "-C", str(archive_src), "include"], check=True)
    shared_tmp = tmp_path / "tmp"
    shared_tmp.mkdir()
    release = os.uname().release
    planted = shared_tmp / f"dupstrace-kheaders-{release}"
    (planted / "include/linux").mkdir(parents=True)
    (planted / "include/linux/kernel.h").write_text("#error planted\n")
    (planted / ".unpacked").write_text("")
    victim = tmp_path / "victim"
    victim.mkdir()
    (shared_tmp / f"dupstrace-kheaders-{release}-x").symlink_to(victim)
    monkeypatch.setattr(dupstrace, "KHEADERS", str(archive))
    monkeypatch.setenv("TMPDIR", str(shared_tmp))
    monkeypatch.delenv("BCC_KERNEL_SOURCE", raising=False)
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    with dupstrace.kernel_headers() as headers:
        assert headers is not None and Path(headers) != planted
        mode = os.stat(headers)
        assert stat.S_IMODE(mode.st_mode) == 0o700 and mode.st_uid == os.geteuid()
        assert (Path(headers) / "include/linux/kernel.h").read_text() == "/* the kernel's own */\n"
    assert not Path(headers).exists()
    assert list(victim.iterdir()) == []
    assert (planted / "include/linux/kernel.h").read_text() == "#error planted\n"


def test_the_file_runs_alone_from_a_copy_outside_the_project(tmp_path) -> None:
    import shutil
    import subprocess

    from kmod_dups import dupstrace

    copy = tmp_path / "dupstrace.py"
    shutil.copy2(dupstrace.__file__, copy)
    proc = subprocess.run(["./dupstrace.py", "-h"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "./dupstrace.py --ebpf" in proc.stdout


class _FakeBPF:
    """Stands in for bcc.BPF: every attach works but the kretprobe on dups.c."""

    attached: list[tuple[str, str]] = []

    def __init__(self, text: str) -> None:
        self.text = text

    @staticmethod
    def tracepoint_exists(category: str, event: str) -> bool:
        return True

    def attach_kprobe(self, event: str, fn_name: str) -> None:
        self.attached.append(("kprobe", event))

    def attach_kretprobe(self, event: str, fn_name: str) -> None:
        if event == "kmod_dup_request_exists_wait":
            raise Exception("Failed to attach BPF program trace_dups_return to kretprobe")
        self.attached.append(("kretprobe", event))


def test_an_optional_probe_that_fails_is_named_and_the_rest_attach(monkeypatch) -> None:
    import sys
    import types

    from kmod_dups import dupstrace

    monkeypatch.setitem(sys.modules, "bcc", types.SimpleNamespace(BPF=_FakeBPF))
    monkeypatch.setattr(dupstrace, "TRACEFS_EVENTS", ("/",))
    monkeypatch.setattr(dupstrace, "KHEADERS", "/nonexistent")
    _FakeBPF.attached = []
    probes = dupstrace.Probes(dups=True, read_file=dupstrace.READ_FILE_FUNCS[0],
                              find_module=dupstrace.FIND_MODULE_FUNCS[0])
    _, failed = dupstrace.attach(probes, "text")
    assert len(failed) == 1 and failed[0].startswith("DUPS: cannot attach the kretprobe")
    assert ("kretprobe", dupstrace.READ_FILE_FUNCS[0]) in _FakeBPF.attached
    assert ("kprobe", dupstrace.UMH_EXEC) in _FakeBPF.attached


def test_tracefs_not_mounted_is_said_as_such(monkeypatch) -> None:
    import sys
    import types

    from kmod_dups import dupstrace

    monkeypatch.setitem(sys.modules, "bcc", types.SimpleNamespace(BPF=_FakeBPF))
    monkeypatch.setattr(dupstrace, "TRACEFS_EVENTS", ("/nonexistent/events",))
    with pytest.raises(SystemExit, match="tracefs is not mounted"):
        dupstrace.attach(dupstrace.Probes(dups=False, read_file=None, find_module=None), "text")
