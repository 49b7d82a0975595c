"""Numbers the kernel and modprobe give us, in one place.

What a request_module() caller gets back is call_usermodehelper_exec()'s
result: modprobe's wait status (exit 1 -> 256) or a negative errno.
"""

from __future__ import annotations

# modprobe exited 1 (a failing init, or no such module): the wait status.
MODPROBE_FAILED = 256
ERESTARTSYS = 512  # a killed caller's wait (include/linux/errno.h)
ETIME = 62  # __request_module(): no modprobe slot within 5 s
MAX_KMOD_CONCURRENT = 50  # 6.1's modprobe slots (kernel/kmod.c)
