"""The project's kernel modules (kernel/storm, kernel/targets) and their glue.

Fast: the guest scripts are valid sh, the modprobe wrapper does what it
says, and the parsers read real output captured from guests
(tests/data/kmods/, made with the dups and the nodups kernels at 2 and 4
vCPUs; see README there).

Slow (a real kernel build folder): the modules compile against it without a
warning and are checkpatch --strict clean; the modules root works with the
real modprobe.  The build is KMOD_DUPS_BUILD when set, otherwise a
tinyconfig + MODULES + DEBUG_FS folder made from the cached base tree and
kept in ~/.cache/kmod-dups/test-objs/kmods (no state another run left in
/tmp is read).

Guest (KMOD_DUPS_BUILD set to a `kmod-dups build` folder): the semantic
tests and one kmod.sh test, booted through `kmod-dups boot` at 2 vCPUs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from kmod_dups import kmod_selftest, kmods, semantics
from kmod_dups.guest import storm as guest_storm
from kmod_dups.cache import cache_dir, locked
from kmod_dups.errors import UserError
from kmod_dups.guest.storm import GuestPaths, Storm

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "kmods"
C_FILES = ["storm/kmod_dups_storm.c", "targets/kmod_dups_target.c", "targets/kmod_dups_fail.c",
           "targets/kmod_dups_slow.h"]
MAKE_FILES = ["storm/Kbuild", "storm/Makefile", "targets/Kbuild", "targets/Makefile"]
# The options our own small build folder needs on top of tinyconfig.
OWN_OPTIONS = ["64BIT", "MODULES", "MODULE_UNLOAD", "DEBUG_FS", "DEBUG_FS_ALLOW_ALL"]
PATHS = GuestPaths(root="/root/.cache/kmod-dups/modroots/example", release="6.1.192+")


def data(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# ---------------------------------------------------------------- fixtures


def _own_build(base: Path) -> Path:
    """tinyconfig + OWN_OPTIONS, modules_prepare done; redone when the
    recipe changes (the stamp holds its hash)."""
    out = cache_dir() / "test-objs" / "kmods"
    recipe = hashlib.sha256(f"{base.resolve()}:{' '.join(OWN_OPTIONS)}".encode()).hexdigest()
    stamp = out / ".kmod-dups-stamp"
    with locked("test-objs-kmods"):
        if stamp.is_file() and stamp.read_text() == recipe:
            return out
        out.mkdir(parents=True, exist_ok=True)
        make = ["make", "-s", "-C", str(base), f"O={out}"]
        subprocess.run(make + ["tinyconfig"], check=True, capture_output=True)
        config = [str(base / "scripts/config"), "--file", str(out / ".config")]
        for option in OWN_OPTIONS:
            config += ["-e", option]
        subprocess.run(config, check=True)
        subprocess.run(make + ["olddefconfig"], check=True, capture_output=True)
        subprocess.run(make + [f"-j{os.cpu_count() or 1}", "modules_prepare"], check=True,
                       capture_output=True)
        values = kmods.read_config(out / ".config")
        missing = [o for o in OWN_OPTIONS if values.get(f"CONFIG_{o}") != "y"]
        assert not missing, f"olddefconfig dropped {missing}"
        stamp.write_text(recipe)
    return out


@pytest.fixture(scope="session")
def kbuild(base_tree: Path) -> Path:
    given = os.environ.get("KMOD_DUPS_BUILD")
    if given:
        return Path(given)
    return _own_build(base_tree)


@pytest.fixture(scope="session")
def built(kbuild: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return kmods.build_modules(kbuild, tmp_path_factory.mktemp("kmods") / "out")


def checkpatch(base: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(base / "scripts/checkpatch.pl"), "--strict", "--no-tree", "-f", str(path)],
                          capture_output=True, text=True)


# ---------------------------------------------------------------- slow: the modules


@pytest.mark.slow
@pytest.mark.parametrize("name", C_FILES + MAKE_FILES)
def test_checkpatch_strict_clean(base_tree: Path, name: str):
    proc = checkpatch(base_tree, REPO / "kernel" / name)
    assert proc.returncode == 0 and re.search(r"total: 0 errors, 0 warnings, 0 checks", proc.stdout), \
        proc.stdout


@pytest.mark.slow
def test_checkpatch_catches_a_style_problem(base_tree: Path, tmp_path: Path):
    """The check above can fail: a C file with a style problem is reported."""
    bad = tmp_path / "bad.c"
    src = (REPO / "kernel" / C_FILES[2]).read_text()
    bad.write_text(src.replace("\tint err;\n", "    int err;\n", 1))
    proc = checkpatch(base_tree, bad)
    assert proc.returncode != 0 and "no spaces at the start of a line" in proc.stdout


@pytest.mark.slow
def test_modules_build_without_warnings(kbuild: Path, built: dict[str, Path]):
    assert set(built) == {kmods.STORM, kmods.TARGET, kmods.FAIL, kmods.RECURSE}
    log = (next(iter(built.values())).parent / "build.log").read_text()
    compiler = [line for line in log.splitlines()
                if re.search(r"\.[ch]:\d+:\d+: (warning|error)", line)]
    assert not compiler, "\n".join(compiler)
    release = (kbuild / "include/config/kernel.release").read_text().strip()
    for name, ko in built.items():
        info = subprocess.run(["modinfo", "-F", "vermagic", str(ko)], capture_output=True, text=True,
                              check=True).stdout
        assert info.split()[0] == release, (name, info)
        lic = subprocess.run(["modinfo", "-F", "license", str(ko)], capture_output=True, text=True,
                             check=True).stdout.strip()
        assert lic == "GPL", (name, lic)


@pytest.mark.slow
def test_target_carries_its_ballast(built: dict[str, Path]):
    """The documented 512 KiB of .rodata, so duplicate loads waste measurable
    vmalloc space; the init_delay_ms parameter is there for modprobe."""
    for name in (kmods.TARGET, kmods.FAIL):
        with open(built[name], "rb") as f:
            rodata = ELFFile(f).get_section_by_name(".rodata")
            assert rodata is not None and rodata.data_size >= 512 * 1024, name
        parms = subprocess.run(["modinfo", "-F", "parm", str(built[name])], capture_output=True,
                               text=True, check=True).stdout
        assert parms.startswith("init_delay_ms:"), parms
    assert built[kmods.STORM].stat().st_size < 256 * 1024


@pytest.mark.slow
def test_build_error_names_the_first_compiler_error(kbuild: Path, tmp_path: Path):
    sources = tmp_path / "kernel"
    shutil.copytree(REPO / "kernel" / "storm", sources / "storm")
    shutil.copytree(REPO / "kernel" / "targets", sources / "targets")
    c = sources / "storm" / "kmod_dups_storm.c"
    c.write_text(c.read_text().replace("static int storm_run(void)\n{", "static int storm_run(void)\n{ oops", 1))
    dest = tmp_path / "out"
    with pytest.raises(UserError) as err:
        kmods.build_modules(kbuild, dest, sources=sources)
    assert "kmod_dups_storm.c:" in str(err.value) and "error:" in str(err.value)
    assert not dest.exists(), "a failed build left an output folder"
    assert not list(tmp_path.glob(".out.new-*")), "a failed build left its staging folder"


def test_open_build_rejects_what_cannot_build_modules(tmp_path: Path):
    with pytest.raises(UserError, match="no .config"):
        kmods.open_build(tmp_path)
    (tmp_path / ".config").write_text("CONFIG_MODULES=y\n")
    with pytest.raises(UserError, match="CONFIG_DEBUG_FS"):
        kmods.open_build(tmp_path)
    (tmp_path / ".config").write_text("CONFIG_MODULES=y\nCONFIG_DEBUG_FS=y\n")
    with pytest.raises(UserError, match="modules_prepare"):
        kmods.open_build(tmp_path)


@pytest.mark.slow
def test_modules_root_with_real_modprobe(kbuild: Path, built: dict[str, Path], tmp_path: Path):
    root = kmods.make_modules_root(kbuild, tmp_path / "root", built)
    for name in built:
        assert root.ko(name).is_file()
    assert (root.moddir / "modules.dep").is_file()
    conf = tmp_path / "modprobe.d"
    conf.mkdir()
    (conf / "t.conf").write_text(f"options {kmods.TARGET} init_delay_ms=42\n")
    show = subprocess.run(["modprobe", "-d", str(root.root), "-S", root.release, "-C", str(conf),
                           "--show-depends", kmods.TARGET], capture_output=True, text=True)
    assert show.returncode == 0, show.stderr
    assert show.stdout.strip() == f"insmod {root.ko(kmods.TARGET)} init_delay_ms=42"
    gone = subprocess.run(["modprobe", "-d", str(root.root), "-S", root.release, "--show-depends",
                           kmods.NONEXISTENT], capture_output=True, text=True)
    assert gone.returncode != 0
    if root.build_modules:  # the full build: test_kmod's modules and fs-xfs resolve
        for name in ("test_kmod", "test_module", "fs-xfs"):
            dep = subprocess.run(["modprobe", "-d", str(root.root), "-S", root.release,
                                  "--show-depends", name], capture_output=True, text=True)
            assert dep.returncode == 0, (name, dep.stderr)


@pytest.mark.slow
def test_prepare_makes_a_root_once(kbuild: Path):
    first = kmods.prepare(kbuild)
    mtime = (first.root / kmods.RECORD).stat().st_mtime_ns
    again = kmods.prepare(kbuild)
    assert again.root == first.root and (again.root / kmods.RECORD).stat().st_mtime_ns == mtime
    assert all(again.ko(name).is_file() for name in kmods.MODULES)


# ---------------------------------------------------------------- the wrapper


def test_modprobe_wrapper_passes_arguments_and_logs(tmp_path: Path):
    fake = tmp_path / "fake-modprobe"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "[%s]" "$a"; done\necho\n')
    fake.chmod(0o755)
    log = tmp_path / "launches.log"
    wrapper = tmp_path / "my modprobe"
    wrapper.write_text(kmods.modprobe_wrapper(tmp_path / "root dir", config=tmp_path / "conf", log=log,
                                              modprobe=str(fake)))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    out = subprocess.run([str(wrapper), "-q", "--", "kmod_dups_target"], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == f"[-d][{tmp_path / 'root dir'}][-C][{tmp_path / 'conf'}][-q][--][kmod_dups_target]"
    entry = log.read_text().split()
    assert float(entry[0]) > 0 and entry[2:] == ["-q", "--", "kmod_dups_target"]


def test_modprobe_wrapper_holds_hold_names_on_the_gate(tmp_path: Path):
    """A kmod_dups_hold_* launch waits, holding its slot, while the gate
    FIFO has a writer; other names and a missing gate go straight on."""
    fake = tmp_path / "fake-modprobe"
    fake.write_text('#!/bin/sh\nfor a; do :; done\necho "ran $a"\n')
    fake.chmod(0o755)
    conf, log = tmp_path / "conf", tmp_path / "launches.log"
    conf.mkdir()
    wrapper = tmp_path / "modprobe"
    wrapper.write_text(kmods.modprobe_wrapper(tmp_path, config=conf, log=log, modprobe=str(fake)))
    wrapper.chmod(0o755)
    hold = f"{kmods.HOLD_PREFIX}x_1"
    # No gate: no wait.
    assert subprocess.run([str(wrapper), "-q", "--", hold], capture_output=True, text=True,
                          timeout=10).stdout == f"ran {hold}\n"
    gate = conf / kmods.HOLD_GATE
    os.mkfifo(gate)
    writer = os.open(gate, os.O_RDWR)
    try:
        held = subprocess.Popen([str(wrapper), "-q", "--", hold], stdout=subprocess.PIPE, text=True)
        other = subprocess.run([str(wrapper), "-q", "--", "kmod_dups_target"], capture_output=True,
                               text=True, timeout=10)
        assert other.stdout == "ran kmod_dups_target\n"
        for _ in range(100):
            if f"hold {hold}" in log.read_text():
                break
            time.sleep(0.05)
        assert f"hold {hold}" in log.read_text()
        assert held.poll() is None
    finally:
        os.close(writer)
    assert held.communicate(timeout=10)[0] == f"ran {hold}\n"


def test_modprobe_wrapper_without_log_or_config():
    text = kmods.modprobe_wrapper("/m")
    assert text.splitlines()[-1] == 'exec /sbin/modprobe -d /m "$@"'
    assert "proc/uptime" not in text


# ---------------------------------------------------------------- guest scripts


def sh_syntax(text: str, tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text(text)
    for shell in ("dash", "bash"):
        if shutil.which(shell):
            proc = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
            assert proc.returncode == 0, (shell, proc.stderr)


def test_storm_script_is_valid_sh(tmp_path: Path):
    text = guest_storm.render(PATHS, [Storm(id="a"), Storm(id="b", mode="mix", repeat=2, options="x=1 y=2")])
    sh_syntax(text, tmp_path)
    assert "kds_storm a kmod_dups_target wait 0 1 1 none 500 ''" in text
    assert "kds_storm b.1 kmod_dups_target mix" in text and "kds_storm b.2 " in text
    assert "'x=1 y=2'" in text
    assert f"exec /sbin/modprobe -d {PATHS.root} -C {PATHS.config} \"$@\"" in text


def test_other_scripts_are_valid_sh(tmp_path: Path):
    sh_syntax(semantics.render(PATHS), tmp_path)
    sh_syntax(kmod_selftest.render(PATHS, "/src/kmod.sh", [("0001", 1), ("0008", 150)],
                                   env={"DEFAULT_KMOD_FS": "btrfs"}), tmp_path)


def test_storm_script_really_runs_its_helpers(tmp_path: Path):
    """The helpers that need no kernel, run by dash: threads, options, log lines."""
    conf = tmp_path / "conf"
    conf.mkdir()
    pre = guest_storm.preamble(GuestPaths(root="/r", release="x", work=str(tmp_path)))
    body = pre + f"""
KDS_CONF={conf}
kds_threads 0 4
kds_threads 3 4
kds_threads 0 1
kds_options kmod_dups_target "init_delay_ms=7"
cat "$KDS_CONF/kmod-dups.conf"
printf 'a\\nb\\n' > "$KDS_WORK/f"
kds_lines "$KDS_WORK/f"
kds_lines "$KDS_WORK/none"
"""
    out = subprocess.run(["sh", "-c", body], capture_output=True, text=True, check=True).stdout.split("\n")
    nproc = os.cpu_count() or 1
    assert out[0] == ("4" if nproc < 4 else "0") and out[1] == "3" and out[2] == "0"
    assert out[3] == "options kmod_dups_target init_delay_ms=7"
    assert out[4].strip() == "2" and out[5] == "0"


@pytest.mark.parametrize("kwargs", [
    {"id": "bad id"}, {"id": "a", "mode": "sometimes"}, {"id": "a", "lead": "first"},
    {"id": "a", "name": "x;rm -rf /"}, {"id": "a", "options": "a=$(reboot)"}, {"id": "a", "rounds": 0},
    {"id": "a", "lead_delay_ms": 60001}, {"id": "a", "threads": -1},
])
def test_storm_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        Storm(**kwargs)


def test_render_rejects_duplicate_ids_and_unknown_tests():
    with pytest.raises(ValueError):
        guest_storm.render(PATHS, [Storm(id="a"), Storm(id="a")])
    with pytest.raises(ValueError):
        semantics.render(PATHS, ["no_such_test"])


# ---------------------------------------------------------------- parsers on captured output


def strip_prefix(text: str, kind: str, run_id: str) -> str:
    head = f"KDS {kind} id={run_id} "
    return "\n".join(line[len(head):] for line in text.splitlines() if line.startswith(head))


def test_parse_debugfs_files_as_captured():
    text = data("storm-dups-4cpu.log")
    results = guest_storm.parse_results("# cpu round mode ret latency_us start_us role\n"
                                        + strip_prefix(text, "result", "target"))
    assert len(results) == 4 and {r.cpu for r in results} == {0, 1, 2, 3}
    assert all(r.wait and r.ret == 0 and r.role == "rest" and r.latency_us > 1_000_000 for r in results)
    summary = guest_storm.parse_summary(strip_prefix(text, "summary", "target"))
    assert summary is not None and summary.calls == 4 and summary.rets == {0: 4}
    assert summary.min_latency_us == min(r.latency_us for r in results)
    assert summary.max_latency_us == max(r.latency_us for r in results)
    assert guest_storm.parse_summary("runs 0\n") is None
    calls = guest_storm.parse_calls(strip_prefix(data("semantics-dups-4cpu.log"), "call", "killed_waiter"))
    assert [c.seq for c in calls] == [1, 2] and calls[0].killed and calls[0].ret == -512
    # The first five columns alone (the documented minimum) parse too.
    assert guest_storm.parse_results("3 1 nowait -2 17\n")[0].start_us == 0


@pytest.mark.parametrize("line", ["1 2 3", "0 0 maybe 0 1", "a b wait 0 1", "0 0 wait 0 1 2"])
def test_parse_results_rejects_garbage(line: str):
    with pytest.raises(ValueError):
        guest_storm.parse_results(line)


def test_parse_storm_output_feature_on():
    out = guest_storm.parse_output(data("storm-dups-4cpu.log"))
    assert out.ended and out.fatal is None and out.setup["feature"] == "1" and out.setup["cpus"] == "4"
    assert list(out.storms) == ["target", "mix.1", "mix.2", "nowait", "fail", "none"]
    for run in out.storms.values():
        assert run.rc == 0 and run.summary is not None and not run.summary.interrupted
        assert len(run.results) == run.summary.calls == run.summary.threads * run.rounds
        assert run.marked and run.launches is not None and run.dups is not None
    target = out.storms["target"]
    assert target.launches == 1 and target.dups == 3 and target.rets == {0} and target.state == "live"
    fail = out.storms["fail"]
    assert fail.launches == 1 and fail.dups == 3 and fail.rets == {256} and fail.state == "absent"
    none = out.storms["none"]
    assert none.rounds == 3 and none.launches == 3 and none.dups == 9 and none.rets == {256}


def test_parse_storm_output_feature_off():
    out = guest_storm.parse_output(data("storm-nodups-4cpu.log"))
    assert out.setup["feature"] == "0"
    target = out.storms["target"]
    assert target.launches == 4 and target.dups == 0 and target.rets == {0}
    assert out.storms["none"].launches == 12


def test_semantics_feature_on_all_pass():
    out = guest_storm.parse_output(data("semantics-dups-4cpu.log"))
    verdicts = semantics.evaluate(out)
    assert [v.test for v in verdicts] == list(semantics.TESTS)
    assert all(v.passed for v in verdicts), [v for v in verdicts if not v.passed]


def test_semantics_feature_off_all_fail_with_reasons():
    verdicts = {v.test: v for v in semantics.evaluate(guest_storm.parse_output(data("semantics-nodups-4cpu.log")))}
    # Without dups.c nothing suppresses the nowait request: that one is a
    # property the feature must keep, not one it adds.
    assert [t for t, v in verdicts.items() if v.passed] == ["nowait_lost"]
    assert "0 duplicates reported, expected 99" in verdicts["slots_full"].detail
    assert "8 modprobe launches, expected 1" in verdicts["spellings"].detail
    assert "4 modprobe launches, expected 1" in verdicts["failing_dups"].detail
    assert "expected 2" in verdicts["nowait_first"].detail
    assert "feature off" in verdicts["dups_trace"].detail
    # Without dups.c there is nothing to wait for: no hang, but no warning either.
    assert "no warning that the request came from its own modprobe" in verdicts["recursive_softdep"].detail


def test_semantics_judges_what_it_sees():
    """The evaluation fails on wrong numbers, not only on missing ones."""
    text = data("semantics-dups-4cpu.log")
    launches = text.replace("KDS kernel id=failing_dups launches=1 ", "KDS kernel id=failing_dups launches=2 ")
    assert not semantics.evaluate_failing(guest_storm.parse_output(launches)).passed
    split = re.sub(r"(KDS result id=failing_dups \d+ 0 wait )256", r"\g<1>0", text, count=1)
    assert not semantics.evaluate_failing(guest_storm.parse_output(split)).passed
    rets = re.sub(r"(KDS call id=killed_waiter 1 \d+ wait )-512", r"\g<1>0", text)
    assert not semantics.evaluate_killed(guest_storm.parse_output(rets)).passed
    off = text.replace("rc_off=1 off=Y", "rc_off=0 off=N")
    assert not semantics.evaluate_trace(guest_storm.parse_output(off)).passed
    assert all(not v.passed for v in semantics.evaluate(guest_storm.parse_output("")))
    # Each way the recursive request can go wrong, fed to its judge.
    rec = "KDS recursive id=recursive_softdep state=live ret=0 own=1"
    assert rec in text
    for bad, why in ((rec.replace("own=1", "own=0"), "no warning that the request came"),
                     (rec.replace("ret=0", "ret=-"), "the request from its init returned -"),
                     (rec.replace("state=live", "state=coming"), "its init did not finish"),
                     ("", "the recursive record missing")):
        verdict = semantics.evaluate_recursive(guest_storm.parse_output(text.replace(rec, bad)))
        assert not verdict.passed and why in verdict.detail, (why, verdict.detail)
    slow = re.sub(r"(KDS storm id=recursive_softdep .* rc=0 ms=)\d+", r"\g<1>121000", text)
    assert "the bound is 120 s" in semantics.evaluate_recursive(guest_storm.parse_output(slow)).detail
    # The slot storm: a caller back early (a slot was free), one late, a launch.
    early = re.sub(r"(KDS result id=slots_full \d+ 0 wait -62 )\d+", r"\g<1>1000", text, count=1)
    assert "before the slot timeout" in semantics.evaluate_slots(guest_storm.parse_output(early)).detail
    late = re.sub(r"(KDS result id=slots_full \d+ 0 wait -62 )\d+", r"\g<1>6500000", text, count=1)
    assert "the last caller returned after 6500 ms" in semantics.evaluate_slots(guest_storm.parse_output(late)).detail
    # The lost nowait: folded into the killed first request (0 at once, no launch).
    lost = re.sub(r"(KDS nowait-lost id=nowait_lost .*state=)live( launches=)1", r"\1absent\g<2>0", text)
    assert lost != text
    verdict = semantics.evaluate_nowait_lost(guest_storm.parse_output(lost))
    assert not verdict.passed and "nobody ran modprobe for the nowait request" in verdict.detail
    # Two spellings, two modprobes.
    twice = re.sub(r"launches_dash=0", "launches_dash=1", text)
    assert "2 modprobe launches, expected 1" in semantics.evaluate_spellings(guest_storm.parse_output(twice)).detail
    # One WARN for two warning lines in trace mode: not every warning was a WARN.
    warned = text.replace("KDS kernel id=dups_trace.on launches=1 dups=2 warns=1 marked=1 bursts=1 warned=1",
                          "KDS kernel id=dups_trace.on launches=1 dups=2 warns=1 marked=1 bursts=1 warned=2")
    assert warned != text
    assert not semantics.evaluate_trace(guest_storm.parse_output(warned)).passed
    fatal = semantics.evaluate(guest_storm.parse_output("KDS fatal reason=insmod\n"))
    assert all("reason=insmod" in v.detail for v in fatal)


def test_kmod_sh_tests_are_read_from_the_script(base_tree: Path):
    tests = kmod_selftest.read_tests(base_tree / kmod_selftest.KMOD_SH)
    assert list(tests) == [f"{i:04d}" for i in range(1, 14)]
    assert tests["0008"].count == 150 and tests["0008"].needs == ("test_module",)
    assert "get_fs_type" in tests["0004"].description
    assert kmod_selftest.plan(tests, ["0009"], None) == [("0009", 150)]
    assert kmod_selftest.plan(tests)[:2] == [("0001", 1), ("0002", 1)]
    with pytest.raises(UserError):
        kmod_selftest.plan(tests, ["0099"])


def test_kmod_selftest_parse_feature_on_and_off():
    on = kmod_selftest.parse(data("kmod-selftest-dups-4cpu.log"))
    off = kmod_selftest.parse(data("kmod-selftest-nodups-4cpu.log"))
    assert [r.id for r in on] == [r.id for r in off] == [f"{i:04d}" for i in range(1, 14)]
    assert all(r.status == "pass" and r.runs == 1 and r.oks >= 1 for r in on + off)
    by_id_on, by_id_off = {r.id: r for r in on}, {r.id: r for r in off}
    # 0005: 50 threads request test_module at once.
    assert by_id_on["0005"].launches == 1 and by_id_on["0005"].dups == 49
    assert by_id_off["0005"].launches == 50 and by_id_off["0005"].dups == 0
    table = kmod_selftest.table(on)
    assert len(table.splitlines()) == 14 and max(map(len, table.splitlines())) < 80


def test_kmod_selftest_parse_failure():
    res = {r.id: r for r in kmod_selftest.parse(data("kmod-selftest-dups-2cpu-faildriver.log"))}
    assert res["0001"].status == "pass" and res["0001"].runs == 2
    assert res["0005"].status == "fail" and res["0005"].rc == 1
    assert res["0005"].reason.startswith("kmod_test_0005: FAIL, test expects SUCCESS")
    skip = kmod_selftest.SelftestResult("0003", 1, 4, 10, log=["kmod.sh: /sys/... not present"])
    assert skip.status == "skip" and "not present" in skip.reason


# ---------------------------------------------------------------- guest (real boots)

@pytest.fixture(scope="module")
def guest_paths(default_build: Path) -> GuestPaths:
    """The feature-on kernel of the main job (tests/conftest.py builds it, or
    KMOD_DUPS_BUILD names one) and its modules root."""
    root = kmods.prepare(default_build)
    return GuestPaths(str(root.root), root.release)


@pytest.mark.slow
def test_guest_semantics(tmp_path: Path, guest_paths: GuestPaths, default_build: Path):
    from kmod_dups.guest import session as guest_run

    run = guest_run.run_script(default_build, 2, semantics.render(guest_paths), tmp_path, name="semantics")
    assert run.ok, (run.result, run.output[-2000:])
    out = guest_storm.parse_output(run.output)
    assert out.setup.get("feature") == "1", "KMOD_DUPS_BUILD must have the feature on"
    failed = [v for v in semantics.evaluate(out) if not v.passed]
    assert not failed, failed


@pytest.mark.slow
def test_guest_kmod_selftest_0005(tmp_path: Path, guest_paths: GuestPaths, default_build: Path):
    from kmod_dups.guest import session as guest_run

    script = kmod_selftest.render(guest_paths, kmod_selftest.script_path(default_build), [("0005", 1)])
    run = guest_run.run_script(default_build, 2, script, tmp_path, name="kmod-selftest")
    assert run.ok, (run.result, run.output[-2000:])
    (result,) = kmod_selftest.parse(run.output)
    assert result.status == "pass", result.reason
    # 50 test_kmod threads request test_module at once: one modprobe.
    assert result.launches == 1 and result.dups == 49


def test_kmod_selftest_without_its_mark_has_no_dups_count():
    """150 rounds of 0008 print thousands of warnings: the mark scrolls out
    of the guest's log buffer and its count of 0 is no count."""
    text = data("kmod-selftest-dups-4cpu.log").replace(
        "KDS kernel id=0008 launches=1 dups=57 warns=0 marked=1",
        "KDS kernel id=0008 launches=1 dups=0 warns=0 marked=0")
    res = {r.id: r for r in kmod_selftest.parse(text)}
    assert res["0008"].dups is None and res["0005"].dups == 49
    row = next(line for line in kmod_selftest.table(list(res.values())).splitlines() if line.startswith("0008"))
    assert row.split()[4:6] == ["1", "?"]


def test_kmod_selftest_adds_up_burst_reports_on_the_console():
    """The hardened dups.c warns once a burst and reports the count when
    its first request returns: the count is the reports' sum."""
    warn = "[    9.1][  T70] module: duplicate request for module test_module"
    burst = "[    9.9][  T69] module: duplicate requests for module test_module: {}, served by its first request (0)"
    console = "\n".join(["[    8.0][   T1] kmod-dups mark 0008", warn, burst.format(40), warn, burst.format(9),
                         "[   20.0][   T1] kmod-dups mark 0009", warn]) + "\n"
    counts = kmod_selftest.console_dups(console)
    assert counts["0008"] == kmod_selftest.ConsoleCount(49, False)
    # No report (yet): the warning lines are all there is.
    assert counts["0009"].dups == 1


def test_kmod_selftest_counts_dups_on_the_console():
    dup = "[    9.1][  T70] module: module-autoload: duplicate request for module test_module"
    console = "\n".join(["[    8.0][   T1] kmod-dups mark 0008", *[dup] * 300,
                         "[   20.0][   T1] kmod-dups mark 0009", dup,
                         "[   21.0][   T1] ** 120 printk messages dropped **"]) + "\n"
    results = [kmod_selftest.SelftestResult("0008", 150, 0, 10, dups=0),
               kmod_selftest.SelftestResult("0009", 150, 0, 10, dups=0),
               kmod_selftest.SelftestResult("0010", 1, 0, 10, dups=3)]
    kmod_selftest.with_console(results, console)
    assert [r.dups for r in results] == [300, None, 3]
