// SPDX-License-Identifier: GPL-2.0
/*
 * kmod_dups_fail - a module whose init fails, slowly, on purpose
 *
 * Like kmod_dups_target, its init sleeps for init_delay_ms (set with
 * kmod_dups_fail.init_delay_ms=N on the kernel command line or a
 * modprobe.d "options" line), then it returns -ENODEV, so every request
 * for it fails: the first one and, with duplicate suppression, the
 * duplicates that waited for it, with the same error.
 *
 * It carries the same read-only ballast as kmod_dups_target, so a failed
 * load costs as much memory as a successful one.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>

#define KMOD_DUPS_BALLAST_SIZE	SZ_512K

static unsigned int init_delay_ms = 2000;
module_param(init_delay_ms, uint, 0444);
MODULE_PARM_DESC(init_delay_ms, "Time the module init sleeps before it fails (default 2000)");

/* Non-zero at both ends so the compiler cannot move it to .bss. */
static const u8 kmod_dups_ballast[KMOD_DUPS_BALLAST_SIZE] = {
	[0] = 0x6b,
	[KMOD_DUPS_BALLAST_SIZE - 1] = 0x64,
};

static int kmod_dups_sleep(unsigned int ms)
{
	unsigned long left = msecs_to_jiffies(ms);

	while (left && !fatal_signal_pending(current))
		left = schedule_timeout_killable(left);

	return fatal_signal_pending(current) ? -EINTR : 0;
}

static int __init kmod_dups_fail_init(void)
{
	int err;

	err = kmod_dups_sleep(init_delay_ms);
	if (err)
		return err;

	pr_info("failing on purpose after %u ms (%zu bytes of ballast, %02x..%02x)\n",
		init_delay_ms, sizeof(kmod_dups_ballast), kmod_dups_ballast[0],
		READ_ONCE(kmod_dups_ballast[KMOD_DUPS_BALLAST_SIZE - 1]));

	return -ENODEV;
}

module_init(kmod_dups_fail_init);

MODULE_DESCRIPTION("Target whose init fails, for duplicate module request tests");
MODULE_AUTHOR("kmod-dups project");
MODULE_LICENSE("GPL");
