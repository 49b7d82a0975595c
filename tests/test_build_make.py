"""The make runner on small real Makefiles: the step counter, the full log,
the first compiler error of a failing build, a full disk (/dev/full), and
an interrupted make that stops cleanly and resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kmod_dups.build import make
from kmod_dups.errors import UserError

# A stand-in for the kernel's top Makefile: same command line (make -C SRC
# O=BUILD targets), kbuild-style quiet output, real gcc runs.
MAKEFILE = """\
O ?= .
all: $(O)/a.o $(O)/b.o
\t@echo "  LD      vmlinux"
$(O)/%.o: %.c
\t@echo "  CC      $*.o"
\t@gcc -c -o $@ $<
slow: $(O)/a.o
\t@echo "  CC      slow.o"
\t@echo $$$$ > $(O)/slow.pid; sleep 30; touch $(O)/slow.done
full:
\t@echo "  CC      full.o"
\t@dd if=/dev/zero of=/dev/full bs=1 count=1
"""


@pytest.fixture
def src(tmp_path: Path) -> Path:
    tree = tmp_path / "src"
    tree.mkdir()
    (tree / "Makefile").write_text(MAKEFILE)
    (tree / "a.c").write_text("int a(void) { return 1; }\n")
    (tree / "b.c").write_text("int b(void) { return 2; }\n")
    return tree


def test_first_error_prefers_the_compiler_over_make(tmp_path: Path) -> None:
    broken = tmp_path / "broken.c"
    broken.write_text("int ok;\nint broken(void) { return nope; }\nint more(void) { return also_nope; }\n")
    proc = subprocess.run(["gcc", "-c", "-o", "/dev/null", str(broken)], capture_output=True, text=True,
                          env={**os.environ, "LC_ALL": "C"})
    lines = ["make[2]: *** [scripts/Makefile.build:250: broken.o] Error 1\n", *proc.stderr.splitlines(True)]
    error = make.first_error(lines)
    assert error.startswith(f"{broken}:2:") and "error: 'nope' undeclared" in error


def test_steps_and_log(src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = tmp_path / "build"
    build.mkdir()
    log = build / "build.log"
    result = make.run_make(src, build, ["all"], 2, None, log, "make")
    assert result.steps == 3
    assert sorted(result.compiled) == ["a.o", "b.o"]
    assert (build / "a.o").exists()
    text = log.read_text()
    assert "  CC      a.o" in text and "### exit 0" in text
    err = capsys.readouterr().err
    assert "make: 3 steps" in err and "  CC      a.o" not in err
    again = make.run_make(src, build, ["all"], 2, None, log, "make")
    assert again.steps == 1 and again.compiled == []


def test_failing_build_shows_first_compiler_error_and_log(src: Path, tmp_path: Path) -> None:
    (src / "b.c").write_text("int b(void)\n{\n\treturn undeclared_thing;\n}\n")
    build = tmp_path / "build"
    build.mkdir()
    log = build / "build.log"
    with pytest.raises(UserError) as err:
        make.run_make(src, build, ["all"], 1, None, log, "make")
    message = str(err.value)
    assert message.startswith("build failed: b.c:3:")
    assert "undeclared_thing" in message and f"full log: {log}" in message
    assert "\n" not in message


def test_full_disk_is_named(src: Path, tmp_path: Path) -> None:
    build = tmp_path / "build"
    build.mkdir()
    with pytest.raises(UserError, match=r"^disk full while building in .*No space left on device"):
        make.run_make(src, build, ["full"], 1, None, build / "build.log", "make")


RUNNER = """\
import sys
from pathlib import Path
from kmod_dups.build import make
try:
    make.run_make(Path(sys.argv[1]), Path(sys.argv[2]), ["slow"], 1, None, Path(sys.argv[2]) / "log", "make")
except make.Interrupted:
    sys.exit(130)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_make_stops_cleanly_and_resumes(src: Path, tmp_path: Path, sig: int) -> None:
    build = tmp_path / "build"
    build.mkdir()
    # SIGINT at its default in the runner even if this test runs in a background job
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(src), str(build)],
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while not (build / "slow.pid").exists():
        assert time.monotonic() < deadline, "make never started"
        time.sleep(0.1)
    time.sleep(0.5)  # let the recipe's shell start sleep, so the signal is not taken in between
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == 130
    shell = int((build / "slow.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(shell, 0)  # the recipe was stopped with make, not left behind
    assert not (build / "slow.done").exists()
    assert "### interrupted" in (build / "log").read_text()
    # the next run resumes: a.o is not rebuilt
    (src / "Makefile").write_text(MAKEFILE.replace("sleep 30", "true"))
    result = make.run_make(src, build, ["slow"], 1, None, build / "log", "make")
    assert result.compiled == ["slow.o"]
    assert (build / "slow.done").exists()
