"""Boot harness: the patched kernel in a many-vCPU x86_64 QEMU guest.

``kmod-dups boot`` (cli) boots a kernel build folder in a q35 guest through
virtme-ng, with the host's root file system read-only, runs a command and
brings back its output and exit code.  One job per module:

spec         the guest as a dataclass, and the pure function to its vng/QEMU
             command line (fast-boot defaults live here)
limits       QEMU's version and q35 vCPU ceiling, the kernel's NR_CPUS,
             memory for N vCPUs, the preset lpj
accel        KVM or TCG: the probe boot, its per-host cache, the fallback
console      what the kernel console says: panic, BUG, oops, RCU stall,
             hung task, unexpected WARN (dups WARNs are expected), truncation
guestscript  the script the guest runs around CMD (markers, exit code, dmesg)
runner       one run: timeouts, no-output watchdog, sure kill of QEMU's
             process group, the run folder and result.json
"""
