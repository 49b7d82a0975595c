"""`kmod-dups boot` input checks: one-line errors before anything starts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kmod_dups import cli

needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="QEMU not installed")

CONFIG = """\
CONFIG_SMP=y
CONFIG_NR_CPUS=512
CONFIG_X86_X2APIC=y
CONFIG_IRQ_REMAP=y
CONFIG_INTEL_IOMMU=y
CONFIG_PVH=y
CONFIG_HZ=100
"""


def fake_build(tmp_path: Path, config: str = CONFIG, kernel: bool = True) -> Path:
    build = tmp_path / "build"
    (build / "arch/x86/boot").mkdir(parents=True)
    (build / ".config").write_text(config)
    if kernel:
        (build / "vmlinux").write_bytes(b"\x7fELF")
        (build / "arch/x86/boot/bzImage").write_bytes(b"MZ")
    return build


def run(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(["boot", *argv])
    err = capsys.readouterr().err
    return code, err


def one_line_error(code: int, err: str, words: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmod-dups: error: "), err
    assert words in lines[0], err


@pytest.mark.parametrize("cpus,words", [("0", "at least 1"), ("-3", "at least 1")])
def test_zero_cpus(tmp_path, capsys, cpus, words):
    build = fake_build(tmp_path)
    one_line_error(*run(capsys, "--build", str(build), "--cpus", cpus, "--", "true"), words)


def test_build_without_kernel(tmp_path, capsys):
    build = fake_build(tmp_path, kernel=False)
    one_line_error(*run(capsys, "--build", str(build), "--cpus", "2", "--", "true"), "no kernel")


def test_build_folder_missing(tmp_path, capsys):
    one_line_error(*run(capsys, "--build", str(tmp_path / "nope"), "--cpus", "2", "--", "true"),
                   "no such folder")


def test_no_command(tmp_path, capsys):
    one_line_error(*run(capsys, "--build", str(fake_build(tmp_path)), "--cpus", "2"),
                   "no command")


def test_qemu_missing(tmp_path, capsys):
    one_line_error(*run(capsys, "--build", str(fake_build(tmp_path)), "--cpus", "2",
                        "--qemu", "qemu-system-x86_64-not-here", "--", "true"), "not found")


def test_qemu_too_old(tmp_path, capsys):
    old = tmp_path / "qemu-old"
    old.write_text("#!/bin/sh\necho 'QEMU emulator version 6.2.0 (Debian 1:6.2+dfsg-2ubuntu6)'\n")
    old.chmod(0o755)
    one_line_error(*run(capsys, "--build", str(fake_build(tmp_path)), "--cpus", "2",
                        "--qemu", str(old), "--", "true"), "too old")


@needs_qemu
def test_more_cpus_than_the_kernel(tmp_path, capsys):
    build = fake_build(tmp_path, CONFIG.replace("512", "64"))
    one_line_error(*run(capsys, "--build", str(build), "--cpus", "65", "--", "true"),
                   "CONFIG_NR_CPUS=64")


@needs_qemu
def test_more_cpus_than_qemu(tmp_path, capsys):
    build = fake_build(tmp_path, CONFIG.replace("512", "8192"))
    one_line_error(*run(capsys, "--build", str(build), "--cpus", "5000", "--", "true"),
                   "at most")


@needs_qemu
def test_too_little_memory(tmp_path, capsys):
    one_line_error(*run(capsys, "--build", str(fake_build(tmp_path)), "--cpus", "448",
                        "--memory", "256M", "--", "true"), "too little")


@needs_qemu
def test_kvm_not_accessible(tmp_path, capsys, monkeypatch):
    from kmod_dups.qemu import accel

    monkeypatch.setattr(accel, "KVM_DEVICE", str(tmp_path / "no-kvm"))
    one_line_error(*run(capsys, "--build", str(fake_build(tmp_path)), "--cpus", "2",
                        "--accel", "kvm", "--", "true"), "not accessible")


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        cli.main(["boot", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "--cpus 448" in out and "exit status" in out
