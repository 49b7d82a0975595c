"""kmod_dups.qemu.spec: the guest as data -> the vng/QEMU command line."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from kmod_dups.qemu import guestscript
from kmod_dups.qemu.spec import GuestSpec, kernel_args, qemu_args, vng_command


def make(**overrides) -> GuestSpec:
    base = dict(
        build_dir=Path("/b"),
        kernel=Path("/b/vmlinux"),
        cpus=8,
        memory_mb=1024,
        accel="tcg",
        guest_script=Path("/r/guest/run.sh"),
        rw_dirs=(Path("/r/guest"), Path("/r/scratch")),
        lpj=8000000,
        vng="/venv/bin/vng",
        pidfile=Path("/r/qemu.pid"),
    )
    base.update(overrides)
    return GuestSpec(**base)


def opt_values(cmd: list[str], option: str) -> list[str]:
    return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == option]


def qemu_opts(cmd: list[str]) -> list[str]:
    """What vng's shell will hand QEMU after --qemu-opts (it must be last)."""
    assert cmd[-1].startswith("--qemu-opts=")
    return shlex.split(cmd[-1].split("=", 1)[1])


def test_tcg_small_guest():
    cmd = vng_command(make())
    assert cmd[0] == "/venv/bin/vng"
    assert opt_values(cmd, "--run") == ["/b"]
    assert opt_values(cmd, "--cpus") == ["8"]
    assert opt_values(cmd, "--memory") == ["1024M"]
    assert "--disable-kvm" in cmd
    assert "--disable-microvm" in cmd and "--force-9p" in cmd and "--verbose" in cmd
    assert opt_values(cmd, "--exec") == ["sh /r/guest/run.sh"]
    assert opt_values(cmd, "--rwdir") == ["/r/guest", "/r/scratch"]
    assert opt_values(cmd, "--append") == ["tsc=reliable", "rcupdate.rcu_cpu_stall_suppress_at_boot=1", "lpj=8000000"]
    opts = qemu_opts(cmd)
    # PVH: our -kernel comes after vng's bzImage, and QEMU keeps the last.
    assert opts[:2] == ["-kernel", "/b/vmlinux"]
    assert opts[opts.index("-accel") + 1] == "tcg,thread=single"
    assert opts[opts.index("-pidfile") + 1] == "/r/qemu.pid"
    assert "intel-iommu" not in " ".join(opts)
    assert "-machine" not in opts  # vng's own "-machine q35 -cpu max" under TCG


def test_kvm_guest_is_q35_without_tcg_options():
    cmd = vng_command(make(accel="kvm"))
    assert "--disable-kvm" not in cmd
    # Boot-time RCU stalls are only suppressed for TCG's emulation artefacts.
    assert not any("rcu_cpu_stall" in v for v in opt_values(cmd, "--append"))
    opts = qemu_opts(cmd)
    assert "-accel" not in opts  # would clash with vng's -machine accel=kvm:tcg
    assert opts[opts.index("-machine") + 1] == "q35"


@pytest.mark.parametrize("cpus,x2apic", [(1, False), (255, False), (256, True), (448, True)])
def test_x2apic_above_255(cpus, x2apic):
    spec = make(cpus=cpus)
    assert spec.x2apic is x2apic
    opts = qemu_args(spec)
    devices = [opts[i + 1] for i, a in enumerate(opts) if a == "-device"]
    if x2apic:
        assert devices == ["intel-iommu,intremap=on,eim=on,dma-translation=off"]
        assert "intremap=on" in kernel_args(spec)
    else:
        assert devices == []
        assert "intremap=on" not in kernel_args(spec)


def test_x2apic_under_kvm_splits_the_irqchip():
    opts = qemu_args(make(accel="kvm", cpus=448))
    assert opts[opts.index("-machine") + 1] == "q35,kernel-irqchip=split"


def test_bzimage_keeps_vngs_kernel():
    opts = qemu_args(make(kernel=Path("/b/arch/x86/boot/bzImage")))
    assert "-kernel" not in opts


def test_user_cmdline_and_devices_come_after_defaults():
    spec = make(cmdline=("module.enable_dups_trace=1", "foo=a b"), devices=("virtio-rng-pci",),
                lpj=None)
    args = kernel_args(spec)
    assert args == ["tsc=reliable", "rcupdate.rcu_cpu_stall_suppress_at_boot=1",
                    "module.enable_dups_trace=1", "foo=a b"]
    cmd = vng_command(spec)
    # vng shlex-splits each --append value: a value with a space stays one argument.
    assert [shlex.split(v) for v in opt_values(cmd, "--append")][-1] == ["foo=a b"]
    opts = qemu_opts(cmd)
    assert opts[opts.index("-device") + 1] == "virtio-rng-pci"


def test_paths_with_spaces_survive_vngs_shell():
    spec = make(build_dir=Path("/my builds/b"), kernel=Path("/my builds/b/vmlinux"),
                rw_dirs=(Path("/r x/scratch"),))
    cmd = vng_command(spec)
    assert shlex.split(opt_values(cmd, "--run")[0]) == ["/my builds/b"]
    assert shlex.split(opt_values(cmd, "--rwdir")[0]) == ["/r x/scratch"]
    assert qemu_opts(cmd)[:2] == ["-kernel", "/my builds/b/vmlinux"]


def test_pure_same_spec_same_command():
    assert vng_command(make()) == vng_command(make())


@pytest.mark.parametrize("bad", [dict(cpus=0), dict(memory_mb=0), dict(accel="hvf")])
def test_bad_specs_are_refused(bad):
    with pytest.raises(ValueError):
        make(**bad)


def test_guest_script_runs_command_and_reports(tmp_path):
    text = guestscript.render(["echo", "a b"], "/s/guest", "/s/scratch")
    assert "echo 'a b'" in text
    assert "kmod-dups-guest: up uptime=" in text and "kmod-dups-guest: exit=" in text
    assert 'KMOD_DUPS_SCRATCH=/s/scratch' in text


def test_guest_script_really_runs(tmp_path):
    """The script itself, run by the host's sh: output, exit code, markers."""
    import subprocess

    state = tmp_path / "guest"
    state.mkdir()
    script = tmp_path / "run.sh"
    script.write_text(guestscript.render(["echo out; echo err >&2; exit 7"], str(state),
                                         str(tmp_path)))
    proc = subprocess.run(["sh", str(script)], capture_output=True, text=True)
    assert proc.returncode == 7
    assert proc.stdout == "out\nerr\n"  # CMD's stderr folded into stdout
    assert "kmod-dups-guest: exit=7" in proc.stderr
    assert (state / "exit-code").read_text() == "7\n"
    uptime, online = (state / "guest-up").read_text().split()
    assert float(uptime) > 0 and online


@pytest.mark.parametrize("cpus,extra", [
    (8, []),
    (128, []),
    (129, ["watchdog_thresh=20", "rcupdate.rcu_cpu_stall_timeout=42"]),
    (448, ["watchdog_thresh=40", "rcupdate.rcu_cpu_stall_timeout=84"]),
    (1000, ["watchdog_thresh=60", "rcupdate.rcu_cpu_stall_timeout=168"]),
])
def test_failure_detectors_scale_with_tcg_vcpus(cpus, extra):
    args = kernel_args(make(cpus=cpus, lpj=None))
    scaled = [a for a in args if a.startswith(("watchdog_thresh=", "rcupdate.rcu_cpu_stall_timeout="))]
    assert scaled == extra
    assert not [a for a in kernel_args(make(cpus=cpus, accel="kvm", lpj=None))
                if a.startswith("watchdog_thresh=")]
