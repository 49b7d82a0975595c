"""kmod_dups.qemu.accel: the KVM probe, its verdicts, its cache, the fallback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmod_dups.errors import UserError
from kmod_dups.qemu import accel

DATA = Path(__file__).parent / "data"


def test_qemu_abort_under_kvm_means_tcg():
    """-cpu host on these hosts: QEMU cannot set an MSR and aborts."""
    text = (DATA / "kvm-probe-cpu-host.log").read_text()
    usable, reason = accel.judge_probe(text, exited=True, returncode=-6)
    assert not usable and "failed to set MSR" in reason


def test_kernel_stuck_under_kvm_means_tcg():
    """QEMU's default CPU on these hosts: the kernel stops printing early."""
    text = (DATA / "kvm-probe-default-cpu-hang.log").read_text()
    usable, reason = accel.judge_probe(text, exited=False, returncode=None)
    assert not usable and "stopped making progress" in reason and "refined-jiffies" in reason


def test_kvm_internal_error_means_tcg():
    text = "KVM internal error. Suberror: 1\nemulation failure\nEAX=00000000 EBX=00000000\n"
    usable, reason = accel.judge_probe(text, exited=False, returncode=None)
    assert not usable and "KVM internal error" in reason


def test_kernel_reaching_root_means_kvm_works():
    """The probe's own command line, run under TCG: what a good probe prints."""
    text = (DATA / "tcg-probe-boot-to-root.log").read_text()
    usable, reason = accel.judge_probe(text, exited=True, returncode=0)
    assert usable, reason


def test_silence_until_deadline_means_tcg():
    usable, reason = accel.judge_probe("early console in extract_kernel\n", exited=False,
                                       returncode=None)
    assert not usable and "stopped making progress" in reason and "extract_kernel" in reason


def test_early_exit_means_tcg():
    usable, reason = accel.judge_probe("", exited=True, returncode=1)
    assert not usable and "exited (1)" in reason


class Prober:
    def __init__(self, usable: bool):
        self.usable = usable
        self.calls = 0

    def __call__(self, qemu: str, kernel: Path) -> tuple[bool, str, float]:
        self.calls += 1
        return self.usable, "KVM internal error. Suberror: 1" if not self.usable else "ok", 1.0


def test_fallback_is_said_once_and_cached(tmp_path):
    prober = Prober(usable=False)
    said: list[str] = []
    args = dict(qemu="qemu", qemu_version="10.0.2", kernel=Path("/b/vmlinux"), say=said.append,
                device="/dev/null", cache=tmp_path, prober=prober)
    assert accel.choose("auto", **args)[0] == "tcg"
    assert prober.calls == 1 and len([s for s in said if "falling back to TCG" in s]) == 1
    said.clear()
    chosen, reason = accel.choose("auto", **args)
    assert chosen == "tcg" and "cached" in reason
    assert prober.calls == 1 and said == []  # not probed, not said again
    # Another QEMU version is another answer.
    assert accel.choose("auto", **{**args, "qemu_version": "11.0.0"})[0] == "tcg"
    assert prober.calls == 2
    files = list(tmp_path.glob("kvm-probe-*.json"))
    assert len(files) == 2
    assert json.loads(files[0].read_text())["usable"] is False


def test_working_kvm_is_used(tmp_path):
    prober = Prober(usable=True)
    chosen, _ = accel.choose("auto", "qemu", "10.0.2", Path("/b/vmlinux"), lambda s: None,
                             device="/dev/null", cache=tmp_path, prober=prober)
    assert chosen == "kvm"


def test_inaccessible_kvm(tmp_path):
    missing = str(tmp_path / "no-kvm")
    prober = Prober(usable=True)
    chosen, reason = accel.choose("auto", "qemu", "10.0.2", Path("/b/vmlinux"), lambda s: None,
                                  device=missing, cache=tmp_path, prober=prober)
    assert chosen == "tcg" and "not accessible" in reason and prober.calls == 0
    with pytest.raises(UserError, match="--accel kvm"):
        accel.choose("kvm", "qemu", "10.0.2", Path("/b/vmlinux"), lambda s: None, device=missing)
    assert accel.choose("tcg", "qemu", "10.0.2", Path("/b/vmlinux"), lambda s: None,
                        device=missing)[0] == "tcg"


def test_probe_without_kvm_device_does_not_start_qemu(tmp_path):
    usable, reason, seconds = accel.run_probe("/nonexistent-qemu", tmp_path / "vmlinux",
                                              device=str(tmp_path / "no-kvm"))
    assert not usable and "not accessible" in reason and seconds == 0.0
