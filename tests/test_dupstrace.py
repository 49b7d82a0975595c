"""dupstrace without a kernel: probe selection, the BPF text, argument
checks and the 80-column table.  The guest tests run it for real."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kmod_dups import dupstrace
from kmod_dups.dupstrace import ModuleCounts, Probes, Session


def test_probes_pick_what_the_kernel_has() -> None:
    probes = dupstrace.probe_kernel({"call_usermodehelper_exec", "kernel_read_file", "find_module_all"})
    assert probes == Probes(dups=False, read_file="kernel_read_file", find_module="find_module_all")
    notes = " ".join(probes.untraced())
    assert "kmod_dup_request_exists_wait()" in notes and "dups.c" not in notes
    assert "module_alloc, execmem_alloc" in notes and "__request_module()" in notes
    full = dupstrace.probe_kernel({"kmod_dup_request_exists_wait", "kernel_read_file_from_fd",
                                   "kernel_read_file", "find_module_all", "module_alloc", "__request_module"})
    assert full.read_file == "kernel_read_file" and full.dups and not full.untraced()
    assert full.layout == ("module_alloc", 1) and full.request_entry
    # 6.10+: module memory comes from execmem_alloc(type, size)
    assert dupstrace.probe_kernel({"execmem_alloc"}).layout == ("execmem_alloc", 2)


def test_program_switches_follow_the_probes() -> None:
    none = dupstrace.program(Probes(dups=False, read_file=None, find_module=None))
    assert "#define HAVE_" not in none and "#define FILTER_NAME" not in none
    assert "#define TIMELINE" not in none
    text = dupstrace.program(Probes(dups=True, read_file="kernel_read_file", find_module=None,
                                    layout=("execmem_alloc", 2), request_entry=True), "snd", timeline=True)
    assert "#define HAVE_DUPS 1" in text and "#define HAVE_READ_FILE 1" in text
    assert "#define HAVE_LAYOUT 2" in text and "#define HAVE_REQUEST_ENTRY 1" in text
    assert "#define FILTER_NAME(n) ((((*(const u64 *)((n) + 0) & 0xffffffffULL) ^ 0x646e73ULL)) == 0)" in text and "#define NAME_LEN 56" in text
    assert "#define TIMELINE 1" in text and "HAVE_FIND_MODULE 1" not in text


def test_the_program_reads_no_randomized_struct() -> None:
    """struct subprocess_info is __randomize_layout: its argv is read from
    call_usermodehelper_setup()'s arguments instead."""
    text = dupstrace.BPF_PROGRAM
    assert "struct subprocess_info *" not in text and "info->argv" not in text
    assert "int trace_umh_setup(struct pt_regs *ctx, const char *path, char **argv)" in text


def test_module_reads_are_told_apart_by_their_id() -> None:
    assert "f->reading = id == READING_MODULE;" in dupstrace.BPF_PROGRAM


@pytest.mark.parametrize("argv", [["-d", "0"], ["0"], ["1", "0"], ["-m", "x" * 60], ["--maxactive", "0"],
                                  ["--maxactive", "5000"]])
def test_bad_arguments(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        dupstrace.parse_args(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_ebpf_prints_the_program(capsys) -> None:
    assert dupstrace.main(["--ebpf"]) == 0
    assert "TRACEPOINT_PROBE(module, module_request)" in capsys.readouterr().out


@pytest.mark.parametrize("fmt,arg,text,name", [
    ("%s", 0, "xfs", "xfs"),
    ("fs-%s", 0, "xfs", "fs-xfs"),
    ("net-pf-%d", 10, "", "net-pf-10"),
    ("net-pf-%d-proto-%d", 16, "", "net-pf-16-proto-%d"),
    ("char-major-%d-%d", 0xFFFFFFFF, "", "char-major--1-%d"),
    ("crypto-%s-all", 0, "sha256", "crypto-sha256-all"),
    ("100%%-%s", 0, "x", "100%-x"),
])
def test_names_of_requests_that_never_reached_the_tracepoint(fmt, arg, text, name) -> None:
    assert dupstrace.format_request(fmt, arg, text) == name


def _session(dups_traced: bool) -> Session:
    return Session(
        kernel="6.1.192", seconds=3.2, dups_traced=dups_traced,
        modules=[ModuleCounts("kmod_dups_target", requests=448, dups=447, launches=1, finit=1, live=1,
                              read_bytes=600_000),
                 ModuleCounts("a_module_with_a_really_long_name_indeed_ok", requests=3, launches=3,
                              finit=3, finit_failed=2, failed_dup=2, live=1, dup_held_bytes=1_300_000),
                 ModuleCounts("fs-xfs", requests=4, dups=3, launches=1, via_finit=3, via_live=3),
                 ModuleCounts("net-pf-10", requests=2, unslotted=2)],
        vmalloc_start_kb=9000, vmalloc_peak_kb=12000, inflight_peak_bytes=3_000_000,
        origins=[dupstrace.OriginCounts("kernel modprobe", 4, 2, 2)], errnos={"EEXIST": 2, "request ETIME": 2},
        missed={"the kretprobe on kmod_dup_request_exists_wait()": 5},
        untraced=[] if dups_traced else ["DUPS: this kernel has no kmod_dup_request_exists_wait() to probe"])


@pytest.mark.parametrize("dups_traced", [True, False])
def test_table_fits_80_columns(dups_traced: bool) -> None:
    text = dupstrace.table(_session(dups_traced))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["MODULE", "REQ", "DUPS" if dups_traced else "DUPS*"]
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].split()[:8] == ["kmod_dups_target", "448", "447" if dups_traced else "-", "1", "1", "0",
                                    "0", "1"]
    assert "1.2M" in lines[3]
    assert "fs-xfs 3 finit/3 live" in text and "net-pf-10 2" in text
    assert "kernel modprobe 4 (2 live)" in text and "EEXIST 2" in text
    assert "peak 12000 kB (+3000 kB, sampled)" in text and "in flight: peak 2.9M" in text
    assert "MISSED: 5 hits of the kretprobe on kmod_dup_request_exists_wait()" in text


def test_json_is_one_document_a_line_and_reads_back() -> None:
    text = _session(True).to_json()
    assert "\n" not in text
    data = json.loads(text)
    assert data["modules"][0]["requests"] == 448 and data["vmalloc_peak_kb"] == 12000
    assert ModuleCounts.from_dict({**data["modules"][0], "from_a_later_version": 1}).dups == 447


def test_interval_counts_subtract() -> None:
    now = ModuleCounts("m", requests=10, live=2)
    assert now.minus(ModuleCounts("m", requests=4, live=2)) == ModuleCounts("m", requests=6)
    assert now.minus(None) is now and ModuleCounts("m").is_zero()


def test_misses_are_read_from_the_kprobe_profile(tmp_path, monkeypatch) -> None:
    (tmp_path / "kprobe_profile").write_text(
        "  r_kmod_dup_request_exists_wait_bcc_42                      120               7\n"
        "  r_kernel_read_file_bcc_42                                   10               0\n"
        "  r_kmod_dup_request_exists_wait_bcc_43                        1               9\n")
    monkeypatch.setattr(dupstrace, "TRACEFS", (str(tmp_path / "nope"), str(tmp_path)))
    names = {"r_kmod_dup_request_exists_wait_bcc_42": "dups", "r_kernel_read_file_bcc_42": "read"}
    assert dupstrace.read_misses(names) == ({"dups": 7}, None)
    monkeypatch.setattr(dupstrace, "TRACEFS", (str(tmp_path / "nope"),))
    missed, why = dupstrace.read_misses(names)
    assert missed == {} and "misses of the kretprobes are unknown" in why


def test_timeline_lines() -> None:
    timeline = dupstrace.Timeline()
    assert timeline.line(5_000_000_000, 7, "request", "fs-xfs", 0, 1).endswith("request_module(fs-xfs)")
    assert "duplicate fs-xfs waited 12.5 ms" in timeline.line(5_001_000_000, 8, "dup", "fs-xfs", 0, 12_500_000)
    assert timeline.line(5_002_000_000, 9, "exit", "xfs", -17, 4096).endswith("= -EEXIST, held 4.0K")
    assert timeline.line(5_003_000_000, 9, "finit", "fs-xfs", 0, 0).endswith("by kernel modprobe for request fs-xfs")
    assert timeline.line(6_000_000_000, 9, "unslotted", "x", -62, 0).startswith("  1.000000")
    assert dupstrace.Timeline(4_000_000_000).line(5_000_000_000, 1, "launch", "m", 0, 0).startswith("  1.000000")


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

    def attach_kretprobe(self, event: str, fn_name: str, maxactive: int = 0) -> None:
        assert maxactive == dupstrace.MAXACTIVE
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
    _, failed, retprobes = dupstrace.attach(probes, "text")
    assert len(failed) == 1 and failed[0].startswith("DUPS: cannot attach the kretprobe")
    assert ("kretprobe", dupstrace.READ_FILE_FUNCS[0]) in _FakeBPF.attached
    assert {("kprobe", f) for f in (dupstrace.UMH_SETUP, dupstrace.UMH_EXEC, dupstrace.UMH_CHILD)} <= set(_FakeBPF.attached)
    assert list(retprobes) == [f"r_kernel_read_file_bcc_{os.getpid()}"]


def test_tracefs_not_mounted_is_said_as_such(monkeypatch) -> None:
    import sys
    import types

    from kmod_dups import dupstrace

    monkeypatch.setitem(sys.modules, "bcc", types.SimpleNamespace(BPF=_FakeBPF))
    monkeypatch.setattr(dupstrace, "TRACEFS_EVENTS", ("/nonexistent/events",))
    with pytest.raises(SystemExit, match="tracefs is not mounted"):
        dupstrace.attach(dupstrace.Probes(dups=False, read_file=None, find_module=None), "text")


def test_the_kernels_module_stats_are_read_as_deltas(tmp_path) -> None:
    """6.4+ kernels with CONFIG_MODULE_STATS count their own waste: read it
    beside the tool's figures.  The format is label, spaces, number."""
    stats = tmp_path / "stats"
    stats.write_text(" Mods ever loaded       66\n Mods failed on kread    0\n"
                     " Virtual mem wasted bytes       1000\n Duplicate failed modules:\n")
    before = dupstrace.read_module_stats(str(stats))
    assert before == {"Mods ever loaded": 66, "Mods failed on kread": 0, "Virtual mem wasted bytes": 1000}
    stats.write_text(" Mods ever loaded       70\n Mods failed on kread    0\n"
                     " Virtual mem wasted bytes       5096\n")
    delta = dupstrace.stats_delta(before, dupstrace.read_module_stats(str(stats)))
    assert delta == {"Mods ever loaded": 4, "Virtual mem wasted bytes": 4096}
    assert dupstrace.read_module_stats(str(tmp_path / "absent")) is None
    assert dupstrace.stats_delta(None, delta) == {}
    session = _session(True)
    session.kernel_stats = delta
    assert "kernel's modules/stats: Virtual mem wasted bytes +4096" in dupstrace.table(session)
