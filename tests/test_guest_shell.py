"""The guest's shell files (kmod_dups/guest/*.sh): shellcheck-clean, and
their functions run here on the host against stand-ins (a dmesg, a modprobe
log, a tracer, kmod.sh), so what they print is what the parsers read."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kmod_dups import debugstorm, guest, kmod_selftest, run, semantics
from kmod_dups.dupstrace import ModuleCounts, Session
from kmod_dups.guest import storm as guest_storm
from kmod_dups.guest.storm import GuestPaths

PATHS = GuestPaths("/r", "6.1.192+")


def shellcheck(path: Path | str) -> subprocess.CompletedProcess[str]:
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed (./setup-debian installs it)")
    return subprocess.run(["shellcheck", "-s", "sh", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize("name", guest.LIBRARIES)
def test_each_library_is_shellcheck_clean(name):
    proc = shellcheck(guest.path(name))
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("job", ["run", "stress", "semantics", "selftest"])
def test_each_rendered_script_is_shellcheck_clean(job, tmp_path):
    text = {
        "run": lambda: run.guest_script(PATHS, run.TARGETS),
        "stress": lambda: debugstorm.render(PATHS, debugstorm.Context(cpus=8, variant="hardened"),
                                            list(debugstorm.SCENARIOS)),
        "semantics": lambda: semantics.render(PATHS),
        "selftest": lambda: kmod_selftest.render(PATHS, "/src/kmod.sh", [("0001", 1)], env={"DEFAULT_NUM_TESTS": "3"}),
    }[job]()
    script = tmp_path / f"{job}.sh"
    script.write_text(text)
    proc = shellcheck(script)
    assert proc.returncode == 0, proc.stdout


def test_variables_are_quoted_and_checked():
    assert guest.assignments({"KDS_X": "a b'c"}) == "KDS_X='a b'\"'\"'c'\n"
    with pytest.raises(ValueError):
        guest.assignments({"x; rm -rf /": 1})


class Sandbox:
    """lib.sh (and more) sourced by sh in a temporary folder, with stand-in
    commands first on PATH."""

    def __init__(self, tmp: Path, libraries: tuple[str, ...] = ("lib",), **variables: object):
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.bin.mkdir()
        work = tmp / "work"
        (work / "modprobe.d").mkdir(parents=True)
        paths = GuestPaths(str(tmp / "root"), "6.1.192+", work=str(work))
        base = guest_storm.variables(paths)
        base["KDS_DIR"] = str(tmp / "debugfs")
        self.log = Path(paths.log)
        self.conf = Path(paths.config)
        self.text = guest.script({**base, **variables}, libraries)

    def tool(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)

    def sh(self, commands: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        script = self.tmp / "t.sh"
        script.write_text(self.text + f'\nPATH="{self.bin}:$PATH"\n' + commands + "\n")
        return subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=timeout)


def test_lib_small_helpers(tmp_path):
    box = Sandbox(tmp_path)
    (tmp_path / "three").write_text("a\nb\nc\n")
    out = box.sh(f"""kds_lines {tmp_path}/three; kds_lines {tmp_path}/none
kds_threads 5 2; kds_threads 0 100000; kds_threads 0 1
kds_state kmod_dups_no_such_module
kds_options m "init_delay_ms=5 x=1"; cat "$KDS_CONF/kmod-dups.conf"; kds_options m ""
[ -e "$KDS_CONF/kmod-dups.conf" ] || echo gone""").stdout.split("\n")
    assert out[:8] == ["3", "0", "5", "100000", "0", "absent", "options m init_delay_ms=5 x=1", "gone"]


def test_lib_kds_die_is_a_fatal_line_the_parser_reads(tmp_path):
    proc = Sandbox(tmp_path).sh('kds_die "reason=tracer"; echo not reached')
    assert proc.returncode == 1 and "not reached" not in proc.stdout
    assert guest_storm.parse_output(proc.stdout).fatal == {"reason": "tracer"}


DMESG = """[    1.0] early line
[    2.0] kmod-dups mark s1
[    2.1] module-autoload: duplicate request for module kmod_dups_target
[    2.2] module-autoload: duplicate request for module kmod_dups_target
[    2.3] module-autoload: duplicate request for module other
[    2.4] WARNING: CPU: 1 PID: 9 at kernel/module/dups.c:162 kmod_dup_request_exists_wait+0xb6/0x210
[    2.5] module-autoload: duplicate request for module kmod_dups_target
"""


def test_lib_kds_kernel_counts_since_the_mark(tmp_path):
    box = Sandbox(tmp_path)
    (tmp_path / "dmesg.txt").write_text(DMESG)
    box.tool("dmesg", f"cat {tmp_path}/dmesg.txt\n")
    box.log.write_text("1.0 5 -q -- kmod_dups_target\n2.0 6 -q -- kmod_dups_target\n"
                       "2.1 7 -q -- other\n2.2 8 -q -- kmod_dups_target\n")
    out = box.sh('kds_kernel s1 kmod_dups_target 1; kds_kernel s9 kmod_dups_target 0').stdout
    parsed = guest_storm.parse_output(out)
    assert parsed.kernel["s1"] == {"launches": "2", "dups": "3", "warns": "1", "marked": "1",
                                   "bursts": "0", "warned": "3"}
    # A mark that is not in the log: nothing counted, and it says so.
    assert parsed.kernel["s9"]["marked"] == "0" and parsed.kernel["s9"]["dups"] == "0"


# The hardened dups.c: the first duplicate of a burst warns, the first
# request reports the count when it returns.
DMESG_BURSTS = """[    2.0] kmod-dups mark s1
[    2.1] module: duplicate request for module kmod_dups_target
[    2.2] module: duplicate request for module other
[    2.3] module: duplicate requests for module kmod_dups_target: 7, served by its first request (0)
[    2.4] module: duplicate requests for module other: 2, served by its first request (256)
[    2.5] module: duplicate request for module kmod_dups_target
[    2.6] module: duplicate requests for module kmod_dups_target: 1, served by its first request (0)
"""


def test_lib_kds_kernel_adds_up_the_burst_reports(tmp_path):
    box = Sandbox(tmp_path)
    (tmp_path / "dmesg.txt").write_text(DMESG_BURSTS)
    box.tool("dmesg", f"cat {tmp_path}/dmesg.txt\n")
    box.log.write_text("1.0 5 -q -- kmod_dups_target\n")
    out = box.sh("kds_kernel s1 kmod_dups_target 0").stdout
    parsed = guest_storm.parse_output(out)
    assert parsed.kernel["s1"] == {"launches": "1", "dups": "8", "warns": "0", "marked": "1",
                                   "bursts": "2", "warned": "2"}


TRACER = """trap 'cat "$0.json"; exit 0' TERM
echo "Tracing module requests... Ctrl-C to end." >&2
while :; do sleep 0.05; done
"""


def test_trace_start_and_stop_bring_the_tracer_json_back(tmp_path):
    box = Sandbox(tmp_path, ("lib", "trace"), KDS_PYTHON=str(tmp_path / "bin/python3"), KDS_TRACE_TICKS=100)
    session = Session(kernel="6.1.192+", seconds=1.0, modules=[ModuleCounts("m", requests=2)],
                      vmalloc_start_kb=None, vmalloc_peak_kb=None, dups_traced=True)
    box.tool("python3", TRACER)
    (tmp_path / "bin/python3.json").write_text(session.to_json() + "\n")
    proc = box.sh("kds_trace_start; kds_trace_stop")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "KDS tracer ready=" in proc.stdout and "KDS tracer rc=0" in proc.stdout
    assert run.parse_trace(proc.stdout) == session


def test_trace_start_stops_the_script_when_the_tracer_dies(tmp_path):
    box = Sandbox(tmp_path, ("lib", "trace"), KDS_PYTHON=str(tmp_path / "bin/python3"), KDS_TRACE_TICKS=100)
    box.tool("python3", 'echo "cannot attach kprobe call_usermodehelper_exec" >&2; exit 1\n')
    proc = box.sh("kds_trace_start; echo not reached")
    assert proc.returncode == 1 and "not reached" not in proc.stdout
    assert "KDS tracer-error cannot attach kprobe" in proc.stdout
    assert guest_storm.parse_output(proc.stdout).fatal == {"reason": "tracer"}


def test_stress_until_dups_and_launches(tmp_path):
    box = Sandbox(tmp_path, ("lib", "stress"), KDX_TARGET="kmod_dups_target", KDX_HOG_PRIO=50,
                  KDX_SOFTIRQ_PRIO=60, KDX_FAILSLAB=str(tmp_path / "failslab"))
    (tmp_path / "dmesg.txt").write_text(DMESG)
    box.tool("dmesg", f"cat {tmp_path}/dmesg.txt\n")
    box.log.write_text("1.0 5 -q -- kmod_dups_target\n2.0 6 -q -- kmod_dups_target\n")
    flag = tmp_path / "flag"
    out = box.sh(f"""kdx_dups s1 kmod_dups_target
kdx_launches kmod_dups_target 0; kdx_launches kmod_dups_target 1
(sleep 0.3; touch {flag}) &
kdx_until '[ -e {flag} ]' && echo held
kdx_failslab""").stdout.split("\n")
    assert out[:4] == ["3", "2", "1", "held"]
    assert "KDS fatal reason=no-failslab" in out


def test_selftest_runs_kmod_sh_and_reports_it(tmp_path):
    kmod_sh = tmp_path / "kmod.sh"
    kmod_sh.write_text('echo "Running test: kmod_test_0001 - run #0"\necho "kmod_test_0001: OK! - loading"\nexit 0\n')
    box = Sandbox(tmp_path, ("lib", "selftest"), KDS_KMOD_SH=str(kmod_sh))
    (tmp_path / "dmesg.txt").write_text("[    2.0] kmod-dups mark 0001\n")
    box.tool("dmesg", f"cat {tmp_path}/dmesg.txt\n")
    box.log.write_text("")
    (result,) = kmod_selftest.parse(box.sh("kds_selftest 0001 1").stdout)
    assert result.status == "pass" and result.runs == 1 and result.dups == 0
