"""The shell script the guest runs: marks boot, runs CMD, brings results back.

virtme-ng's guest init runs it (``vng --exec``) once the guest is up.  It

* prints ``kmod-dups-guest: up uptime=SECONDS online=CPULIST`` on stderr,
  which the harness reads from the console stream (boot time, CPUs online),
  and writes the same to ``STATE/guest-up``;
* runs CMD in a subshell with stderr folded into stdout, so ``exit`` in CMD
  ends only CMD; stdout is virtme-ng's ``virtme.stdout`` virtio port, which
  QEMU writes to the host's stdout as it comes;
* writes CMD's exit code to ``STATE/exit-code``, the kernel log to
  ``STATE/dmesg.txt``, then prints ``kmod-dups-guest: exit=N``.

STATE is a host folder shared read-write with the guest (``--rwdir``).

virtme-ng's init finds its virtio ports through ``/dev/virtio-ports/``, which
only udev creates; on a host without udevd it runs the script on the console
instead.  The script then opens the ports itself by their sysfs names
(``/sys/class/virtio-ports/vportNpM/name``), so CMD's output still comes
back apart from the kernel's, and its exit code reaches vng through
``virtme.ret``.  A port that virtme-ng's init already holds cannot be opened
twice; then the script keeps the stdout it was given, which is that port.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence


def command_text(argv: Sequence[str]) -> str:
    """CMD as shell text: one argument is a shell command line, more are argv."""
    if not argv:
        raise ValueError("empty command")
    if len(argv) == 1:
        return argv[0]
    return shlex.join(argv)


def render(argv: Sequence[str], state_dir: str, scratch_dir: str) -> str:
    state = shlex.quote(state_dir)
    scratch = shlex.quote(scratch_dir)
    return f"""#!/bin/sh
# Written by kmod-dups boot; runs inside the guest.
state={state}
port() {{
	for p in /sys/class/virtio-ports/*; do
		if [ "$(cat "$p/name" 2>/dev/null)" = "$1" ]; then
			dev=/dev/${{p##*/}}
			# Usable only if nobody holds it yet.
			if (: >"$dev") 2>/dev/null; then
				echo "$dev"
				return 0
			fi
		fi
	done
	return 1
}}
if out=$(port virtme.stdout); then exec >"$out"; fi
if err=$(port virtme.stderr); then exec 2>"$err"; fi
ret=$(port virtme.ret) || ret=
KMOD_DUPS_SCRATCH={scratch}
export KMOD_DUPS_SCRATCH
read up _ < /proc/uptime
online=$(cat /sys/devices/system/cpu/online)
printf '%s %s\\n' "$up" "$online" > "$state/guest-up"
echo "kmod-dups-guest: up uptime=$up online=$online" >&2
(
{command_text(argv)}
) </dev/null 2>&1
rc=$?
dmesg > "$state/dmesg.txt" 2>/dev/null
printf '%s\\n' "$rc" > "$state/exit-code"
echo "kmod-dups-guest: exit=$rc" >&2
if [ -n "$ret" ]; then printf '%s' "$rc" >"$ret"; fi
exit "$rc"
"""
