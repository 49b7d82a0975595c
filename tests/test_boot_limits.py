"""kmod_dups.qemu.limits: QEMU's vCPU ceiling, the kernel's NR_CPUS, memory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kmod_dups.errors import UserError
from kmod_dups.qemu import limits

DATA = Path(__file__).parent / "data"


def qemu(version=(10, 0, 2), max_cpus=4096) -> limits.QemuInfo:
    return limits.QemuInfo("/usr/bin/qemu-system-x86_64", version, "", max_cpus)


CONFIG_448 = {
    "CONFIG_SMP": "y", "CONFIG_NR_CPUS": "512", "CONFIG_X86_X2APIC": "y",
    "CONFIG_IRQ_REMAP": "y", "CONFIG_INTEL_IOMMU": "y", "CONFIG_HZ": "250",
}


@pytest.mark.parametrize("name,version,q35_max", [
    ("7.2", (7, 2, 22), 288),
    ("10.0", (10, 0, 2), 4096),
])
def test_real_qemu_replies(name, version, q35_max):
    """Captured from Debian bookworm's and bookworm-backports' QEMU."""
    assert limits.parse_qemu_version((DATA / f"qemu-{name}-version.txt").read_text()) == version
    replies = (DATA / f"qmp-query-machines-qemu-{name}.jsonl").read_text()
    assert limits.parse_query_machines(replies) == q35_max
    assert limits.parse_query_machines(replies, "pc") == 255


def test_unreadable_version_is_a_user_error():
    with pytest.raises(UserError):
        limits.parse_qemu_version("something else")


def test_kconfig_parsing():
    config = limits.parse_kconfig(
        'CONFIG_SMP=y\nCONFIG_NR_CPUS=512\n# CONFIG_KVM_GUEST is not set\n'
        'CONFIG_LOCALVERSION="-dups"\n# comment\n')
    assert config == {"CONFIG_SMP": "y", "CONFIG_NR_CPUS": "512",
                      "CONFIG_LOCALVERSION": "-dups"}  # unset: absent, read as n
    assert limits.nr_cpus(config) == 512
    assert limits.nr_cpus({"CONFIG_NR_CPUS": "64"}) == 1  # no SMP: one CPU


def test_448_fits_qemu_10_and_a_512_cpu_kernel():
    limits.check_cpus(448, qemu(), CONFIG_448, "tcg")


@pytest.mark.parametrize("cpus,info,config,words", [
    (0, qemu(), CONFIG_448, "at least 1"),
    (448, qemu((7, 2, 22), 288), CONFIG_448, "at most 288"),
    (4097, qemu(), CONFIG_448, "at most 4096"),
    (448, qemu(), {**CONFIG_448, "CONFIG_NR_CPUS": "64"}, "CONFIG_NR_CPUS=64"),
    (256, qemu(), {**CONFIG_448, "CONFIG_IRQ_REMAP": "n"}, "CONFIG_IRQ_REMAP"),
    (280, qemu((8, 2, 0), 1024), CONFIG_448, "x2APIC emulation"),
])
def test_impossible_cpu_counts_are_one_line_errors(cpus, info, config, words):
    with pytest.raises(UserError) as err:
        limits.check_cpus(cpus, info, config, "tcg")
    assert words in str(err.value) and "\n" not in str(err.value)


def test_kvm_needs_no_tcg_x2apic():
    limits.check_cpus(280, qemu((8, 2, 0), 1024), CONFIG_448, "kvm")


def test_build_without_config(tmp_path):
    with pytest.raises(UserError, match="no .config"):
        limits.read_build_config(tmp_path)


def test_memory_grows_with_cpus():
    assert limits.default_memory_mb(1) < limits.default_memory_mb(64) < limits.default_memory_mb(448)
    for cpus in (1, 8, 64, 448, 1000):
        assert limits.default_memory_mb(cpus) % 128 == 0
        assert limits.default_memory_mb(cpus) >= limits.min_memory_mb(cpus)
        limits.check_memory(limits.default_memory_mb(cpus), cpus)
    with pytest.raises(UserError, match="too little"):
        limits.check_memory(512, 448)


@pytest.mark.parametrize("text,mib", [("2048", 2048), ("2048M", 2048), ("2G", 2048), ("3gb", 3072)])
def test_memory_sizes(text, mib):
    assert limits.parse_memory_mb(text) == mib


def test_bad_memory_size():
    with pytest.raises(UserError):
        limits.parse_memory_mb("lots")


def test_lpj_from_tsc_and_hz():
    cpuinfo = "processor\t: 0\ncpu MHz\t\t: 2596.122\n"
    khz = limits.host_tsc_khz(cpuinfo)
    assert khz == 2596122
    assert limits.preset_lpj({"CONFIG_HZ": "250"}, khz) == 10384488
    assert limits.preset_lpj({"CONFIG_HZ": "1000"}, khz) == 2596122
    assert limits.preset_lpj({}, None) is None


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU not installed")
def test_probe_installed_qemu():
    """The real QEMU on this host answers over QMP."""
    info = limits.probe_qemu(limits.find_qemu())
    assert info.version >= limits.MIN_QEMU
    assert info.q35_max_cpus >= 255


def test_missing_qemu():
    with pytest.raises(UserError, match="not found"):
        limits.find_qemu("qemu-system-x86_64-does-not-exist")


def test_over_qemu_10_limit_names_the_limit_without_advising_backports():
    with pytest.raises(UserError) as err:
        limits.check_cpus(5000, qemu(), CONFIG_448, "tcg")
    text = str(err.value)
    assert "at most 4096" in text and "CONFIG_NR_CPUS=512" in text
    assert "backports" not in text


def test_over_qemu_7_2_limit_advises_backports():
    with pytest.raises(UserError) as err:
        limits.check_cpus(300, qemu((7, 2, 22), 288), CONFIG_448, "tcg")
    assert "at most 288" in str(err.value) and "backports" in str(err.value)
