"""Real builds of Debian's 6.1 with the series: the default configuration
and the control, the ELF checks on both, the Kconfig behaviour of the two
options, the dropped-option check, and, in a cache of their own, an
interrupted build that resumes, an incremental rebuild after a change to
the generated dups.c and a failing build.

The builds use the default build folders, so with ccache and an existing
build a rerun costs seconds; the first run costs a cold build (13 min on
2 cores without ccache) and the control and _TRACE kernels seeded from it
(under a minute each)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kmod_dups.build import elfcheck, fragments, kconfig_lang, pipeline
from kmod_dups.cache import cache_dir

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
DEFAULT = ["boot", "bcc", "test_kmod", "dups"]
CONTROL = ["boot", "bcc", "test_kmod", "nodups"]
PRIVATE = ["dups"]
# What kbuild recompiles on every relink of vmlinux and bzImage, whatever changed.
RELINK = {"init/version-timestamp.o", "arch/x86/boot/version.o", "arch/x86/boot/compressed/misc.o"}
ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}


def kmod_dups(*args: str, env: dict[str, str] | None = None, timeout: int = 3600) \
        -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kmod_dups.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=timeout, env={**os.environ, **(env or {})})


def build(configs: list[str], *extra: str) -> dict:
    proc = kmod_dups("build", "--config", *configs, *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    builddir = Path(proc.stderr.splitlines()[0].rsplit(" in ", 1)[1])
    return json.loads((builddir / "build.json").read_text())


@pytest.fixture(scope="module")
def default_build() -> dict:
    return build(DEFAULT)


@pytest.fixture(scope="module")
def control_build() -> dict:
    return build(CONTROL)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          env={**os.environ, **ENV}).stdout.strip()


def series_with_edit(base: Path, tmp: Path, edit: Callable[[str], str], subject: str) -> Path:
    """The generated series plus one patch that edits kernel/module/dups.c,
    as a template edit would; made in a sparse clone of the base."""
    patches = pipeline.make_series(base, "hardened", tmp / "generated")
    clone = tmp / "clone"
    git(tmp, "clone", "-q", "--shared", "--no-checkout", str(base), str(clone))
    git(clone, "sparse-checkout", "set", "--no-cone", "/kernel/module/", "/kernel/kmod.c")
    git(clone, "checkout", "-q", "HEAD")
    git(clone, "am", "-q", *map(str, patches))
    dups = clone / "kernel/module/dups.c"
    dups.write_text(edit(dups.read_text()))
    git(clone, "commit", "-q", "-am", subject)
    out = tmp / "series"
    git(clone, "format-patch", "-q", "-o", str(out), f"HEAD~{len(patches) + 1}")
    return out


def test_default_build_has_the_feature(default_build: dict) -> None:
    assert default_build["status"] == "ok"
    check = default_build["elfcheck"]
    assert check["ok"] and check["feature"] and not check["trace"]
    arts = {k: Path(v) for k, v in default_build["artefacts"].items()}
    assert arts["vmlinux"].is_file() and arts["bzImage"].is_file()
    kos = {p.name for p in arts["modules"].rglob("*.ko")}
    assert {"test_kmod.ko", "test_module.ko", "xfs.ko", "btrfs.ko", "tun.ko"} <= kos
    values = fragments.read_config(arts["config"])
    for option, value in {"NR_CPUS": "512", "PVH": "y", "X86_X2APIC": "y", "IRQ_REMAP": "y",
                          "BPF_SYSCALL": "y", "IKHEADERS": "y", "TEST_KMOD": "m",
                          "MODULE_DEBUG_AUTOLOAD_DUPS": "y"}.items():
        assert values.get(option) == value, option
    assert "MODULE_DEBUG_AUTOLOAD_DUPS_TRACE" not in values


def test_default_vmlinux_read_directly(default_build: dict) -> None:
    vmlinux = Path(default_build["artefacts"]["vmlinux"])
    with elfcheck.ElfImage(vmlinux) as img:
        exists_wait = img.symbol("kmod_dup_request_exists_wait")
        assert exists_wait is not None and exists_wait.type == elfcheck.STT_FUNC and exists_wait.size > 0
        (param,) = [p for p in img.kernel_params() if p.name == "module.enable_dups_trace"]
        assert "enable_dups_trace" in img.symbols_at(param.arg)
        assert img.read(param.arg, 1) == b"\0"
        other = {p.name for p in img.kernel_params()}
        assert "printk.time" in other  # the table was walked, not just one entry found


def test_control_build_has_none_of_it(control_build: dict, default_build: dict) -> None:
    assert control_build["status"] == "ok"
    check = control_build["elfcheck"]
    assert check["ok"] and not check["feature"]
    assert {c["what"]: c["actual"] for c in check["checks"]} == {
        "function kmod_dup_request_exists_wait": "absent",
        "function kmod_dup_request_announce": "absent",
        "__param module.enable_dups_trace": "absent",
        "warning format in .rodata": "absent",
    }
    # the same checks expecting the feature fail on the control, and the
    # control's expectations fail on the feature-on kernel
    assert not elfcheck.check(Path(control_build["artefacts"]["vmlinux"]), True, False).ok
    assert not elfcheck.check(Path(default_build["artefacts"]["vmlinux"]), False, False).ok
    assert control_build["worktree"] == default_build["worktree"]


def test_a_new_control_folder_is_seeded_from_the_feature_build(tmp_path: Path, control_build: dict,
                                                               default_build: dict) -> None:
    """A never-built folder one option away from a finished sibling starts
    as its copy: kbuild recompiles what reads the option, and the kernel is
    the control's, symbol for symbol.  The folder's only sibling is the
    default build (a link to it), so the seed is one option away."""
    builds = tmp_path / "builds"
    builds.mkdir()
    (builds / "feature").symlink_to(default_build["builddir"])
    record = build(CONTROL, "-O", str(builds / "control"))
    assert record["seeded_from"] == default_build["builddir"]
    assert "kernel/kmod.o" in record["compiled"]
    assert set(record["compiled"]) - RELINK <= {
        "kernel/kmod.o", *(f"kernel/module/{n}.o" for n in
                           ("main", "strict_rwx", "tree_lookup", "kallsyms", "procfs", "sysfs"))}
    check = record["elfcheck"]
    assert check["ok"] and not check["feature"]

    def symbols(build_record: dict) -> list[str]:
        text = Path(build_record["artefacts"]["System.map"]).read_text()
        return sorted(line.split()[2] for line in text.splitlines())

    assert symbols(record) == symbols(control_build)
    assert Path(record["config"]).read_bytes() == Path(control_build["config"]).read_bytes()
    assert Path(default_build["builddir"], "build.log").exists()  # the seed is untouched


def test_trace_build_defaults_the_parameter_on(tmp_path: Path, default_build: dict) -> None:
    """dups-trace: the parameter's default read from vmlinux is 1."""
    record = build(["boot", "bcc", "test_kmod", "dups-trace"])
    check = record["elfcheck"]
    assert check["ok"] and check["trace"]
    assert {c["what"]: c["actual"] for c in check["checks"]}["module.enable_dups_trace default"] == "1"


def test_options_sit_under_module_debug_and_modules(default_build: dict) -> None:
    tree = kconfig_lang.KconfigTree(Path(default_build["worktree"]))
    (feature,) = tree.definitions["MODULE_DEBUG_AUTOLOAD_DUPS"]
    assert feature.file == "kernel/module/Kconfig"
    assert [d.text for d in feature.all_deps()] == ["MODULES", "MODULE_DEBUG"]
    (trace,) = tree.definitions["MODULE_DEBUG_AUTOLOAD_DUPS_TRACE"]
    assert [d.text for d in trace.all_deps()] == ["MODULES", "MODULE_DEBUG", "MODULE_DEBUG_AUTOLOAD_DUPS"]


@pytest.mark.parametrize("text, dropped, unmet", [
    ("CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS_TRACE=y\n", "MODULE_DEBUG_AUTOLOAD_DUPS_TRACE",
     "MODULE_DEBUG_AUTOLOAD_DUPS (=n)"),
    ("# CONFIG_MODULES is not set\nCONFIG_MODULE_DEBUG=y\nCONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y\n",
     "MODULE_DEBUG_AUTOLOAD_DUPS", "MODULES (=n)"),
    ("CONFIG_MODULES=y\n# CONFIG_MODULE_DEBUG is not set\nCONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y\n",
     "MODULE_DEBUG_AUTOLOAD_DUPS", "MODULE_DEBUG (=n)"),
])
def test_olddefconfig_drops_what_its_dependencies_refuse(tmp_path: Path, default_build: dict, text: str,
                                                         dropped: str, unmet: str) -> None:
    frag = tmp_path / "case.config"
    frag.write_text(text)
    proc = kmod_dups("build", "-q", "--config", str(frag), "--config-only", "-O", str(tmp_path / "b"))
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("kmod-dups: error: ")
    assert f"CONFIG_{dropped}=y (case.config:" in line
    this = line.split(f"CONFIG_{dropped}=y (case.config:", 1)[1].split(";")[0]
    assert "came out as not set" in this and unmet in this
    record = json.loads((tmp_path / "b" / "build.json").read_text())
    assert record["status"] == "failed"


def test_option_this_kernel_lacks(tmp_path: Path, default_build: dict) -> None:
    frag = tmp_path / "typo.config"
    frag.write_text("CONFIG_MODULE_DEBUG_AUTOLOAD_DUP=y\n")
    proc = kmod_dups("build", "--config", "boot", str(frag), "--config-only", "-O", str(tmp_path / "b"))
    assert proc.returncode == 2
    assert "CONFIG_MODULE_DEBUG_AUTOLOAD_DUP (typo.config:1): no such option in Linux 6.1" in proc.stderr


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory, default_build: dict) -> dict:
    """A cache of its own (work tree, kconfig scratch), so that the tests
    below can switch the series without touching the work tree other builds
    share; it stays at the same place between runs so ccache (which hashes
    the source paths) keeps reruns cheap.  The kernel is the feature alone
    on tinyconfig (`--config dups`): its own work tree path means its first
    compile misses ccache, and what is tested here (resume, incremental
    rebuild, the first compiler error) does not need the default kernel's
    size.  The build folder is new on every run, and made the hard way:
    started, interrupted with SIGINT once it compiles, then resumed."""
    cache = cache_dir() / "tests-private"
    env = {"KMOD_DUPS_CACHE": str(cache)}
    builddir = tmp_path_factory.mktemp("private") / "build"
    args = ["build", "--tree", default_build["base"], "--config", *PRIVATE, "-O", str(builddir)]
    proc = subprocess.Popen([sys.executable, "-m", "kmod_dups.cli", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **env},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 900
    while not list(builddir.glob("kernel/*.o")):
        assert proc.poll() is None and time.monotonic() < deadline, "the build never got going"
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    interrupted = {"returncode": proc.returncode, "stderr": err,
                   "record": json.loads((builddir / "build.json").read_text()),
                   "objects": {p: p.stat().st_mtime for p in builddir.rglob("*.o")}}
    resumed = kmod_dups(*args, env=env)
    return {"env": env, "builddir": builddir, "base": Path(default_build["base"]), "args": args,
            "interrupted": interrupted, "resumed": resumed}


def private_build(private: dict, *extra: str) -> subprocess.CompletedProcess[str]:
    return kmod_dups(*private["args"], *extra, env=private["env"])


def test_interrupted_build_resumes(private: dict) -> None:
    stopped = private["interrupted"]
    assert stopped["returncode"] == 130, stopped["stderr"][-2000:]
    assert stopped["stderr"].strip().splitlines()[-1] == \
        "kmod-dups: build interrupted; run the same command again to resume"
    assert stopped["record"]["status"] == "interrupted"
    resumed = private["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    builddir = private["builddir"]
    record = json.loads((builddir / "build.json").read_text())
    assert record["status"] == "ok" and record["elfcheck"]["ok"]
    # the rerun continued where the first stopped: what was finished before
    # the interrupt was not compiled again (make deleted the half-written)
    assert stopped["objects"]
    relink = {builddir / rel for rel in RELINK}
    redone = [str(p) for p, mtime in stopped["objects"].items()
              if p not in relink and p.exists() and p.stat().st_mtime != mtime]
    assert redone == []


def test_incremental_rebuild_after_a_dups_c_change(tmp_path: Path, private: dict) -> None:
    series = series_with_edit(private["base"], tmp_path, lambda t: t.replace(
        "#include <linux/module.h>\n", "#include <linux/module.h>\n/* edited */\n", 1), "module: edit dups.c")
    builddir = private["builddir"]
    try:
        proc = private_build(private, "--series", str(series))
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "work tree: updated" in proc.stderr and "(changed: kernel/module/dups.c)" in proc.stderr
        edited = json.loads((builddir / "build.json").read_text())
        assert set(edited["compiled"]) - RELINK == {"kernel/module/dups.o"}, edited["compiled"]
        assert edited["elfcheck"]["ok"]
    finally:
        back = private_build(private)
    assert back.returncode == 0, back.stderr[-2000:]
    record = json.loads((builddir / "build.json").read_text())
    assert set(record["compiled"]) - RELINK == {"kernel/module/dups.o"}, record["compiled"]


def test_failing_build_shows_the_first_compiler_error(tmp_path: Path, private: dict) -> None:
    series = series_with_edit(private["base"], tmp_path, lambda t: t.replace(
        "#include <linux/module.h>\n", "#include <linux/module.h>\nint broken = undeclared_thing;\n", 1),
        "module: break dups.c")
    builddir = private["builddir"]
    try:
        failed = private_build(private, "--series", str(series))
        assert failed.returncode == 2
        line = failed.stderr.strip().splitlines()[-1]
        assert line.startswith("kmod-dups: error: build failed: ")
        assert "kernel/module/dups.c:" in line and "undeclared_thing" in line and "error:" in line
        assert line.endswith(f"(full log: {builddir / 'build.log'})")
        assert json.loads((builddir / "build.json").read_text())["status"] == "failed"
    finally:
        restored = private_build(private)
    assert restored.returncode == 0, restored.stderr[-2000:]
